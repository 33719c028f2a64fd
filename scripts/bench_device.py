"""Device-side figures (protocol v2): round trip, watchdog, one-way link, close(), heartbeat
gaps under CPU load, and the conformance kit against the simulator and its broken variants.

Runs the real driver (and the conformance kit) against the simulated controller over a
pseudo-terminal and over ``socket://`` (TCP on 127.0.0.1) and prints:

- round trip from ``ExoskeletonDriver.send`` to the ACK: median, p99, max over ``--n`` commands;
- watchdog: ``ssvep-exo conformance``'s measurement, time from the host's last HB write to the
  report of the halt, ``--runs`` runs while walking (min/median/max), and the ``since_ms`` of
  that report;
- one-way link: the controller stops transmitting (still receiving) while walking, the
  driver drives it: time from the controller's last transmission to its halt; and the
  controller stops receiving: time from the host's last delivered HB to the halt;
- ``close()`` with a controller that neither reads nor answers;
- heartbeat gaps (host side, time between HB writes) for ``--hb-seconds`` each: idle, with 3
  CPU-bound processes, and with 3 CPU-bound processes plus a CPU-bound thread in the host
  process; each with the heartbeat thread at the raised priority and at the default one;
  the controller runs in its own process (``ssvep-exo exo-sim``);
- the conformance kit (``--on-stand``) against the simulator and against each fault
  injection: which checks failed.

Usage: ``python scripts/bench_device.py [--n 500] [--runs 20] [--hb-seconds 30]
[--json out.json] [--quick]``. The last line is a one-line summary.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import numpy as np

from devices.conformance import FAIL, run_conformance
from devices.exoskeleton import ExoskeletonDriver
from devices.simulator import FAULTS, ExoSimulator

MOVING = ("WALKING", "TURNING")


def _sim(transport: str, tmp: str, **kw) -> ExoSimulator:
    if transport == "pty":
        kw["link"] = str(Path(tmp) / "exo-pty")
    return ExoSimulator(transport=transport, **kw)


def _stats(ms: list[float]) -> dict:
    a = np.asarray(ms, dtype=float)
    return {"n": int(a.size), "min_ms": float(a.min()), "median_ms": float(np.median(a)),
            "p99_ms": float(np.percentile(a, 99)), "max_ms": float(a.max())}


def _wait(pred, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.002)
    return bool(pred())


def round_trip(transport: str, n: int, tmp: str) -> dict:
    """Time ``n`` STOP/STATUS commands from send() to the ACK."""
    with _sim(transport, tmp, speed=4.0) as sim, ExoskeletonDriver(sim.url) as exo:
        for _ in range(20):  # warm-up
            exo.send("STOP")
        times = []
        for i in range(n):
            verb = "STOP" if i % 2 else "STATUS"
            t0 = time.perf_counter()
            exo.send(verb)
            times.append((time.perf_counter() - t0) * 1000)
    return _stats(times)


def watchdog(transport: str, runs: int, tmp: str) -> dict:
    """The conformance kit's watchdog, halt-report and one-way measurements (on stand)."""
    with _sim(transport, tmp) as sim:
        res = run_conformance(sim.url, on_stand=True, runs=runs,
                              checks=["watchdog", "halt_report", "one_way_link"])
    out = {}
    for r in res:
        out[r.name] = {"status": r.status, "figure": r.figure, "detail": r.detail,
                       **(_stats(r.values["ms"]) if r.values.get("ms") else {})}
    return out


def one_way(transport: str, runs: int, tmp: str) -> dict:
    """Break one direction of the link while the driver walks the simulator."""
    mute, deaf, how = [], [], []
    with _sim(transport, tmp, speed=1.0) as sim:
        exo = ExoskeletonDriver(sim.url, reconnect_max_s=0.2)
        with exo:
            exo.stand()
            for _ in range(runs):
                for direction in ("transmit", "receive"):
                    assert _wait(lambda: exo.link_ok, 5.0), "the driver did not reconnect"
                    exo.walk(10)
                    assert exo.wait_telemetry(lambda t: t.state == "WALKING", 2.0)
                    time.sleep(0.2)
                    n_halts, n_exec = len(sim.model.halts), len(sim.executed())
                    with sim.lock:  # cut at a known instant, between two loop rounds
                        t_cut = time.monotonic()
                        if direction == "transmit":
                            sim.one_way(transmitting=False)
                        else:
                            sim.one_way(receiving=False)
                            last_hb = sim.model.last_hb
                    assert _wait(lambda: sim.snapshot().state not in MOVING, 5.0)
                    halts = sim.model.halts[n_halts:]
                    stops = [t for t, v, _ in sim.executed()[n_exec:] if v == "STOP"]
                    if direction == "transmit":
                        t_halt = min([h.time for h in halts] + stops)
                        mute.append((t_halt - t_cut) * 1000)
                        how.append("STOP" if stops and stops[0] == t_halt else
                                   halts[0].reason)
                    else:
                        deaf.append((halts[0].time - last_hb) * 1000)
                    sim.one_way()
                    assert _wait(lambda: exo.link_ok and sim.snapshot().fault == "NONE", 6.0)
    return {"controller_stops_transmitting": {**_stats(mute), "halted_by": sorted(set(how))},
            "controller_stops_receiving": _stats(deaf)}


