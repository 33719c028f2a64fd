"""The rest-tail model: GEV of per-block maxima of the no-control evidence."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import lfilter
from scipy.stats import genextreme

from calibration.rest_model import (
    RestTail,
    block_maxima,
    fit_rest_tail,
    pooled_shape,
    threshold_for_budget,
)


def test_block_maxima_cuts_each_interval_into_whole_blocks():
    t = np.arange(0, 20, 0.1)
    stat = np.sin(t)
    # 0-7 s: blocks 0-3, 3-6 and the 1 s remainder dropped; 10-14.5 s: 10-13, 13-14.5 kept
    m = block_maxima(t, stat, [(0.0, 7.0), (10.0, 14.5)], 3.0)
    assert len(m) == 4
    assert m[0] == pytest.approx(np.max(stat[(t >= 0) & (t < 3)]))
    assert m[3] == pytest.approx(np.max(stat[(t >= 13) & (t < 14.5)]))
    with pytest.raises(ValueError, match="block_s"):
        block_maxima(t, stat, [(0, 5)], 0.0)


def test_fit_recovers_a_known_gev_and_rates_invert():
    x = genextreme.rvs(-0.15, loc=2.0, scale=0.7, size=3000, random_state=3)
    tail = fit_rest_tail(x, 3.0)
    assert tail.shape == pytest.approx(0.15, abs=0.06)
    assert tail.loc == pytest.approx(2.0, abs=0.06)
    assert tail.scale == pytest.approx(0.7, abs=0.05)
    level = tail.level_for_rate(0.5)
    assert tail.rate_per_min(level) == pytest.approx(0.5, rel=1e-6)
    # a higher threshold gives fewer false activations
    assert tail.rate_per_min(level + 1.0) < 0.5 < tail.rate_per_min(level - 0.5)
    assert RestTail.from_dict(tail.to_dict()).rate_per_min(level) == pytest.approx(0.5, rel=1e-4)


def test_too_few_blocks_is_a_clear_error():
    with pytest.raises(ValueError, match="record more rest"):
        fit_rest_tail(np.array([1.0, 2.0]), 3.0)


def _ar_trace(rng, minutes, step=0.1, rho=0.9, offset=0.0):
    """A Gaussian AR(1) 'evidence' sampled every ``step`` s."""
    n = int(minutes * 60 / step)
    x = lfilter([1.0], [1.0, -rho], rng.normal(size=n) * np.sqrt(1 - rho**2))
    return np.arange(n) * step, x + offset


def _count_upcrossings(x, level, refractory):
    above = np.flatnonzero((x[1:] >= level) & (x[:-1] < level)) + 1
    out, last = 0, -np.inf
    for i in above:
        if i - last >= refractory:
            out, last = out + 1, i
    return out


def test_threshold_from_a_minute_holds_the_budget_on_average():
    """Thresholds set on one minute of rest (shape pooled over other 'users') give, over
    many users, the budgeted rate on an hour of the same process; the plug-in threshold
    alone would be optimistic."""
    rng = np.random.default_rng(0)
    block = 3.0
    others = [block_maxima(*_ar_trace(rng, 1.0, offset=0.3 * k), [(0.0, 60.0)], block)
              for k in range(12)]
    xi, se = pooled_shape(others, np.linspace(-0.5, 0.5, 21))
    assert 0 < se < 0.25
    observed, inside = [], 0
    for _ in range(16):
        t, x = _ar_trace(rng, 1.0)
        m = block_maxima(t, x, [(0.0, 60.0)], block)
        h, tail = threshold_for_budget(lambda _h, m=m: m, 0.5, block_s=block, shape=xi,
                                       shape_sd=se, lo=0.01, hi=100.0)
        mean, lo, hi = tail.expected_rate(h)
        assert mean == pytest.approx(0.5, rel=0.05)
        assert tail.rate_per_min(h) < mean  # the correction raises the threshold
        _, long = _ar_trace(rng, 60.0)
        observed.append(_count_upcrossings(long, h, refractory=30) / 60.0)
        inside += lo <= observed[-1] <= hi
    assert 0.25 < np.mean(observed) < 1.0
    assert inside >= 10
