"""``ssvep-exo devices``: list serial ports and the LSL streams visible now."""

from __future__ import annotations

import argparse
import math

from bci.acquisition.resolve import list_streams
from devices.ports import list_serial_ports


def _lsl_timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not (0 < value <= 3600 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected seconds in (0, 3600], got {text!r}")
    return value


def add_parser(subparsers) -> None:
    """Register the ``devices`` subcommand."""
    p = subparsers.add_parser(
        "devices",
        help="list serial ports and visible LSL streams",
        description="List serial ports (for --port) and LSL streams currently on the network "
        "(for --stream / --source-id). Check a controller with `ssvep-exo conformance URL`.",
    )
    p.add_argument("--lsl-timeout", type=_lsl_timeout, default=1.0, metavar="S",
                   help="seconds to look for LSL streams, in (0, 3600] (default 1; Ctrl-C "
                   "stops the wait)")
    p.add_argument("--no-lsl", action="store_true", help="skip the LSL lookup")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the ports and streams."""
    ports = list_serial_ports()
    print(f"Serial ports ({len(ports)}):")
    for p in ports:
        print(f"  {p['device']}  {p['description']}  {p['hwid']}")
    if not ports:
        print("  none (the simulator: `ssvep-exo exo-sim --pty` or --tcp PORT)")
    if args.no_lsl:
        return 0
    print(f"LSL streams (looking for {args.lsl_timeout:g} s):", flush=True)
    streams = list_streams(args.lsl_timeout)
    for s in streams:
        print(f"  {s['name']}  type={s['type']}  channels={s['channel_count']}  "
              f"rate={s['nominal_srate']:g} Hz  source_id={s['source_id']!r}  "
              f"host={s['hostname']}")
    if not streams:
        print("  none")
    return 0
