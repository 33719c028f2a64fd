"""Argument checks for :mod:`devices` (MNE-style messages, as in ``bci``'s checks).

``devices`` depends on nothing else of ours, so it keeps the three checks it needs here.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from typing import Any


def check_option(value: Any, allowed: Iterable[Any], name: str) -> Any:
    """Return ``value``; raise ValueError unless it is one of ``allowed``."""
    allowed = list(allowed)
    if value not in allowed:
        raise ValueError(
            f"Invalid value for the '{name}' parameter. Allowed values are "
            f"{', '.join(repr(a) for a in allowed)}, but got {value!r} instead."
        )
    return value


def ensure_int(value: Any, name: str) -> int:
    """Return ``value`` as int, rejecting bools and non-integral numbers."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"'{name}' must be an int, got {type(value).__name__} instead.")
    return int(value)


def check_range(value: Any, name: str, low: float | None = None, high: float | None = None,
                *, low_inclusive: bool = True, high_inclusive: bool = True) -> float:
    """Return ``value`` as float; raise unless it is a number within the bounds."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"'{name}' must be a number, got {type(value).__name__} instead.")
    v = float(value)
    above = low is None or (v >= low if low_inclusive else v > low)
    below = high is None or (v <= high if high_inclusive else v < high)
    if not (above and below) or v != v:
        lb, hb = "[" if low_inclusive else "(", "]" if high_inclusive else ")"
        lo, hi = ("-inf" if low is None else low), ("inf" if high is None else high)
        raise ValueError(f"'{name}' must be in {lb}{lo}, {hi}{hb}, got {value!r} instead.")
    return v
