"""``ssvep-exo replay FILE``: publish a recorded session as LSL EEG plus its cues."""

from __future__ import annotations

import argparse

from bci.cli._source_run import run_source
from bci.errors import ConfigError
from bci.sources import RecordingPlayer

DEFAULT_NAME = "ssvep-replay"


def add_parser(subparsers) -> None:
    """Register the ``replay`` subcommand."""
    p = subparsers.add_parser(
        "replay",
        help="replay a recorded session as LSL EEG + cue markers",
        description="Publish a recording (Kalunga FIF, any MNE-readable file with cues, XDF) "
        "as an LSL EEG stream in microvolts, and its annotations as an LSL marker stream named "
        "NAME-markers, at real time or a speed factor, once or in a loop.",
    )
    p.add_argument("file", help="the recording to replay")
    p.add_argument("--speed", type=float, default=1.0, help="speed factor (default 1: real time)")
    p.add_argument("--loop", action="store_true", help="start again at the end until stopped")
    p.add_argument("--name", default=DEFAULT_NAME, help=f"stream name (default {DEFAULT_NAME})")
    p.add_argument("--source-id", default=None, help="source id (default: the name)")
    p.add_argument("--duration", type=float, default=None, metavar="S",
                   help="stop after S seconds of wall-clock time")
    p.add_argument("--quiet", action="store_true", help="do not print each marker")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Publish until the recording ends (or forever with --loop), --duration or Ctrl-C."""

    try:
        src = RecordingPlayer(args.file, name=args.name, source_id=args.source_id,
                              speed=args.speed, loop=args.loop)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{exc}") from None
    return run_source(src, duration=args.duration, quiet=args.quiet,
                      header=f"Replaying {args.file}: {src.duration:.1f} s, {len(src.cues)} markers")
