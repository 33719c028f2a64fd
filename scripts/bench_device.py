"""Device-side figures: command round trip (send -> ACK), watchdog halt, link-loss recovery.

Runs the real driver against the simulated controller over a pseudo-terminal and over
``socket://`` (TCP on 127.0.0.1) and prints, per transport:

- round trip from ``ExoskeletonDriver.send`` to the ACK: median, p99, max over ``--n`` commands;
- watchdog: time from the last host frame to the controller's halt when heartbeats stop;
- link cut while walking: time until the driver reports the loss, and until it is back up.

Usage: ``python scripts/bench_device.py [--n 500] [--trials 5] [--json out.json]``.
The last line is a one-line summary.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import serial

from devices.exoskeleton import ExoskeletonDriver
from devices.protocol import encode_frame
from devices.simulator import ExoSimulator


def _sim(transport: str, tmp: str) -> ExoSimulator:
    kw = {"link": str(Path(tmp) / f"exo-{transport}")} if transport == "pty" else {}
    return ExoSimulator(transport=transport, speed=4.0, **kw)


def round_trip(transport: str, n: int, tmp: str) -> dict:
    """Time ``n`` STOP/STATUS commands from send() to the ACK."""
    with _sim(transport, tmp) as sim, ExoskeletonDriver(sim.url) as exo:
        for _ in range(20):  # warm-up
            exo.send("STOP")
        times = []
        for i in range(n):
            verb = "STOP" if i % 2 else "STATUS"
            t0 = time.perf_counter()
            exo.send(verb)
            times.append(time.perf_counter() - t0)
    ms = np.asarray(times) * 1000
    return {"n": n, "median_ms": float(np.median(ms)), "p99_ms": float(np.percentile(ms, 99)),
            "max_ms": float(ms.max())}


def watchdog(transport: str, trials: int, tmp: str) -> dict:
    """Stop all host frames while walking; measure silence until the controller halts."""
    out = []
    for _ in range(trials):
        with _sim(transport, tmp) as sim:
            port = serial.serial_for_url(sim.url, timeout=0.05)
            try:
                for i, (v, a) in enumerate([("HELLO", (1,)), ("STAND", ()), ("WALK", (10,))], 1):
                    port.write(encode_frame(i, v, *a))
                deadline = time.monotonic() + 3
                while not sim.model.halts and time.monotonic() < deadline:
                    time.sleep(0.005)
                out.append(sim.model.halts[0].silence_s * 1000)
            finally:
                port.close()
    return {"trials": trials, "median_ms": float(np.median(out)), "max_ms": float(max(out))}


def link_cut(transport: str, trials: int, tmp: str) -> dict:
    """Cut the link while walking; time to the driver's report and to the link being back."""
    detect, back, stale = [], [], 0
    with _sim(transport, tmp) as sim, ExoskeletonDriver(sim.url) as exo:
        events = []
        exo.add_listener(lambda e, d: events.append((time.monotonic(), e)) if e.startswith(
            "link") else None)
        for _ in range(trials):
            exo.stand()
            exo.walk(10)
            exo.wait_telemetry(lambda t: t.state == "WALKING", 2.0)
            events.clear()
            t_cut = time.monotonic()
            sim.cut_link()
            deadline = t_cut + 5
            while time.monotonic() < deadline and not any(e == "link_up" for _, e in events):
                time.sleep(0.002)
            lost = next(t for t, e in events if e == "link_lost")
            up = next(t for t, e in events if e == "link_up")
            detect.append((lost - t_cut) * 1000)
            back.append((up - t_cut) * 1000)
            stale += sum(1 for t, v, _ in sim.executed() if t >= t_cut and v != "STOP")
            exo.wait_telemetry(lambda t: t.state == "STOPPED", 2.0)
    return {"trials": trials, "detect_median_ms": float(np.median(detect)),
            "detect_max_ms": float(max(detect)), "reconnected_median_ms": float(np.median(back)),
            "reconnected_max_ms": float(max(back)), "stale_motion_commands": stale}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500, help="commands for the round trip")
    ap.add_argument("--trials", type=int, default=5, help="watchdog and link-cut trials")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for transport in ("pty", "tcp"):
            r = {"round_trip": round_trip(transport, args.n, tmp),
                 "watchdog": watchdog(transport, args.trials, tmp),
                 "link_cut": link_cut(transport, args.trials, tmp)}
            results[transport] = r
            rt, wd, lc = r["round_trip"], r["watchdog"], r["link_cut"]
            print(f"{transport:>3}: send->ACK median {rt['median_ms']:.2f} ms, "
                  f"p99 {rt['p99_ms']:.2f} ms, max {rt['max_ms']:.2f} ms (n={rt['n']})")
            print(f"{transport:>3}: watchdog halt after {wd['median_ms']:.1f} ms of silence "
                  f"(median, max {wd['max_ms']:.1f} ms, {wd['trials']} trials; limit 600 ms)")
            print(f"{transport:>3}: link cut while walking -> reported in "
                  f"{lc['detect_median_ms']:.1f} ms (max {lc['detect_max_ms']:.1f}), back up in "
                  f"{lc['reconnected_median_ms']:.1f} ms (max {lc['reconnected_max_ms']:.1f}), "
                  f"stale motion commands after reconnection: {lc['stale_motion_commands']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    p, t = results["pty"], results["tcp"]
    print(f"device bench: pty send->ACK median {p['round_trip']['median_ms']:.2f} ms "
          f"p99 {p['round_trip']['p99_ms']:.2f} ms; tcp median "
          f"{t['round_trip']['median_ms']:.2f} ms p99 {t['round_trip']['p99_ms']:.2f} ms; "
          f"watchdog halt max {max(p['watchdog']['max_ms'], t['watchdog']['max_ms']):.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
