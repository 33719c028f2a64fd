"""End-to-end latency of our closed loop: a sample entering LSL -> the simulator's ACK.

Chain measured (all real parts, one process, real time):
synthetic SSVEP EEG pushed to a real LSL outlet -> ``bci.acquisition.EEGStream`` (LSL inlet,
clock sync, ring buffer) -> ``bci.online.OnlineLoop`` (FBCCA + ``DecisionPolicy``, step 0.1 s)
-> ``devices.safety.SafetySupervisor`` -> ``devices.exoskeleton.ExoskeletonDriver`` over a
real byte link (TCP ``socket://``) -> ``devices.simulator.ExoSimulator`` -> ACK back.

For every command forwarded, latency = (time the driver has the ACK) - (LSL timestamp of the
newest sample of the window that produced the command). That is "first sample of the window
-> ACK" minus the window length. The policy's dwell (several consecutive windows) is not in
this figure: it is a design choice counted in windows and step lengths, reported separately.

Usage::

    python scripts/bench_e2e.py [--duration 90] [--window 1.0] [--step 0.1] [--json FILE]
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import uuid

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _bench_common as bc  # noqa: E402


class _Pusher(threading.Thread):
    """Push pre-synthesized samples to an LSL outlet in real time, in small chunks."""

    def __init__(self, outlet, data: np.ndarray, sfreq: float, chunk: int = 4):
        super().__init__(daemon=True, name="e2e-pusher")
        self.outlet, self.data, self.sfreq, self.chunk = outlet, data, sfreq, chunk
        self.alive = True

    def run(self) -> None:
        import pylsl

        n = self.data.shape[1]
        t0 = pylsl.local_clock()
        i = 0
        while self.alive and i < n:
            due = t0 + (i + self.chunk) / self.sfreq
            delay = due - pylsl.local_clock()
            if delay > 0:
                time.sleep(delay)
            block = self.data[:, i:i + self.chunk].T
            # each sample is stamped with the moment it enters LSL (local clock, now)
            now = pylsl.local_clock()
            ts = now - (len(block) - 1 - np.arange(len(block))) / self.sfreq
            self.outlet.push_chunk(block.tolist(), ts.tolist())
            i += self.chunk


def _source(name: str, raw):
    """An LSL EEG outlet fed in real time; D's SyntheticEEG when it can replay our signal."""
    import pylsl

    info = pylsl.StreamInfo(name, "EEG", len(raw.ch_names), raw.info["sfreq"], "float32",
                            f"{name}-src")
    chs = info.desc().append_child("channels")
    for ch in raw.ch_names:
        c = chs.append_child("channel")
        c.append_child_value("label", ch)
        c.append_child_value("unit", "volts")
        c.append_child_value("type", "EEG")
    outlet = pylsl.StreamOutlet(info, chunk_size=4)
    return outlet, _Pusher(outlet, raw.get_data(), raw.info["sfreq"])


