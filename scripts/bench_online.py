"""Online loop benchmark: processing time per step, and replay at 20x real time over LSL.

1. Processing time: the online loop steps through a Kalunga session on a virtual clock
   (``RecordingSource``, no waiting); per-step processing time (window copy, decoder,
   policy, Decision) median and 99th percentile, as a fraction of the step length.
   Target: p99 < 5 % of the step.
2. Replay at 20x: ``RecordingPlayer`` publishes the session over LSL at 20x real time,
   ``EEGStream`` receives it and ``OnlineLoop.run`` steps every ``step_s / 20`` seconds.
   It keeps up when every sample arrives and at most 5 % of the steps are "behind" (data
   older than 0.25 s, or a step slower than that). "stalled" steps before the first
   window has arrived are expected.

Usage: ``python scripts/bench_online.py [--method fbcca] [--speed 20] [--seconds 60]``.
Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SSVEP_EXO_DATA", REPO.parent / "shared" / "data" / "kalunga2016"))


def _session():
    from bci.datasets import load_recording

    files = sorted((DATA / "subject01").glob("*_raw.fif"))
    if files:
        return load_recording(files[0]), files[0].name
    from bci.sources import synthesize_raw

    return synthesize_raw("rest:10," + ",".join(["13:6,17:6,21:6,rest:6"] * 8)), "synthetic"


def _decoder(method, raw, window_s):
    from bci.decoders import METHODS, make_decoder

    d = make_decoder(method, sfreq=raw.info["sfreq"], freqs=[13.0, 17.0, 21.0])
    n = int(round(window_s * raw.info["sfreq"]))
    if not METHODS[method]["calibrated"]:
        return d.fit(np.zeros((1, len(raw.ch_names), n)), None)
    from bci.datasets import epoch

    X, y, _ = epoch(raw, tmin=2.0, window_s=window_s)  # timing only: trained on the same session
    return d.fit(X, y)


def bench_steps(method: str, window_s: float, step_s: float) -> dict:
    from bci.labels import class_labels
    from bci.online import DecisionPolicy, OnlineLoop, RecordingSource

    raw, name = _session()
    dec = _decoder(method, raw, window_s)
    policy = DecisionPolicy(class_labels(dec.classes_), threshold=1.0, drift=0.1, clip=0.5)
    src = RecordingSource(raw, start_s=window_s)
    loop = OnlineLoop(src, dec, policy, window_s=window_s, step_s=step_s, max_lag_s=10.0)
    for _ in range(20):  # warm-up
        loop.step()
        src.advance(step_s)
    loop.n_steps = 0
    cpu = []
    t0 = time.perf_counter()
    while not src.finished:
        c0 = time.thread_time()
        loop.step()
        cpu.append(time.thread_time() - c0)
        src.advance(step_s)
    wall = time.perf_counter() - t0
    cpu = np.array(cpu)
    st = loop.latency_stats()
    return {
        "session": name, "method": method, "window_s": window_s, "step_s": step_s,
        "steps": loop.n_steps, "median_ms": 1e3 * st["median_s"], "p99_ms": 1e3 * st["p99_s"],
        "median_frac": st["median_s"] / step_s, "p99_frac": st["p99_s"] / step_s,
        "speedup": loop.n_steps * step_s / wall,
        "cpu_median_ms": 1e3 * float(np.median(cpu)), "cpu_p99_ms": 1e3 * float(np.percentile(cpu, 99)),
        "load": os.getloadavg()[0],
    }


def bench_replay(method: str, window_s: float, step_s: float, speed: float, seconds: float):
    from bci.acquisition import EEGStream
    from bci.labels import class_labels
    from bci.online import DecisionPolicy, OnlineLoop
    from bci.sources import RecordingPlayer

    raw, name = _session()
    raw = raw.copy().crop(0, min(seconds, raw.times[-1]))
    dec = _decoder(method, raw, window_s) if method != "ress-fbcca" else _decoder(
        method, _session()[0], window_s)
    policy = DecisionPolicy(class_labels(dec.classes_), threshold=1.0, drift=0.1, clip=0.5)
    sname = f"bench-online-{uuid.uuid4().hex[:8]}"
    stop = threading.Event()
    player = RecordingPlayer(raw, name=sname, speed=speed).open()
    stream = EEGStream(name=sname, source_id=sname, buffer_s=max(10.0, 4 * window_s))
    try:
        stream.connect()  # subscribe before the first sample is pushed
        time.sleep(0.5)
        loop = OnlineLoop(stream, dec, policy, window_s=window_s, step_s=step_s / speed,
                          max_lag_s=0.25)
        ages = []
        loop.on_decision = lambda d: ages.append(d.timestamp - d.window_end)
        th = threading.Thread(target=loop.run, args=(stop,))
        t0 = time.monotonic()
        player.start()
        th.start()
        player.wait(raw.times[-1] / speed + 10.0)
        wall = time.monotonic() - t0
        time.sleep(0.3)
        stop.set()
        th.join(5.0)
        received = stream.n_samples_received
    finally:
        stream.disconnect()
        player.close()
    ages = np.array([a for a in ages if np.isfinite(a)])
    st = loop.latency_stats()
    return {
        "session": name, "speed": speed, "data_s": raw.times[-1], "wall_s": wall,
        "samples_sent": raw.n_times, "samples_received": int(received),
        "steps": loop.n_steps, "counts": dict(loop.counts), "overruns": loop.n_overruns,
        "age_median_ms": 1e3 * float(np.median(ages)) if ages.size else float("nan"),
        "age_p99_ms": 1e3 * float(np.percentile(ages, 99)) if ages.size else float("nan"),
        "p99_ms": 1e3 * st["p99_s"],
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default="fbcca,ress-fbcca")
    ap.add_argument("--window", type=float, default=1.0)
    ap.add_argument("--step", type=float, default=0.1)
    ap.add_argument("--speed", type=float, default=20.0)
    ap.add_argument("--seconds", type=float, default=60.0, help="data replayed over LSL")
    args = ap.parse_args(argv)
    ok = True
    print(f"# online loop: window {args.window} s, step {args.step} s")
    for m in args.methods.split(","):
        r = bench_steps(m, args.window, args.step)
        good = r["p99_frac"] < 0.05
        ok &= good
        print(f"step time {m:<11} median {r['median_ms']:.2f} ms ({100 * r['median_frac']:.2f} % "
              f"of step), p99 {r['p99_ms']:.2f} ms ({100 * r['p99_frac']:.2f} %), "
              f"{r['steps']} steps, {r['speedup']:.0f}x real time; thread CPU time median "
              f"{r['cpu_median_ms']:.2f} ms p99 {r['cpu_p99_ms']:.2f} ms; load average "
              f"{r['load']:.1f} on {os.cpu_count()} cores [{'ok' if good else 'MISSED'}: p99 < 5 %]")
    m = args.methods.split(",")[0]
    r = bench_replay(m, args.window, args.step, args.speed, args.seconds)
    behind = r["counts"].get("behind", 0)
    kept = r["samples_received"] >= r["samples_sent"] and behind <= 0.05 * r["steps"]
    ok &= kept
    print(f"replay {r['speed']:g}x over LSL ({m}, {r['data_s']:.0f} s of {r['session']} in "
          f"{r['wall_s']:.1f} s): {r['samples_received']}/{r['samples_sent']} samples, "
          f"{r['steps']} steps, reasons {r['counts']}, overruns {r['overruns']}, data age "
          f"median {r['age_median_ms']:.1f} ms p99 {r['age_p99_ms']:.1f} ms, step p99 "
          f"{r['p99_ms']:.2f} ms [{'ok' if kept else 'MISSED'}: every sample, <= 5 % steps behind]")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