def close_unresponsive(transport: str, runs: int, tmp: str) -> dict:
    """close() while the controller neither reads nor answers."""
    times = []
    with _sim(transport, tmp) as sim:
        for _ in range(runs):
            exo = ExoskeletonDriver(sim.url).open()
            sim.one_way(transmitting=False, receiving=False)
            t0 = time.perf_counter()
            exo.close()
            times.append((time.perf_counter() - t0) * 1000)
            sim.one_way()
            time.sleep(0.6)  # let the abandoned session expire
    return _stats(times)


# ---------------------------------------------------------------------- heartbeat gaps
def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _hogs(n: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def _own_cpu(pid: int) -> str:
    """Give every thread of process ``pid`` SCHED_FIFO 20 when allowed (a controller has its
    own processor; on these shared cores the simulated one must not be starved)."""
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            os.sched_setscheduler(int(tid), os.SCHED_FIFO, os.sched_param(20))
    except (OSError, AttributeError) as exc:
        return f"default priority ({exc.__class__.__name__})"
    return "SCHED_FIFO 20"


def heartbeat_gaps(seconds: float) -> dict:
    """HB write gaps with and without CPU load, raised and default priority."""
    port = _free_port()
    sim = subprocess.Popen([sys.executable, "-m", "bci", "exo-sim", "--tcp", str(port)],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    out = {}
    try:
        line = sim.stdout.readline()
        url = re.match(r"exo-sim: serving on (\S+)", line).group(1)
        out["controller_priority"] = _own_cpu(sim.pid)
        print(f"  (simulated controller in its own process at {out['controller_priority']})",
              flush=True)
        for load in ("idle", "3 CPU-bound processes", "3 processes + 1 busy host thread"):
            for raise_priority in (True, False):
                hogs = _hogs(3) if load != "idle" else []
                stop = threading.Event()
                busy = None
                if "thread" in load:
                    def spin(stop: threading.Event = stop) -> None:
                        x = 0
                        while not stop.is_set():
                            x += 1  # pure Python: holds the GIL in 5 ms slices
                    busy = threading.Thread(target=spin, daemon=True)
                    busy.start()
                try:
                    with ExoskeletonDriver(url, raise_priority=raise_priority) as exo:
                        time.sleep(seconds)
                        times = list(exo.heartbeat_times)
                        prio = exo.heartbeat_priority
                        lost = exo.reconnects
                finally:
                    stop.set()
                    for h in hogs:
                        h.kill()
                        h.wait()
                gaps = np.diff(times) * 1000
                key = f"{load}, {'raised' if raise_priority else 'default'} priority"
                out[key] = {**_stats(gaps.tolist()), "priority": prio,
                            "over_300ms": int((gaps > 300).sum()),
                            "link_losses": int(lost)}
                print(f"  heartbeat gaps, {key} ({prio}): median {np.median(gaps):.1f} ms, "
                      f"p99 {np.percentile(gaps, 99):.1f} ms, max {gaps.max():.1f} ms, "
                      f"{out[key]['over_300ms']} over 300 ms, {lost} link losses "
                      f"(n={gaps.size})", flush=True)
    finally:
        sim.terminate()
        sim.wait(10)
    return out


def conformance_matrix(runs: int) -> dict:
    """The kit on stand against the simulator and each broken variant: failed checks."""
    out = {}
    for fault in [None, *sorted(FAULTS)]:
        with ExoSimulator(faults=[fault] if fault else []) as sim:
            res = run_conformance(sim.url, on_stand=True, runs=runs)
        failed = [r.name for r in res if r.status == FAIL]
        out[fault or "none"] = failed
        print(f"  conformance vs simulator{'' if fault is None else f' --fault {fault}'}: "
              f"{'exit 0, all passed' if not failed else 'exit 1, FAILED ' + ', '.join(failed)}",
              flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500, help="commands for the round trip")
    ap.add_argument("--runs", type=int, default=20, help="watchdog runs (conformance kit)")
    ap.add_argument("--hb-seconds", type=float, default=30.0,
                    help="seconds of heartbeats per load condition")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--quick", action="store_true", help="small numbers, for a smoke run")
    ap.add_argument("--parts", default="link,hb,matrix",
                    help="comma-separated: link (round trip, watchdog, one-way, close), hb "
                    "(heartbeat gaps), matrix (conformance vs fault injections)")
    args = ap.parse_args(argv)
    parts = set(args.parts.split(","))
    if args.quick:
        args.n, args.runs, args.hb_seconds = 50, 3, 3.0
    small = max(3, args.runs // 2)
    print(f"device bench: {datetime.now():%Y-%m-%d %H:%M}, {platform.node()}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}", flush=True)
    results: dict = {}
    summary = []
    if "link" in parts:
        with tempfile.TemporaryDirectory() as tmp:
            for transport in ("pty", "tcp"):
                results[transport] = _link_figures(transport, args, small, tmp)
        p, t = results["pty"], results["tcp"]
        wd_max = max(p["conformance"]["watchdog"].get("max_ms", float("nan")),
                     t["conformance"]["watchdog"].get("max_ms", float("nan")))
        ow_max = max(p["one_way"]["controller_stops_transmitting"]["max_ms"],
                     t["one_way"]["controller_stops_transmitting"]["max_ms"])
        cl_max = max(p["close_unresponsive"]["max_ms"], t["close_unresponsive"]["max_ms"])
        summary += [f"pty send->ACK median {p['round_trip']['median_ms']:.2f} ms p99 "
                    f"{p['round_trip']['p99_ms']:.2f} ms; tcp median "
                    f"{t['round_trip']['median_ms']:.2f} ms p99 "
                    f"{t['round_trip']['p99_ms']:.2f} ms",
                    f"watchdog halt reported max {wd_max:.0f} ms after the last HB "
                    f"({args.runs} runs)", f"one-way link halted max {ow_max:.0f} ms",
                    f"close() max {cl_max:.0f} ms"]
    if "hb" in parts:
        print("heartbeat gaps (host side, HB writes; controller in its own process):",
              flush=True)
        results["heartbeat_gaps"] = hb = heartbeat_gaps(args.hb_seconds)
        for key in ("3 CPU-bound processes, raised priority",
                    "3 CPU-bound processes, default priority"):
            summary.append(f"HB gap, {key}: p99 {hb[key]['p99_ms']:.0f} ms max "
                           f"{hb[key]['max_ms']:.0f} ms")
    if "matrix" in parts:
        print("conformance kit (--on-stand) against the simulator and its fault injections:",
              flush=True)
        results["conformance_matrix"] = m = conformance_matrix(max(3, args.runs // 4))
        caught = sum(bool(v) for k, v in m.items() if k != "none")
        summary.append(f"conformance: simulator {'passes' if not m['none'] else 'FAILS'}, "
                       f"{caught}/{len(m) - 1} fault injections caught")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    print("device bench: " + "; ".join(summary))
    return 0


def _link_figures(transport: str, args, small: int, tmp: str) -> dict:
    rt = round_trip(transport, args.n, tmp)
    print(f"{transport:>3}: send->ACK median {rt['median_ms']:.2f} ms, "
          f"p99 {rt['p99_ms']:.2f} ms, max {rt['max_ms']:.2f} ms (n={rt['n']})", flush=True)
    wd = watchdog(transport, args.runs, tmp)
    for name in ("watchdog", "halt_report", "one_way_link"):
        print(f"{transport:>3}: {name}: {wd[name]['status']} {wd[name]['figure']} "
              f"{wd[name]['detail']}", flush=True)
    ow = one_way(transport, small, tmp)
    m, d = ow["controller_stops_transmitting"], ow["controller_stops_receiving"]
    print(f"{transport:>3}: controller stops transmitting while walking -> halted "
          f"{m['median_ms']:.0f} ms (max {m['max_ms']:.0f}) after its last transmission, by "
          f"{', '.join(m['halted_by'])}; stops receiving -> halted {d['median_ms']:.0f} ms "
          f"(max {d['max_ms']:.0f}) after the last HB it got (n={m['n']})", flush=True)
    cl = close_unresponsive(transport, small, tmp)
    print(f"{transport:>3}: close() with an unresponsive controller: median "
          f"{cl['median_ms']:.0f} ms, max {cl['max_ms']:.0f} ms (n={cl['n']})", flush=True)
    return {"round_trip": rt, "conformance": wd, "one_way": ow, "close_unresponsive": cl}


if __name__ == "__main__":
    sys.exit(main())