def measure(duration: float = 90.0, window_s: float = 1.0, step_s: float = 0.1,
            seg_s: float = 2.5, log=print) -> dict:
    """Run the chain for ``duration`` s and return per-command latencies (ms) and parts."""
    import pylsl

    from bci.acquisition import EEGStream
    from bci.decoders import make_decoder
    from bci.online import DecisionPolicy, OnlineLoop
    from bci.sources import synthesize_raw
    from devices.commands import Command
    from devices.exoskeleton import ExoskeletonDriver
    from devices.safety import SafetySupervisor
    from devices.simulator import ExoSimulator

    labels = ["13.0Hz", "17.0Hz", "21.0Hz", "rest"]
    n_seg = int(np.ceil((duration + 5) / seg_s))
    schedule = ",".join(f"{labels[i % 4].replace('.0Hz', '')}:{seg_s:g}" for i in range(n_seg))
    name = f"bench-e2e-{uuid.uuid4().hex[:8]}"
    try:  # helper D's live synthetic source (real LSL outlet, samples stamped when due)
        from bci.sources import SyntheticEEG

        pusher = SyntheticEEG(schedule, name=name, chunk_s=4 / 256, seed=1)
        source_kind = "bci.sources.SyntheticEEG"
        sfreq, n_ch = pusher.sfreq, len(pusher.ch_names)
    except ImportError:  # fallback: the same signal model pushed by this script
        raw = synthesize_raw(schedule, seed=1)
        outlet, pusher = _source(name, raw)
        source_kind = "synthesize_raw + pylsl outlet (this script)"
        sfreq, n_ch = raw.info["sfreq"], len(raw.ch_names)
    sim = ExoSimulator(transport="tcp").start()
    drv = ExoskeletonDriver(sim.url).open()
    events: list[dict] = []
    lock = threading.Lock()
    try:
        drv.stand()  # WALK/TURN are legal from standing
        mapping = {"13.0Hz": Command.WALK, "17.0Hz": Command.TURN_LEFT,
                   "21.0Hz": Command.STOP}
        sup = SafetySupervisor(drv, mapping, walk_steps=1, turn_deg=10,
                               confirm_posture_changes=False)
        pusher.start()
        stream = EEGStream(name=name)
        stream.connect(timeout=5.0)
        time.sleep(window_s + 0.3)
        freqs = list(bc.FREQS)
        dec = make_decoder("fbcca", sfreq=sfreq, freqs=freqs).fit(
            np.zeros((1, n_ch, int(window_s * sfreq))), None)
        from bci.app.config import TRAINING_FREE_POLICY
        from bci.labels import class_labels

        policy = DecisionPolicy(class_labels(dec.classes_), **TRAINING_FREE_POLICY)

        def on_decision(d):
            if d.outcome is None or d.outcome == "rest" or d.outcome not in mapping:
                return
            t_send = pylsl.local_clock()
            out = sup.on_selection(d.outcome)
            t_ack = pylsl.local_clock()
            with lock:
                events.append(dict(label=d.outcome, status=out.status,
                                   window_end=d.window_end, t_step_end=d.timestamp,
                                   step_ms=1e3 * d.latency_s, t_send=t_send, t_ack=t_ack))

        loop = OnlineLoop(stream, dec, policy, window_s=window_s, step_s=step_s,
                          on_decision=on_decision)
        stop = threading.Event()
        th = threading.Thread(target=loop.run, args=(stop, duration), daemon=True)
        th.start()
        th.join(duration + 10)
        stop.set()
        stats = loop.latency_stats()
        stream.disconnect()
    finally:
        if hasattr(pusher, "alive"):
            pusher.alive = False
        else:
            pusher.stop()
            pusher.close()
        try:
            drv.close()
        finally:
            sim.stop()
    ok = [e for e in events if e["status"] in ("forwarded", "rejected")]
    lat = np.array([1e3 * (e["t_ack"] - e["window_end"]) for e in ok])
    rtt = np.array([1e3 * (e["t_ack"] - e["t_send"]) for e in ok])
    age = np.array([1e3 * (e["t_step_end"] - e["window_end"]) - e["step_ms"] for e in ok])
    res = dict(status="ok", source=source_kind, duration_s=duration, window_s=window_s, step_s=step_s,
               n_commands=len(ok), n_events=len(events),
               statuses={s: sum(e["status"] == s for e in events)
                         for s in {e["status"] for e in events}},
               latencies_ms=lat.tolist(),
               step_ms_median=1e3 * stats["median_s"], step_ms_p99=1e3 * stats["p99_s"])
    if len(lat):
        def q(a, p):
            return float(np.percentile(a, p))

        res.update(
            e2e_ms_median=q(lat, 50), e2e_ms_p99=q(lat, 99), e2e_ms_max=float(lat.max()),
            rtt_ms_median=q(rtt, 50), rtt_ms_p99=q(rtt, 99),
            age_ms_median=q(age, 50), age_ms_p99=q(age, 99),
        )
        res["markdown"] = "\n".join([
            f"Synthetic SSVEP EEG ({source_kind}; 8 ch, 256 Hz, attended target changing every "
            f"{seg_s:g} s) pushed to a real LSL outlet in 4-sample chunks, {duration:g} s in "
            "real time; "
            f"`EEGStream` -> `OnlineLoop` (FBCCA, {window_s:g} s window, step {step_s:g} s, "
            "training-free `DecisionPolicy`) -> `SafetySupervisor` -> `ExoskeletonDriver` over "
            "`socket://` -> `ExoSimulator`. Latency = ACK received - LSL timestamp of the "
            "newest sample of the deciding window (= from the window's first sample, minus "
            "the window length).", "",
            "| figure | median ms | p99 ms |", "|---|---|---|",
            f"| end to end (newest sample -> ACK), {len(lat)} commands | "
            f"{res['e2e_ms_median']:.1f} | {res['e2e_ms_p99']:.1f} |",
            f"| of which: sample age when the step starts (LSL + acquisition + waiting for "
            f"the next step, 0-{1e3 * step_s:.0f} ms) | {res['age_ms_median']:.1f} | "
            f"{res['age_ms_p99']:.1f} |",
            f"| of which: one loop step (window copy, FBCCA, policy) | "
            f"{res['step_ms_median']:.2f} | {res['step_ms_p99']:.2f} |",
            f"| of which: supervisor -> driver -> simulator -> ACK | "
            f"{res['rtt_ms_median']:.2f} | {res['rtt_ms_p99']:.2f} |",
            "", f"Supervisor outcomes: {res['statuses']}. Not included: the time the policy's "
            f"evidence takes to reach its threshold ({policy.threshold:g}, training-free "
            "defaults) and the window length itself.",
        ])
    else:
        res.update(status="error", reason="no command reached the simulator")
    log(res.get("markdown", res.get("reason")))
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=90.0)
    ap.add_argument("--window", type=float, default=1.0)
    ap.add_argument("--step", type=float, default=0.1)
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    try:
        res = measure(a.duration, a.window, a.step)
    except Exception as exc:  # the report says why e2e is missing instead of failing bench
        import traceback

        traceback.print_exc()
        res = dict(status="error", reason=f"{type(exc).__name__}: {exc}")
    if a.json:
        from pathlib import Path

        bc.save_json(Path(a.json), res)
    return 0 if res.get("status") == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
