"""Argument types and checks shared by the subcommands."""

from __future__ import annotations

import argparse
import math

from bci.errors import ConfigError
from calibration.cues import MIN_TRIAL_S, MIN_TRIALS_PER_CLASS


def positive_floats(text: str) -> list[float]:
    """``"0.5,1, 2"`` -> ``[0.5, 1.0, 2.0]``; anything else is an argparse error."""
    try:
        values = [float(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected numbers separated by commas, got {text!r}"
        ) from None
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive numbers, got {text!r}")
    return values


def names(text: str) -> list[str]:
    """``"walk, stop,sit"`` -> ``["walk", "stop", "sit"]`` (empty items dropped)."""
    return [v.strip() for v in text.split(",") if v.strip()]


def check_at_least(value: float, option: str, least: float, *, strict: bool = False,
                   unit: str = "", what: str = "") -> float:
    """Return ``value`` when it is a finite number ``>= least`` (``> least`` with ``strict``);
    else raise a one-line :class:`~bci.errors.ConfigError` that names ``option``, the allowed
    range and (``what``) what the option sets.

    For the values argparse cannot check without printing its usage first (the CLI's user
    errors are one line).
    """
    ok = math.isfinite(value) and (value > least if strict else value >= least)
    if not ok:
        finite = "" if math.isfinite(value) else "a finite number "
        why = f" ({what})" if what else ""
        raise ConfigError(f"{option} must be {finite}{'>' if strict else '>='} {least:g}{unit}"
                          f"{why}, got {value:g}.")
    return value


def check_cued_trials(n: int, n_option: str, *, trial_s: float, cue_s: float,
                      rest_s: float, or_zero: str = "") -> None:
    """Check the options of a cued trial sequence (``stimulus --cued``, live ``calibrate``)
    against :meth:`calibration.cues.CueSequence.balanced`'s rules, naming the options
    (``or_zero``: what ``n_option`` 0 means, when it is allowed)."""
    if n < MIN_TRIALS_PER_CLASS:
        zero = f", or 0 ({or_zero})" if or_zero else ""
        raise ConfigError(f"{n_option} must be >= {MIN_TRIALS_PER_CLASS} trials per class (a "
                          f"calibration cross-validates, which needs two){zero}, got {n}.")
    check_at_least(trial_s, "--trial-s", MIN_TRIAL_S, unit=" s",
                   what="the stimulation of each trial, after its --cue-s cue")
    check_at_least(cue_s, "--cue-s", 0.0, unit=" s", what="the cue before each trial")
    check_at_least(rest_s, "--rest-s", 0.0, unit=" s", what="the pause after each trial")
