"""``ssvep-exo stimulus``: the SSVEP stimulus on screen (needs the ``stimulus`` extra) or on a
controller board's LEDs (``--leds URL``), with the same LSL markers.

Examples
--------
ssvep-exo stimulus --freqs 13,17,21 --labels walk,stop,sit --duration 60
ssvep-exo stimulus --freqs 13,17 --cued 5 --trial-s 4 --cue-s 1 --refresh-rate 60
ssvep-exo stimulus --leds /dev/ttyUSB0 --freqs 13,17,21 --cued 8
ssvep-exo stimulus --leds exofw://avr --cued 3        (the reference firmware in simavr)
"""

from __future__ import annotations

import argparse
import math

from bci.app.led_stimulus import LedStimulus
from bci.cli._args import check_at_least, check_cued_trials, names, positive_floats
from bci.errors import ConfigError
from bci.labels import freq_label
from calibration.cues import MIN_TRIAL_S, MIN_TRIALS_PER_CLASS, CueSequence
from calibration.errors import CalibrationError
from calibration.stimulus import Stimulus, Target
from devices.leds import N_LIGHTS


def add_parser(subparsers) -> None:
    """Register the ``stimulus`` subcommand."""
    p = subparsers.add_parser(
        "stimulus", help="flicker the stimulus (screen, or a board's LEDs) and publish LSL "
                         "markers",
        description="One labelled tile per command, each flickering with a frame-based "
                    "sampled sinusoid at its frequency; LSL markers at cues and stimulation "
                    "onset/offset, timestamped at the frame flip. With --leds, the lights of "
                    "a controller board instead (one light per frequency, square waves timed "
                    "by the board, docs/protocol.md section 12): cues are printed, and the "
                    "stimulation markers come from the board's light events.")
    p.add_argument("--leds", metavar="URL",
                   help="drive the stimulus lights of the controller at URL (a serial port, "
                   "socket://host:port, exofw://avr) instead of the screen; at most 5 "
                   "frequencies")
    p.add_argument("--freqs", type=positive_floats, default=[13.0, 17.0, 21.0],
                   help="flicker frequencies in Hz (default 13,17,21)")
    p.add_argument("--phases", type=_phases, default=None,
                   help="phases in radians, one per frequency (default 0)")
    p.add_argument("--labels", type=names, default=None,
                   help="captions, one per frequency (e.g. walk,stop,sit)")
    p.add_argument("--refresh-rate", type=float, default=None,
                   help="declared refresh rate in Hz (default: measured over 1 s; screen only)")
    p.add_argument("--duration", type=float, default=30.0,
                   help="free-running flicker duration in s (> 0; default 30)")
    p.add_argument("--cued", type=int, default=0, metavar="N",
                   help=f"run N (>= {MIN_TRIALS_PER_CLASS}) cued trials per class (and rest) "
                   "instead of free flicker")
    p.add_argument("--trial-s", type=float, default=4.0,
                   help=f"stimulation per cued trial, after its cue (s, >= {MIN_TRIAL_S:g}; "
                   "default 4)")
    p.add_argument("--cue-s", type=float, default=1.0,
                   help="highlight before each trial (s, >= 0; default 1)")
    p.add_argument("--rest-s", type=float, default=1.0,
                   help="pause after each trial (s, >= 0; default 1)")
    p.add_argument("--size", type=_size, default=(900, 500), help="window size WxH (screen)")
    p.add_argument("--fullscreen", action="store_true", help="full screen (screen)")
    p.add_argument("--marker-name", default="ssvep-exo-stimulus", help="LSL marker stream name")
    p.add_argument("--seed", type=int, default=None)
    p.set_defaults(func=run)


def _phases(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}"
                                         ) from None


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from None
    if w < 0 or h < 0:  # pygame takes 0x0 as the screen's size
        raise argparse.ArgumentTypeError(f"expected a size of at least 0x0, got {text!r}")
    return w, h


def _checked_sequence(args: argparse.Namespace) -> CueSequence | None:
    """Check the options before a window or a board is opened (each bad value is a one-line
    user error); return the cued sequence, or None for free flicker."""
    n = len(args.freqs)
    phases = args.phases or [0.0] * n
    labels = args.labels or [""] * n
    if len(phases) != n or len(labels) != n:
        raise CalibrationError(f"Give one phase and one label per frequency: {n} frequencies, "
                               f"{len(phases)} phases, {len(labels)} labels.")
    if len({freq_label(f) for f in args.freqs}) != n:
        raise ConfigError(f"--freqs must not repeat a frequency, got "
                          f"{', '.join(f'{f:g}' for f in args.freqs)}.")
    if not all(math.isfinite(p) for p in phases):
        raise ConfigError(f"--phases must be finite numbers (radians), got "
                          f"{', '.join(f'{p:g}' for p in phases)}.")
    if args.refresh_rate is not None:
        check_at_least(args.refresh_rate, "--refresh-rate", 0.0, strict=True, unit=" Hz")
    if args.seed is not None:
        check_at_least(args.seed, "--seed", 0)
    if not args.cued:
        check_at_least(args.duration, "--duration", 0.0, strict=True, unit=" s",
                       what="the free-running flicker")
        return None
    check_cued_trials(args.cued, "--cued", trial_s=args.trial_s, cue_s=args.cue_s,
                      rest_s=args.rest_s, or_zero="free flicker, the default")
    return CueSequence.balanced(args.freqs, args.cued, trial_s=args.trial_s, cue_s=args.cue_s,
                                rest_s=args.rest_s, seed=args.seed)


def run(args: argparse.Namespace) -> int:
    """Open the window (or the board's lights) and flicker, or run a cued sequence."""

    seq = _checked_sequence(args)
    n = len(args.freqs)
    phases = args.phases or [0.0] * n
    labels = args.labels or [""] * n
    targets = [Target(f, p, t) for f, p, t in zip(args.freqs, phases, labels)]
    if args.leds:
        if n > N_LIGHTS:
            raise CalibrationError(f"The board has {N_LIGHTS} lights: give at most {N_LIGHTS} "
                                   f"frequencies, not {n}.")

        stim = LedStimulus(targets, args.leds, marker_name=args.marker_name)
        intro = (f"lights 1..{n} of {args.leds} at {', '.join(f'{f:g}' for f in args.freqs)} "
                 f"Hz; markers on LSL stream {args.marker_name!r}; Ctrl-C stops")
    else:
        stim = Stimulus(targets, refresh_rate=args.refresh_rate, size=args.size,
                        fullscreen=args.fullscreen, marker_name=args.marker_name)
        intro = None
    with stim:
        print(intro or f"refresh rate {stim.refresh_rate:.2f} Hz; markers on LSL stream "
              f"{args.marker_name!r}; Esc closes the window")
        if seq is not None:
            for k, lab in enumerate(seq.labels):
                print(f"trial {k + 1}/{len(seq.labels)}: {lab}")
                stim.run_trial(lab, cue_s=seq.cue_s, stim_s=seq.trial_s, rest_s=seq.rest_s)
        else:
            stim.flicker(args.duration)
    return 0
