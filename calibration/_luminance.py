"""Frame-based sampled sinusoidal modulation (the maths behind the on-screen stimulus).

A tile flickering at ``f`` Hz with phase ``phi`` on a display refreshing at ``R`` Hz shows, on
frame ``k`` (counted from stimulation onset), the luminance

    L(k) = 0.5 * (1 + sin(2 * pi * f * k / R + phi))

in [0, 1]. Sampling the sinusoid per frame renders any frequency below the Nyquist limit
``R / 2`` (not only divisors of ``R``, as on/off frame patterns do); see Manyakov et al.,
"Sampled sinusoidal stimulation profile and multichannel fuzzy logic classification for
monitor-based phase-coded SSVEP BCI", J. Neural Eng. 2013; Chen et al., PNAS 2015.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from calibration.errors import CalibrationError


def luminance(freq: float, phase: float, frames: np.ndarray | int, refresh: float) -> np.ndarray:
    """Return the luminance in [0, 1] of a tile on the given frame indices.

    Parameters
    ----------
    freq : float
        Flicker frequency in Hz.
    phase : float
        Phase in radians.
    frames : ndarray of int | int
        Frame indices counted from stimulation onset.
    refresh : float
        Display refresh rate in Hz.

    Returns
    -------
    lum : ndarray
        ``0.5 * (1 + sin(2*pi*freq*k/refresh + phase))``.
    """
    k = np.asarray(frames, dtype=float)
    return 0.5 * (1.0 + np.sin(2.0 * np.pi * float(freq) * k / float(refresh) + float(phase)))


def gray_levels(freq: float, phase: float, frames: np.ndarray | int, refresh: float,
                *, low: int = 0, high: int = 255) -> np.ndarray:
    """Return the 8-bit gray level ``round(low + (high - low) * L(k))`` per frame."""
    lum = luminance(freq, phase, frames, refresh)
    return np.rint(low + (high - low) * lum).astype(np.int64)


def check_renderable(freqs: Sequence[float], refresh: float) -> None:
    """Raise CalibrationError when a frequency cannot be rendered at ``refresh`` Hz.

    A sampled sinusoid needs more than two frames per period: ``freq < refresh / 2``.

    Parameters
    ----------
    freqs : sequence of float
        Flicker frequencies in Hz.
    refresh : float
        Display refresh rate in Hz.
    """
    if not np.isfinite(refresh) or refresh <= 0:
        raise CalibrationError(f"Invalid display refresh rate {refresh!r} Hz.")
    nyquist = refresh / 2.0
    bad = [float(f) for f in freqs if not (0 < float(f) < nyquist)]
    if bad:
        raise CalibrationError(
            f"The display refreshes at {refresh:.1f} Hz, so it can only render flicker "
            f"frequencies below {nyquist:.1f} Hz (Nyquist); cannot render "
            f"{', '.join(f'{f:g} Hz' for f in bad)}. Use lower frequencies or a faster display."
        )


def refresh_from_intervals(intervals: Sequence[float]) -> float:
    """Return the refresh rate (Hz) from flip-to-flip intervals (s): 1 / median interval."""
    iv = np.asarray(intervals, dtype=float)
    iv = iv[np.isfinite(iv) & (iv > 0)]
    if iv.size == 0:
        raise CalibrationError("Cannot measure the display refresh rate: no frame intervals.")
    return float(1.0 / np.median(iv))
