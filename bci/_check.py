"""Argument checks with MNE-style messages (see mne/utils/check.py).

Each check takes the value and the parameter ``name`` its message uses, and returns the value
(unchanged, or converted as its docstring says) or raises TypeError / ValueError.
"""

from __future__ import annotations

import difflib
import numbers
from collections.abc import Iterable
from typing import Any


def _type_name(types: tuple[type, ...]) -> str:
    names = ["None" if t is type(None) else t.__name__ for t in types]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def check_type(value: Any, types: type | tuple[type, ...], name: str) -> Any:
    """Raise TypeError unless ``value`` is an instance of ``types`` (a type or a tuple of
    types; ``type(None)`` allows None); a bool is refused where int is allowed but bool not."""
    if not isinstance(types, tuple):
        types = (types,)
    if isinstance(value, bool) and bool not in types and int in types:
        raise TypeError(f"'{name}' must be an instance of {_type_name(types)}, got bool instead.")
    if not isinstance(value, types):
        raise TypeError(
            f"'{name}' must be an instance of {_type_name(types)}, "
            f"got {type(value).__name__} instead."
        )
    return value


def suggest(value: str, options: Iterable[str]) -> str:
    """Return " Did you mean 'x'?" for the closest option, or an empty string."""
    close = difflib.get_close_matches(str(value), [str(o) for o in options], n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def check_option(value: Any, allowed: Iterable[Any], name: str) -> Any:
    """Raise ValueError unless ``value`` is one of ``allowed`` (for a string, the message
    suggests the closest allowed value)."""
    allowed = list(allowed)
    if value not in allowed:
        hint = suggest(value, allowed) if isinstance(value, str) else ""
        raise ValueError(
            f"Invalid value for the '{name}' parameter. Allowed values are "
            f"{', '.join(repr(a) for a in allowed)}, but got {value!r} instead.{hint}"
        )
    return value


def ensure_int(value: Any, name: str) -> int:
    """Return ``value`` as int, rejecting bools and non-integral numbers."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"'{name}' must be an int, got {type(value).__name__} instead.")
    return int(value)


def check_range(
    value: Any,
    name: str,
    low: float | None = None,
    high: float | None = None,
    *,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> float:
    """Return ``value`` as float; raise TypeError unless it is a number, ValueError unless
    ``low <= value <= high`` (bounds optional, each inclusive unless told otherwise; NaN is
    refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"'{name}' must be a number, got {type(value).__name__} instead.")
    v = float(value)
    ok = True
    if low is not None:
        ok &= v >= low if low_inclusive else v > low
    if high is not None:
        ok &= v <= high if high_inclusive else v < high
    if not ok or v != v:
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        lb = "[" if low_inclusive else "("
        hb = "]" if high_inclusive else ")"
        raise ValueError(f"'{name}' must be in {lb}{lo}, {hi}{hb}, got {value!r} instead.")
    return v
