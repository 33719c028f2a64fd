"""Soak test: a long synthetic session through the whole closed loop, faster than real time.

synthetic EEG (LSL) -> EEGStream -> OnlineLoop -> SafetySupervisor -> ExoskeletonDriver ->
simulated controller (TCP, in this process, so its view of the heartbeats is observed).

The EEG, the decision steps, the policy's timings and the exoskeleton's motion all run
``--speed`` times faster than real time; the heartbeat and the controller's watchdog run on
real time (they guard the link, not the signal). Reported:

- memory growth: RSS (psutil) at the end minus RSS after the warm-up (target < 20 MB);
- missed heartbeats, from the controller's view: gaps between the host's heartbeats longer than
  ``HB_GAP_FACTOR`` x the heartbeat period, and watchdog trips (target: none);
- decision latency percentiles (p50/p95/p99 of the processing time of each step);
- unsafe commands (target: none): motion decided on a window in which no target was cued,
  commands the controller NAKed as illegal, commits on windows whose signal health was bad.

Ends with ONE summary line of its figures; exit status 0 when every target is met, 1 when
one is missed. Example: ``python scripts/soak.py --hours 1 --speed 10``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

GROWTH_TARGET_MB = 20.0
HB_GAP_FACTOR = 3.0  # a gap longer than 3 heartbeat periods counts as a missed heartbeat
MOTION = {"walk", "turn_left", "turn_right", "stand", "sit"}
MOTION_VERBS = {"WALK", "TURN", "STAND", "SIT"}


def schedule_for(seconds: float) -> str:
    """The demo's schedule (stand, walk, turn, walk, stop, sit with rests) repeated to last
    ``seconds``."""
    from bci.cli.demo import DEMO_SCHEDULE
    from bci.sources.schedule import Schedule

    block_s = float(Schedule.parse(DEMO_SCHEDULE).duration)
    return ",".join([DEMO_SCHEDULE] * max(1, int(np.ceil(seconds / block_s))))


class HeartbeatMonitor:
    """Wraps the simulated controller's frame handler: gaps between the host's heartbeats
    (protocol v2: only they feed the watchdog)."""

    def __init__(self, sim) -> None:
        self.sim = sim
        self.t0 = time.monotonic()
        self.last: float | None = None
        self.gaps: list[tuple[float, float]] = []  # (seconds since start, gap) over 0.2 s
        self.max_gap = 0.0
        self.n_frames = 0
        self._handle = sim.model.handle
        sim.model.handle = self._on_frame

    def _on_frame(self, frame, now, conn=0):
        if frame.verb != "HB":
            return self._handle(frame, now, conn)
        if self.last is not None:
            gap = now - self.last
            self.max_gap = max(self.max_gap, gap)
            if gap > 0.2:
                self.gaps.append((round(self.last - self.t0, 1), round(gap, 3)))
        self.last = now
        self.n_frames += 1
        return self._handle(frame, now, conn)


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=1.0,
                        help="session length in signal time (default 1.0)")
    parser.add_argument("--speed", type=float, default=10.0,
                        help="times faster than real time (default 10; the heartbeat stays "
                             "real-time)")
    parser.add_argument("--warmup", type=float, default=0.1,
                        help="fraction of the run before the memory baseline (default 0.1)")
    parser.add_argument("--output", default="", help="keep the session folder here")
    args = parser.parse_args(argv)
    if args.hours <= 0 or not 0 < args.speed <= 100 or not 0 <= args.warmup < 1:
        parser.error("--hours must be > 0, --speed in (0, 100], --warmup in [0, 1)")
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    from bci.app.closed_loop import ClosedLoopSession, quiet_console
    from bci.app.config import SessionConfig
    from bci.cli.demo import DEMO_CONFIG, calibrate_demo_user
    from bci.labels import is_rest
    from calibration.profile import SubjectProfile
    from devices.simulator import ExoSimulator

    quiet_console(0)
    work = Path(args.output) if args.output else Path(tempfile.mkdtemp(prefix="ssvep-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    base = SessionConfig(DEMO_CONFIG)
    profile = calibrate_demo_user(work / "profile", base)
    prof = SubjectProfile.load(profile)
    signal_s = args.hours * 3600.0
    wall_s = signal_s / args.speed
    # the session divides the profile's policy timings and decision step (seconds of signal)
    # by source.speed itself (bci.app._parts.at_source_speed)
    sim = ExoSimulator(transport="tcp", step_s=0.6, speed=args.speed).start()
    monitor = HeartbeatMonitor(sim)
    name = f"soak-{os.getpid()}"
    cfg = base.with_overrides({
        "session.live_view": False, "session.output": str(work / "sessions"),
        "source.schedule": schedule_for(signal_s), "source.speed": args.speed,
        "source.stream_name": name, "source.source_id": name, "decoder.profile": str(profile),
        "device.port": sim.url, "lsl.decisions_stream": name + "-dec",
        "session.duration_s": wall_s + 5.0,
    })
    session = ClosedLoopSession(cfg, out=io.StringIO(), install_signal_handlers=False)
    box: dict = {}
    thread = threading.Thread(target=lambda: box.setdefault("result", session.run()),
                              daemon=True)
    t_start = time.monotonic()
    thread.start()
    samples: list[tuple[float, float]] = []
    baseline: float | None = None
    while thread.is_alive():
        thread.join(2.0)
        elapsed = time.monotonic() - t_start
        samples.append((elapsed, rss_mb()))
        if baseline is None and elapsed >= args.warmup * wall_s:
            baseline = samples[-1][1]
        if int(elapsed) % 60 < 2:
            print(f"soak: {elapsed:7.0f} s of {wall_s:.0f} s, RSS {samples[-1][1]:.1f} MB",
                  flush=True)
    sim.stop()
    result = box.get("result")
    if result is None:
        print("soak: the session failed (see the log above)")
        return 1
    # memory: after the run, before the session's objects are released
    # memory: the last sample before the source ended (the end adds the plots' one-off cost)
    during = [r for t, r in samples if t <= 0.97 * wall_s] or [r for _, r in samples]
    end_rss = during[-1]
    growth = end_rss - (baseline if baseline is not None else during[0])

    log = [json.loads(line) for line in
           (result.folder / "session.jsonl").read_text().splitlines() if line.strip()]
    decisions = [e for e in log if e["event"] == "decision"]
    lat = np.array([e["latency_s"] for e in decisions]) * 1000.0
    p50, p95, p99 = (np.percentile(lat, [50, 95, 99]) if lat.size else (np.nan,) * 3)
    reasons: dict[str, int] = {}
    for e in decisions:
        reasons[e["reason"]] = reasons.get(e["reason"], 0) + 1

    # unsafe commands
    record = session.record
    cues = sorted(record.cues)
    window = float(prof.window_s) / args.speed  # the decoded window, in LSL (real) seconds

    def cue_at(t: float) -> str | None:
        i = int(np.searchsorted([c[0] for c in cues], t, side="right")) - 1
        return cues[i][1] if i >= 0 else None

    def rest_only(t_end: float) -> bool:
        """No target was cued at any time of the window that ends at ``t_end``."""
        shown = [cue_at(t_end - window)] + [c for t, c in cues if t_end - window < t <= t_end]
        return all(c is not None and is_rest(c) for c in shown)

    # motion from a decoded window in which no target was cued (whatever the machine's load
    # delayed: the window's end is the decision's, not the time the command was executed)
    during_rest = [ev for ev in record.events if ev["event"] == "command"
                   and ev.get("result") == "executed" and ev.get("command") in MOTION
                   and rest_only(float(ev.get("t_decision", ev["t"])))]
    naks = [e for e in log if e["event"] == "supervisor.nak"]
    bad_commits = [e for e in decisions if not e["health"]["ok"] and e.get("outcome")
                   and not is_rest(e["outcome"])]
    unsafe = len(during_rest) + len(naks) + len(bad_commits)
    executed = [v for _, v, _ in sim.executed() if v in MOTION_VERBS]
    hb_period = 0.1
    missed_at = [(t, g) for t, g in monitor.gaps if g > HB_GAP_FACTOR * hb_period]
    missed = len(missed_at)
    halts = len(sim.model.halts)
    # watchdog trips while the host was connected (a gap between two of its frames longer
    # than the watchdog); the controller also trips once after the session closed the link
    trips = sum(1 for _, g in monitor.gaps if g > sim.model.watchdog_s)
    trips_after = int(sim.model.watchdog_trips) - trips
    ok = growth < GROWTH_TARGET_MB and missed == 0 and trips == 0 and halts == 0 \
        and unsafe == 0
    details = {
        "signal_hours": args.hours, "speed": args.speed, "wall_s": round(time.monotonic() -
                                                                         t_start, 1),
        "decisions": len(decisions), "reasons": reasons, "host_frames": monitor.n_frames,
        "max_heartbeat_gap_s": round(monitor.max_gap, 3),
        "missed_heartbeats_at": missed_at[:20], "watchdog_trips_connected": trips,
        "watchdog_trips_after_close": trips_after,
        "watchdog_halts_while_moving": halts, "motion_executed": len(executed),
        "unsafe": {"motion_during_rest": len(during_rest), "controller_naks": len(naks),
                   "commits_on_bad_signal": len(bad_commits)},
        "rss_mb": {"baseline": round(baseline or 0.0, 1), "end": round(end_rss, 1)},
        "summary": {k: result.summary.get(k) for k in ("n_executed", "n_refused",
                                                        "false_activations")},
        "session": str(result.folder),
    }
    print("soak details: " + json.dumps(details, default=str))
    print(f"SOAK {'PASS' if ok else 'FAIL'}: {args.hours:g} h at x{args.speed:g} in "
          f"{details['wall_s']:.0f} s; RSS growth {growth:.1f} MB (target < "
          f"{GROWTH_TARGET_MB:g}); missed heartbeats {missed} (max gap "
          f"{monitor.max_gap * 1000:.0f} ms), watchdog trips {trips} (halts while moving "
          f"{halts}); decision latency p50 "
          f"{p50:.1f} ms p95 {p95:.1f} ms p99 {p99:.1f} ms over {len(decisions)} decisions; "
          f"motion commands {len(executed)}, unsafe {unsafe}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
