"""Training-window augmentation inside a decoder: cut fixed-length windows from longer epochs.

A decoder with a ``window_s`` parameter decodes windows of that length. Given longer
calibration epochs in ``fit``, it cuts every window of that length starting every
``augment_step_s`` seconds inside each epoch (all with the epoch's label), so a user of the
scikit-learn API, a MOABB pipeline and ``ssvep-exo evaluate`` train it the same way. Given
epochs longer than the window in ``predict`` / ``decision_function``, it decodes the window
starting ``window_start_s`` seconds into each epoch.
"""

from __future__ import annotations

import numbers

import numpy as np


def _seconds(value, name: str, *, allow_none: bool = False, positive: bool = True):
    if value is None and allow_none:
        return None
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value)
    if not ok or (value <= 0 if positive else value < 0):
        raise ValueError(f"'{name}' must be a {'positive' if positive else 'non-negative'} "
                         f"number of seconds{' or None' if allow_none else ''}, got {value!r}.")
    return float(value)


def window_samples(window_s, sfreq: float) -> int | None:
    """Window length in samples (None when ``window_s`` is None)."""
    w = _seconds(window_s, "window_s", allow_none=True)
    return None if w is None else max(8, int(round(w * sfreq)))


def training_windows(X: np.ndarray, y, n: int, step_s, sfreq: float):
    """Every ``n``-sample window starting each ``step_s`` s inside each epoch of ``X``.

    Returns ``(X_windows, y_windows)``; epochs exactly ``n`` long give themselves.

    Raises
    ------
    ValueError
        When the epochs are shorter than ``n`` samples.
    """
    if X.shape[2] < n:
        raise ValueError(
            f"The epochs have {X.shape[2]} samples but window_s asks for {n}: give epochs at "
            "least one window long (longer epochs add training windows).")
    step = max(1, int(round(_seconds(step_s, "augment_step_s") * sfreq)))
    starts = np.arange(0, X.shape[2] - n + 1, step)
    Xw = np.lib.stride_tricks.sliding_window_view(X, n, axis=2)[:, :, starts]  # (t, c, s, n)
    Xw = np.ascontiguousarray(Xw.transpose(0, 2, 1, 3).reshape(-1, X.shape[1], n))
    yw = None if y is None else np.repeat(np.asarray(y), len(starts))
    return Xw, yw


def decoding_window(X: np.ndarray, n: int | None, start_s, sfreq: float) -> np.ndarray:
    """The ``n``-sample window starting ``start_s`` s into each epoch (epochs longer than n)."""
    if n is None or X.shape[2] <= n:
        return X
    start = int(round(_seconds(start_s, "window_start_s", positive=False) * sfreq))
    if start + n > X.shape[2]:
        raise ValueError(
            f"window_start_s={start_s!r} s plus the {n}-sample window does not fit in epochs "
            f"of {X.shape[2]} samples.")
    return X[:, :, start:start + n]
