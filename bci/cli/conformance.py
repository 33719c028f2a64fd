"""``ssvep-exo conformance URL``: check a controller against docs/protocol.md (version 2)."""

from __future__ import annotations

import argparse
import sys

from devices.conformance import CHECKS, FAIL, Limits, run_conformance


def add_parser(subparsers) -> None:
    """Register the ``conformance`` subcommand."""
    p = subparsers.add_parser(
        "conformance",
        help="check an exoskeleton controller against the protocol (docs/protocol.md)",
        description="Run every check of the exoskeleton protocol (version 2) that can be "
        "observed from the host against the controller at URL (a device path such as "
        "/dev/ttyUSB0, or socket://host:port; e.g. `ssvep-exo exo-sim --tcp PORT`). Prints a "
        "table (check, result, measured figure); the exit status is 1 when a check fails "
        "(the failed safety checks are named). Checks that send STAND, SIT, WALK or TURN run "
        "only with --on-stand.",
        epilog="checks (* = safety):\n" + "\n".join(
            f"  {name:<18} {'*' if safety else ' '} {what}"
            for name, (_, safety, _, what) in CHECKS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("url", metavar="URL", help="the controller: a device path or a pyserial "
                   "URL (socket://host:port, rfc2217://host:port)")
    p.add_argument("--on-stand", action="store_true",
                   help="the exoskeleton is on its stand with nobody in it: allow the checks "
                   "that make it move. NEVER with a person strapped in")
    p.add_argument("--runs", type=_positive_int, default=20, metavar="N",
                   help="repetitions of the watchdog measurement (default 20)")
    p.add_argument("--check", action="append", choices=list(CHECKS), metavar="NAME",
                   help="run only this check (repeatable; the names are listed below)")
    p.add_argument("--baudrate", type=_positive_int, default=115200,
                   help="line speed for device paths (default 115200)")
    p.set_defaults(func=run)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def run(args: argparse.Namespace) -> int:
    """Run the checks, print the table; 1 when a check failed."""
    print(f"conformance: {args.url}, protocol version 2"
          + (", ON STAND (motion allowed)" if args.on_stand else ", motion checks skipped "
             "(no --on-stand)"), flush=True)
    results = run_conformance(
        args.url, on_stand=args.on_stand, runs=args.runs, limits=Limits(),
        checks=args.check, baudrate=args.baudrate,
        progress=lambda text: print(f"  ... {text}", file=sys.stderr, flush=True))
    width = max(len(r.name) for r in results)
    print(f"{'check':<{width}}  {'safety':<6}  {'result':<6}  figure")
    for r in results:
        text = r.figure if r.status != FAIL else f"{r.detail}" + (
            f" [{r.figure}]" if r.figure else "")
        if r.status not in ("pass", FAIL) and r.detail:
            text = r.detail
        print(f"{r.name:<{width}}  {'yes' if r.safety else '':<6}  {r.status:<6}  {text}")
    failed = [r for r in results if r.failed]
    if not failed:
        print(f"conformance: all {sum(r.status == 'pass' for r in results)} checks run passed")
        return 0
    safety = [r.name for r in failed if r.safety]
    other = [r.name for r in failed if not r.safety]
    if safety:
        print(f"conformance: SAFETY CHECK FAILED: {', '.join(safety)}", file=sys.stderr)
    if other:
        print(f"conformance: failed: {', '.join(other)}", file=sys.stderr)
    return 1
