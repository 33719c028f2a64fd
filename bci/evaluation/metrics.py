"""Accuracy, Wolpaw information transfer rate and confusion matrices."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bci._check import check_range, ensure_int


def accuracy(y_true: Sequence, y_pred: Sequence) -> float:
    """Fraction of predictions equal to the truth.

    Parameters
    ----------
    y_true, y_pred : array-like, shape (n_trials,)
        Labels (compared as strings, so ``"13.0Hz"`` and ``np.str_("13.0Hz")`` match).
    """
    t = np.asarray(y_true).astype(str)
    p = np.asarray(y_pred).astype(str)
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in shape: {t.shape} vs {p.shape}.")
    if t.size == 0:
        raise ValueError("Cannot compute accuracy on zero trials.")
    return float(np.mean(t == p))


def itr_bits_per_min(p: float, n_classes: int, window_s: float, gaze_shift_s: float = 0.0) -> float:
    """Wolpaw information transfer rate in bits per minute.

    ``B = log2 N + P log2 P + (1 - P) log2((1 - P) / (N - 1))`` bits per selection, one
    selection every ``window_s + gaze_shift_s`` seconds; 0 when ``P <= 1/N``.

    Parameters
    ----------
    p : float
        Accuracy in [0, 1].
    n_classes : int
        Number of classes N (rest counts as a class in the 4-class task).
    window_s : float
        Window length T (s).
    gaze_shift_s : float, default=0.0
        Time added per selection for the user to move their gaze (s).

    References
    ----------
    .. [1] J. R. Wolpaw et al., "EEG-based communication: improved accuracy by response
       verification", IEEE Trans. Rehabil. Eng., 6(3), 1998.
    """
    p = check_range(p, "p", 0.0, 1.0)
    n = ensure_int(n_classes, "n_classes")
    if n < 2:
        raise ValueError(f"'n_classes' must be at least 2, got {n} instead.")
    t = check_range(window_s, "window_s", 0.0, None, low_inclusive=False)
    t += check_range(gaze_shift_s, "gaze_shift_s", 0.0)
    if p <= 1.0 / n:
        return 0.0
    bits = np.log2(n) + p * np.log2(p)
    if p < 1.0:
        bits += (1.0 - p) * np.log2((1.0 - p) / (n - 1))
    return float(bits * 60.0 / t)


def confusion(y_true: Sequence, y_pred: Sequence, labels: Sequence[str]) -> np.ndarray:
    """Confusion matrix, rows = true label, columns = predicted label, in ``labels`` order.

    Predictions outside ``labels`` are not counted.
    """
    labels = [str(x) for x in labels]
    index = {lab: i for i, lab in enumerate(labels)}
    m = np.zeros((len(labels), len(labels)), dtype=int)
    for t, p in zip(np.asarray(y_true).astype(str), np.asarray(y_pred).astype(str)):
        if t in index and p in index:
            m[index[t], index[p]] += 1
    return m
