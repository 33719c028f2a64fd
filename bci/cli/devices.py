"""``ssvep-exo devices``: list serial ports and the LSL streams visible now."""

from __future__ import annotations

import argparse

from devices.ports import list_lsl_streams, list_serial_ports


def add_parser(subparsers) -> None:
    """Register the ``devices`` subcommand."""
    p = subparsers.add_parser(
        "devices",
        help="list serial ports and visible LSL streams",
        description="List serial ports (for --exo) and LSL streams currently on the network.",
    )
    p.add_argument("--lsl-timeout", type=float, default=1.0, metavar="S",
                   help="seconds to wait for LSL streams (default 1)")
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
    streams = list_lsl_streams(args.lsl_timeout)
    print(f"LSL streams ({len(streams)}):")
    for s in streams:
        print(f"  {s['name']}  type={s['type']}  channels={s['channel_count']}  "
              f"rate={s['nominal_srate']:g} Hz  source_id={s['source_id']!r}  "
              f"host={s['hostname']}")
    if not streams:
        print("  none")
    return 0
