"""Argument types shared by the subcommands (comma-separated lists)."""

from __future__ import annotations

import argparse


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
