"""bci.evaluation.metrics: accuracy, Wolpaw ITR, confusion matrix."""

from __future__ import annotations

import numpy as np
import pytest

from bci.evaluation import accuracy, confusion, itr_bits_per_min


def test_itr_known_values():
    # perfect 4-class selection each second: 2 bits/s
    assert itr_bits_per_min(1.0, 4, 1.0) == pytest.approx(120.0)
    # the peers' table: FBCCA 3-class 2 s 85.2 % -> 25.0 bits/min, 20.0 with +0.5 s
    assert itr_bits_per_min(0.852, 3, 2.0) == pytest.approx(25.0, abs=0.05)
    assert itr_bits_per_min(0.852, 3, 2.0, gaze_shift_s=0.5) == pytest.approx(20.0, abs=0.05)
    # Wolpaw formula by hand
    p, n, t = 0.7, 4, 1.5
    bits = np.log2(n) + p * np.log2(p) + (1 - p) * np.log2((1 - p) / (n - 1))
    assert itr_bits_per_min(p, n, t) == pytest.approx(bits * 60 / t)


def test_itr_zero_at_or_below_chance():
    assert itr_bits_per_min(0.25, 4, 1.0) == 0.0
    assert itr_bits_per_min(0.1, 4, 1.0) == 0.0
    assert itr_bits_per_min(1 / 3, 3, 2.0) == 0.0
    assert itr_bits_per_min(0.34, 3, 2.0) > 0.0


def test_itr_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"'p' must be in \[0.0, 1.0\], got 1.2 instead"):
        itr_bits_per_min(1.2, 4, 1.0)
    with pytest.raises(ValueError, match=r"'n_classes' must be at least 2, got 1 instead"):
        itr_bits_per_min(0.9, 1, 1.0)
    with pytest.raises(ValueError, match=r"'window_s' must be in \(0.0, inf\]"):
        itr_bits_per_min(0.9, 3, 0.0)
    with pytest.raises(TypeError, match=r"'n_classes' must be an int, got float instead"):
        itr_bits_per_min(0.9, 3.0, 1.0)


def test_accuracy_and_confusion():
    y = np.array(["13.0Hz", "17.0Hz", "rest", "rest"])
    p = ["13.0Hz", "rest", "rest", "17.0Hz"]
    assert accuracy(y, p) == 0.5
    m = confusion(y, p, ["13.0Hz", "17.0Hz", "rest"])
    np.testing.assert_array_equal(m, [[1, 0, 0], [0, 0, 1], [0, 1, 1]])
    with pytest.raises(ValueError, match="differ in shape"):
        accuracy(y, p[:3])
    with pytest.raises(ValueError, match="zero trials"):
        accuracy([], [])
