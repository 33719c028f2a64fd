"""``ssvep-exo simulate-eeg``: publish synthetic SSVEP EEG and its schedule over LSL."""

from __future__ import annotations

import argparse

from bci.cli._source_run import run_source
from bci.errors import ConfigError
from bci.sources import Schedule, SyntheticEEG
from bci.sources.synthetic import DEFAULT_SNR

DEFAULT_NAME = "ssvep-synthetic"


def add_parser(subparsers) -> None:
    """Register the ``simulate-eeg`` subcommand."""
    p = subparsers.add_parser(
        "simulate-eeg",
        help="publish synthetic SSVEP EEG (+ schedule markers) as LSL streams",
        description="Publish synthetic occipital EEG (1/f background, alpha, 50 Hz mains, "
        "blinks, SSVEP at the scheduled frequency) as an LSL EEG stream, and the schedule as "
        "an LSL marker stream named NAME-markers, until the schedule ends or Ctrl-C.",
    )
    p.add_argument("--schedule", default=None, metavar="SPEC",
                   help="label:seconds list, e.g. 'rest:5,13:6,rest:4,17:6' (default: 13, 17 "
                   "and 21 Hz twice each in shuffled order, 5 s each, 4 s rest between)")
    p.add_argument("--speed", type=float, default=1.0, help="speed factor (default 1: real time)")
    p.add_argument("--name", default=DEFAULT_NAME, help=f"stream name (default {DEFAULT_NAME})")
    p.add_argument("--source-id", default=None, help="source id (default: the name)")
    p.add_argument("--loop", action="store_true", help="repeat the schedule until stopped")
    p.add_argument("--duration", type=float, default=None, metavar="S",
                   help="stop after S seconds of wall-clock time")
    p.add_argument("--snr", type=float, default=None,
                   help="SSVEP amplitude over background (default 0.25)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--sfreq", type=float, default=256.0, help="sampling rate (default 256)")
    p.add_argument("--phase-locked", action="store_true",
                   help="phase-locked responses (screen stimuli) instead of random phase")
    p.add_argument("--quiet", action="store_true", help="do not print each marker")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Publish until the schedule ends, --duration passes or Ctrl-C."""

    try:
        schedule = (Schedule.interleaved() if args.schedule is None
                    else Schedule.parse(args.schedule))
        src = SyntheticEEG(
            schedule, name=args.name, source_id=args.source_id, speed=args.speed,
            loop=args.loop, seed=args.seed, sfreq=args.sfreq,
            snr=DEFAULT_SNR if args.snr is None else args.snr, phase_locked=args.phase_locked,
        )
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{exc}") from None
    return run_source(src, duration=args.duration, quiet=args.quiet,
                      header=f"Schedule ({schedule.duration:g} s): {schedule.to_string()}")
