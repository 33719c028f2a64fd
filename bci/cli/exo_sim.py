"""``ssvep-exo exo-sim``: serve the simulated exoskeleton controller until interrupted."""

from __future__ import annotations

import argparse
import sys
import time

from devices.errors import PortError
from devices.simulator import FAULTS, ExoSimulator


def add_parser(subparsers) -> None:
    """Register the ``exo-sim`` subcommand."""
    p = subparsers.add_parser(
        "exo-sim",
        help="run the simulated exoskeleton controller on a pty or a TCP port",
        description="Serve the exoskeleton protocol (docs/protocol.md, version 2) from a "
        "simulated controller until Ctrl-C. Connect with `ssvep-exo run --port "
        "socket://127.0.0.1:PORT` or --port <the pty path>; check it with `ssvep-exo "
        "conformance socket://127.0.0.1:PORT --on-stand`.",
    )
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--pty", action="store_true", help="serve on a pseudo-terminal "
                       "(its path is printed)")
    where.add_argument("--tcp", type=int, metavar="PORT", help="serve on a TCP port")
    p.add_argument("--host", default="127.0.0.1",
                   help="TCP address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--link", metavar="PATH", help="with --pty, keep a symlink at PATH "
                   "pointing at the pty")
    p.add_argument("--speed", type=float, default=1.0, help="simulated time factor (default 1)")
    p.add_argument("--step-s", type=float, default=0.6, help="seconds per step (default 0.6)")
    p.add_argument("--watchdog-s", type=float, default=0.5,
                   help="halt after this many seconds without a heartbeat of the session "
                   "(default 0.5)")
    p.add_argument("--status-every", type=float, default=0.0, metavar="S",
                   help="print the controller state every S seconds (0: only on change)")
    p.add_argument("--fault", action="append", choices=sorted(FAULTS), default=[],
                   metavar="NAME",
                   help="break one protocol property on purpose, to show that `ssvep-exo "
                   "conformance` catches it (repeatable; never for driving anything): "
                   + "; ".join(f"{k}: {v}" for k, v in sorted(FAULTS.items())))
    p.add_argument("--trajectory", metavar="CSV", help="write the path here on exit")
    p.add_argument("--plot", metavar="PNG", help="draw the path as a PNG on exit")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted (exit status 130 from the CLI's Ctrl-C handling)."""
    if args.tcp is not None and not 0 < args.tcp < 65536:
        raise PortError(f"TCP port must be in 1..65535, got {args.tcp}.")
    sim = ExoSimulator(
        transport="pty" if args.pty else "tcp",
        host=args.host,
        port=args.tcp or 0,
        link=args.link,
        speed=args.speed,
        step_s=args.step_s,
        watchdog_s=args.watchdog_s,
        faults=args.fault,
    )
    with sim:
        try:
            _serve(sim, args)
        finally:
            sim.save_trajectory(args.trajectory, args.plot)
    return 0


def _serve(sim, args: argparse.Namespace) -> None:
    """Print the URL, then the controller state on every change, until interrupted."""
    print(f"exo-sim: serving on {sim.url}", flush=True)
    if args.fault:
        print(f"exo-sim: BROKEN ON PURPOSE ({', '.join(args.fault)}): for testing the "
              "conformance kit only", flush=True)
    if args.pty and args.link:
        print(f"exo-sim: pty {sim._link.slave_path}", flush=True)
    last = None
    next_print = time.monotonic()
    while True:
        tel = sim.snapshot()
        now = time.monotonic()
        summary = (tel.state, tel.steps, tel.fault)
        periodic = args.status_every > 0 and now >= next_print
        if summary != last or periodic:
            print(f"exo-sim: {tel.state} steps={tel.steps} x={tel.x:.2f} y={tel.y:.2f} "
                  f"heading={tel.heading:.0f} battery={tel.battery:.1f} fault={tel.fault}",
                  file=sys.stdout, flush=True)
            last = summary
            next_print = now + max(args.status_every, 0.0)
        time.sleep(0.1)
