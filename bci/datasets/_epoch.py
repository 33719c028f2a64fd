"""Cutting fixed-length windows after each cue (numpy arrays, or ``mne.Epochs``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import mne
import numpy as np

from bci._check import check_range, suggest
from bci._logging import logger
from bci.datasets._cues import cue_table, map_label
from bci.errors import DatasetError


def pick_channels(raw: mne.io.BaseRaw, channels: Sequence[str] | None) -> list[int]:
    """Indices of ``channels`` in ``raw`` (all EEG channels when None).

    Raises
    ------
    bci.errors.DatasetError
        When channels are missing; the message lists them, the available ones and the
        closest match.
    """
    if channels is None:
        picks = mne.pick_types(raw.info, eeg=True, exclude=[])
        return list(picks) if len(picks) else list(range(len(raw.ch_names)))
    if isinstance(channels, str):
        channels = [channels]
    channels = list(channels)
    missing = [c for c in channels if c not in raw.ch_names]
    if missing:
        hint = suggest(missing[0], raw.ch_names)
        raise DatasetError(
            f"Channels missing from the recording: {', '.join(missing)}. Available: "
            f"{', '.join(raw.ch_names)}.{hint} Pass channel names that exist (or none for all)."
        )
    return [raw.ch_names.index(c) for c in channels]


def prefilter_raw(raw: mne.io.BaseRaw, band: tuple[float | None, float | None]) -> mne.io.BaseRaw:
    """Band-pass a copy of the whole recording (zero-phase Butterworth order 4, as MOABB)."""
    l_freq, h_freq = band
    return raw.copy().filter(
        l_freq, h_freq, picks="all", method="iir",
        iir_params={"order": 4, "ftype": "butter"}, phase="zero", verbose="error",
    )  # fmt: skip


def select_classes(labels: np.ndarray, classes: Iterable[object] | None) -> np.ndarray:
    """Boolean mask of cues whose label is in ``classes`` (all when None)."""
    if classes is None:
        return np.ones(len(labels), bool)
    wanted = [map_label(c) for c in classes]
    absent = [c for c in wanted if c not in set(labels)]
    if absent:
        raise DatasetError(
            f"Classes not in the recording: {', '.join(absent)}. Present: "
            f"{', '.join(sorted(set(labels)))}."
        )
    return np.isin(labels, wanted)


def epoch(
    raw: mne.io.BaseRaw,
    *,
    tmin: float = 2.0,
    window_s: float = 1.0,
    channels: Sequence[str] | None = None,
    classes: Iterable[object] | None = None,
    prefilter: tuple[float | None, float | None] | None = None,
    offsets: Sequence[float] | None = None,
):
    """Cut one window per cue (or several, with ``offsets``) into an array.

    Parameters
    ----------
    raw : mne.io.Raw
        A recording from :func:`bci.datasets.load_recording`.
    tmin : float, default=2.0
        Window start, seconds after the cue.
    window_s : float, default=1.0
        Window length (s); every epoch has exactly ``round(window * sfreq)`` samples.
    channels : list of str | None
        Channel subset, in this order (default: all EEG channels).
    classes : iterable | None
        Labels to keep (``["13.0Hz", "17.0Hz", "21.0Hz"]`` is the 3-class task without
        rest; numbers are read as Hz). Default: every cue.
    prefilter : (l_freq, h_freq) | None
        Band-pass the whole recording first, zero-phase (MOABB's offline protocol).
        Default None: raw windows, which decoders filter one by one as online.
    offsets : sequence of float | None
        Extra window starts (s after the cue) for training-window augmentation. Windows are
        then cut at ``tmin`` and at each offset, and a fourth array gives each window's trial.

    Returns
    -------
    X : ndarray, shape (n_windows, n_channels, n_samples)
        Windows (volts).
    y : ndarray of str, shape (n_windows,)
        Labels.
    onsets : ndarray, shape (n_windows,)
        Window starts, seconds from the first sample.
    trials : ndarray of int, shape (n_windows,)
        Only with ``offsets``: the index of the cue (among the selected ones) each window
        comes from, so cross-validation can keep windows of one trial together.
    """
    check_range(window_s, "window_s", 0.0, None, low_inclusive=False)
    check_range(tmin, "tmin")
    sfreq = raw.info["sfreq"]
    n_samples = int(round(window_s * sfreq))
    if n_samples < 1:
        raise ValueError(f"'window_s' {window_s!r} s is shorter than one sample at "
                         f"{sfreq:g} Hz.")
    picks = pick_channels(raw, channels)
    if prefilter is not None:
        raw = prefilter_raw(raw, prefilter)
    cue_onsets, labels = cue_table(raw)
    keep = select_classes(labels, classes)
    cue_onsets, labels = cue_onsets[keep], labels[keep]
    starts_s = [float(tmin)] if offsets is None else sorted({float(tmin), *map(float, offsets)})
    trial = np.repeat(np.arange(len(cue_onsets)), len(starts_s))
    onsets = (cue_onsets[:, None] + np.asarray(starts_s)[None, :]).ravel()
    first = np.round(onsets * sfreq).astype(int)
    inside = (first >= 0) & (first + n_samples <= raw.n_times)
    if not inside.all():
        logger.info("%d window(s) run past the recording and were left out", int((~inside).sum()))
    first, onsets, trial = first[inside], onsets[inside], trial[inside]
    data = raw.get_data(picks=picks)
    idx = first[:, None] + np.arange(n_samples)[None, :]
    X = np.ascontiguousarray(data[:, idx].transpose(1, 0, 2))
    y = labels[trial].astype(str)
    if offsets is None:
        return X, y, onsets
    return X, y, onsets, trial


def to_epochs(
    raw: mne.io.BaseRaw,
    *,
    tmin: float = 2.0,
    window_s: float = 1.0,
    channels: Sequence[str] | None = None,
    classes: Iterable[object] | None = None,
) -> mne.Epochs:
    """The same windows as :func:`epoch` as an ``mne.Epochs`` (event ids = labels).

    Each epoch has exactly ``round(window * sfreq)`` samples (``tmax`` is one sample short
    of ``tmin + window``); no baseline correction.
    """
    check_range(window_s, "window_s", 0.0, None, low_inclusive=False)
    sfreq = raw.info["sfreq"]
    n_samples = int(round(window_s * sfreq))
    picks = pick_channels(raw, channels)
    _, labels = cue_table(raw)
    keep = select_classes(labels, classes)
    wanted = sorted(set(labels[keep]))
    event_id = {lab: i + 1 for i, lab in enumerate(wanted)}
    events, _ = mne.events_from_annotations(raw, event_id=event_id, verbose="error")
    return mne.Epochs(
        raw, events, event_id, tmin=tmin, tmax=tmin + (n_samples - 1) / sfreq, picks=picks,
        baseline=None, preload=True, reject_by_annotation=False, verbose="error",
    )  # fmt: skip
