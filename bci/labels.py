"""How class labels name stimulus frequencies and the no-control (rest) class.

Every part of the system (annotations in recordings, decoder classes, decisions, profiles,
the command mapping) uses the same labels:

- a target is named ``"<freq>Hz"`` with one decimal, e.g. ``"13.0Hz"`` (:func:`freq_label`);
- the no-control class is ``"rest"`` (:data:`REST_LABEL`).

Decoders also accept numeric labels, which are taken to be the frequencies in Hz, and
strings such as ``"13"`` or ``"13 Hz"`` (as MOABB's pipelines use); :func:`label_to_freq`
does the parsing.
"""

from __future__ import annotations

import re

import numpy as np

REST_LABEL = "rest"

_FREQ_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?)\s*(?:hz)?\s*$", re.IGNORECASE)


def freq_label(freq: float) -> str:
    """Return the canonical label of a stimulus frequency, e.g. ``13 -> "13.0Hz"``.

    One decimal unless the frequency needs more (``6.66 -> "6.66Hz"``, ``9.25 ->
    "9.25Hz"``, as in MOABB's MAMEM and Nakanishi2015 datasets), so the label keeps the
    frequency the decoders build their references at.
    """
    f = float(freq)
    return f"{f:.1f}Hz" if round(f, 1) == f else f"{f:g}Hz"


def is_rest(label: object) -> bool:
    """Return True when ``label`` names the no-control class."""
    return isinstance(label, str) and label.strip().lower() == REST_LABEL


def label_to_freq(label: object) -> float | None:
    """Return the frequency (Hz) a label names, or None for the rest class.

    Parameters
    ----------
    label : str | float | int
        ``"13.0Hz"``, ``"13"``, ``"13 Hz"``, ``13``, ``13.0`` or ``"rest"``.

    Returns
    -------
    freq : float | None
        The frequency, or None when the label is the rest class.

    Raises
    ------
    ValueError
        When the label names neither a frequency nor rest.
    """
    if is_rest(label):
        return None
    if isinstance(label, (int, float, np.integer, np.floating)) and not isinstance(label, bool):
        return float(label)
    if isinstance(label, (str, np.str_)):
        m = _FREQ_RE.match(str(label))
        if m:
            return float(m.group(1))
    raise ValueError(
        f"Cannot read a stimulus frequency from the class label {label!r}: use the frequency "
        f"in Hz (13 or '13.0Hz') or {REST_LABEL!r} for the no-control class."
    )


def normalize_label(label: object) -> str:
    """Return the canonical form of a label (``13``, ``"13 Hz"`` -> ``"13.0Hz"``; rest ->
    ``"rest"``), or the stripped text when it names neither (e.g. ``"left"``)."""
    if is_rest(label):
        return REST_LABEL
    try:
        freq = label_to_freq(label)
    except ValueError:
        return str(label).strip()
    return REST_LABEL if freq is None else freq_label(freq)
