"""Signal health of one window: lost samples, NaN/inf, flat and clipped channels, stalls."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bci.acquisition.window import SignalHealth

#: A channel is flat when its peak-to-peak is below this fraction of the median channel's
#: (relative, so that it works whatever the unit, even when it is off by 1e3).
FLAT_REL = 1e-3
#: A timestamp step longer than the sample period plus this (s) counts as a gap.
GAP_TOLERANCE_S = 0.02
#: A run this long (s) at the window's max or min value counts as clipping (at least 4 samples).
CLIP_RUN_S = 0.02
#: A channel flat over the newest this-many seconds (or repeating one value that long) is flat.
FLAT_TAIL_S = 0.25


def lost_samples(timestamps: np.ndarray, sfreq: float, tol_s: float = GAP_TOLERANCE_S) -> int:
    """Samples missing according to gaps between consecutive timestamps.

    The sample period is the nominal one, or the median step when the timestamps run
    faster (a source replayed faster than real time); ``tol_s`` is scaled alike.
    """
    if len(timestamps) < 2:
        return 0
    dt = np.diff(timestamps)
    period = 1.0 / sfreq
    med = float(np.median(dt))
    if 0 < med < 0.9 * period:
        period = med
    tol = tol_s * period * sfreq
    gaps = dt[dt > period + tol]
    return int(np.sum(np.round(gaps / period) - 1)) if gaps.size else 0


def _relative_flat(x: np.ndarray, flat_rel: float) -> np.ndarray:
    """Channels whose peak-to-peak is (near) zero relative to the median channel's."""
    ptp = np.ptp(x, axis=1)
    ref = float(np.median(ptp))
    flat = ptp <= flat_rel * ref if ref > 0 else np.ones_like(ptp, dtype=bool)
    return flat | (ptp == 0)


def _longest_run(mask: np.ndarray) -> np.ndarray:
    """Longest run of True along the last axis, per row."""
    n = mask.shape[-1]
    out = np.zeros(mask.shape[0], dtype=int)
    for i, row in enumerate(mask):
        if not row.any():
            continue
        edges = np.flatnonzero(np.diff(np.r_[0, row.astype(np.int8), 0]))
        out[i] = int(np.max(edges[1::2] - edges[::2])) if edges.size else n
    return out


def assess(
    data: np.ndarray,
    timestamps: np.ndarray,
    ch_names: Sequence[str],
    sfreq: float,
    *,
    seconds_since_last_sample: float = 0.0,
    stall_timeout: float = 0.4,
    lost: bool = False,
    flat_rel: float = FLAT_REL,
    clip_run_s: float = CLIP_RUN_S,
    flat_tail_s: float = FLAT_TAIL_S,
) -> SignalHealth:
    """Return the :class:`SignalHealth` of one window.

    Parameters
    ----------
    data : ndarray, shape (n_channels, n_samples)
        The window.
    timestamps : ndarray, shape (n_samples,)
        Its timestamps (seconds).
    ch_names : sequence of str
        Channel names, for the report.
    sfreq : float
        Nominal sampling rate.
    seconds_since_last_sample : float
        Local-clock time since the newest sample arrived.
    stall_timeout : float
        Above this the stream counts as stalled.
    lost : bool
        The stream is known to be gone (it counts as stalled at once).
    flat_rel : float
        Relative peak-to-peak threshold for flat channels.
    clip_run_s : float
        Minimum duration of a run at the window's extreme value to count as clipping.
    flat_tail_s : float
        A channel flat over the newest ``flat_tail_s`` seconds of the window, or repeating
        one value for that long anywhere in it, is flat.
    """
    data = np.asarray(data)
    names = list(ch_names)
    finite = np.isfinite(data)
    bad = ~finite.all(axis=1)
    nan_channels = tuple(n for n, b in zip(names, bad) if b)
    flat_channels: tuple[str, ...] = ()
    clipped_channels: tuple[str, ...] = ()
    good = ~bad
    if data.shape[1] >= 2 and good.any():
        x = data[good]
        good_names = [n for n, g in zip(names, good) if g]
        run = max(4, int(round(clip_run_s * sfreq)))
        clipped = np.zeros(len(x), dtype=bool)
        if x.shape[1] >= run:
            hi = x == x.max(axis=1, keepdims=True)
            lo = x == x.min(axis=1, keepdims=True)
            clipped = np.maximum(_longest_run(hi), _longest_run(lo)) >= run
        # flat: relative peak-to-peak over the window or over its newest part (so a channel
        # that just went flat is caught at once), or a stretch of one repeated value
        flat = _relative_flat(x, flat_rel)
        tail = max(4, int(round(flat_tail_s * sfreq)))
        if x.shape[1] > tail:  # (a channel stuck at the rail is clipped, not flat)
            same = np.zeros_like(x, dtype=bool)
            same[:, 1:] = np.diff(x, axis=1) == 0
            stuck = _relative_flat(x[:, -tail:], flat_rel) | (_longest_run(same) + 1 >= tail)
            flat |= stuck & ~clipped
        clipped &= ~flat
        flat_channels = tuple(n for n, f in zip(good_names, flat) if f)
        clipped_channels = tuple(n for n, c in zip(good_names, clipped) if c)
    age = float(seconds_since_last_sample)
    return SignalHealth(
        stalled=bool(lost or age > stall_timeout),
        lost_samples=lost_samples(np.asarray(timestamps), sfreq),
        nan_channels=nan_channels,
        flat_channels=flat_channels,
        clipped_channels=clipped_channels,
        seconds_since_last_sample=age,
    )
