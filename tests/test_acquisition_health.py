"""Signal health of a window: NaN, gaps, flat and clipped channels, stalls."""

from __future__ import annotations

import numpy as np

from bci.acquisition import assess_health
from bci.acquisition.health import lost_samples

NAMES = ("Oz", "O1", "O2", "POz")
SF = 256.0


def _window(rng, n=512, scale=1e-5):
    return rng.standard_normal((4, n)) * scale, 1000.0 + np.arange(n) / SF


def test_clean_window_is_ok(rng):
    data, ts = _window(rng)
    h = assess_health(data, ts, NAMES, SF)
    assert h.ok and h.lost_samples == 0 and not h.problems()


def test_nan_and_inf_channels(rng):
    data, ts = _window(rng)
    data[1, 100:120] = np.nan
    data[3, 5] = np.inf
    h = assess_health(data, ts, NAMES, SF)
    assert h.nan_channels == ("O1", "POz")
    assert not h.ok
    assert "NaN/inf on O1,POz" in h.problems()


def test_gaps_count_lost_samples(rng):
    data, ts = _window(rng)
    ts[300:] += 40 / SF  # 40 samples missing
    ts[400:] += 8 / SF  # and 8 more
    assert assess_health(data, ts, NAMES, SF).lost_samples == 48
    ts[450:] += 3 / SF  # 3 samples (12 ms) is within the 20 ms jitter tolerance
    assert assess_health(data, ts, NAMES, SF).lost_samples == 48
    # small jitter is not a gap
    jitter = 1000.0 + np.arange(512) / SF + rng.uniform(-0.002, 0.002, 512)
    assert lost_samples(np.sort(jitter), SF) == 0


def test_flat_relative_whatever_the_unit(rng):
    for scale in (1e-6, 1e-3, 1.0, 1e3):  # units off by 1e3 either way
        data, ts = _window(rng, scale=scale)
        data[2] = 0.123 * scale
        data[0] *= 1e-5  # near-flat (a disconnected electrode) next to normal ones
        h = assess_health(data, ts, NAMES, SF)
        assert h.flat_channels == ("Oz", "O2"), scale
    data, ts = _window(rng)
    data[:] = 0.0
    assert assess_health(data, ts, NAMES, SF).flat_channels == NAMES


def test_clipped_runs_at_the_rail(rng):
    data, ts = _window(rng)
    rail = 4e-5
    data[0, 200:230] = rail  # saturated for ~0.12 s
    data[0] = np.minimum(data[0], rail)
    data[3, 10:13] = data[3].max() + 1  # 3 samples: too short to be clipping
    h = assess_health(data, ts, NAMES, SF)
    assert h.clipped_channels == ("Oz",)
    assert "clipped Oz" in h.problems()


def test_stalled_by_age_or_loss(rng):
    data, ts = _window(rng)
    assert assess_health(data, ts, NAMES, SF, seconds_since_last_sample=0.6,
                         stall_timeout=0.5).stalled
    assert not assess_health(data, ts, NAMES, SF, seconds_since_last_sample=0.4,
                             stall_timeout=0.5).stalled
    assert assess_health(data, ts, NAMES, SF, lost=True).stalled


def test_gaps_in_a_faster_than_real_time_stream():
    ts = 5.0 + np.arange(400) / (SF * 4)  # replayed at 4x
    ts[200:] += 30 / (SF * 4)
    assert lost_samples(ts, SF) == 30


def test_channel_that_just_went_flat_is_caught_at_once(rng):
    data, ts = _window(rng, n=384)  # 1.5 s
    data[1, -70:] = data[1, -70]  # the newest 0.27 s stuck at one value
    data[2, 100:170] = 0.5e-5  # stuck mid-window for 0.27 s (not at the extremes)
    data[2, 100:170] = np.clip(data[2, 100:170], data[2].min() + 1e-9, data[2].max() - 1e-9)
    h = assess_health(data, ts, NAMES, SF)
    assert h.flat_channels == ("O1", "O2")
    assert h.clipped_channels == ()
    data, ts = _window(rng, n=384)
    data[3, -70:] = data[3].max()  # stuck at the rail at the end: clipped, not flat
    h = assess_health(data, ts, NAMES, SF)
    assert h.clipped_channels == ("POz",) and h.flat_channels == ()
