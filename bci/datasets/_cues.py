"""Cue labels in annotations: canonical names, extraction, durations, sampling-rate check."""

from __future__ import annotations

from collections.abc import Iterable

import mne
import numpy as np

from bci.errors import DatasetError
from bci.labels import REST_LABEL, freq_label, is_rest, label_to_freq

#: Bare numbers in annotation descriptions are taken as stimulus frequencies (Hz) only in
#: this range, so event codes such as "1" or "2" are not mistaken for 1 Hz or 2 Hz.
BARE_NUMBER_HZ_RANGE = (4.0, 100.0)

#: Trial length used for the last cue of a recording when nothing else tells it (s).
DEFAULT_TRIAL_S = 5.0


def canonical_label(description: object) -> str | None:
    """Return the canonical cue label of an annotation description, or None.

    ``"rest"`` (any case) gives ``"rest"``; ``"13Hz"``, ``"13.0 Hz"`` give ``"13.0Hz"``;
    a bare number (``"13"``) counts as a frequency only within
    :data:`BARE_NUMBER_HZ_RANGE`; only the part after the last ``/`` is read
    (BrainVision's ``"Comment/13Hz"``). Anything else is not a cue.

    Parameters
    ----------
    description : str | float
        An annotation description or marker string.

    Returns
    -------
    label : str | None
        The canonical label, or None when the description is not a cue.
    """
    text = str(description).strip()
    if "/" in text:  # BrainVision "Comment/13Hz", "Stimulus/rest"
        text = text.rsplit("/", 1)[1].strip()
    if is_rest(text):
        return REST_LABEL
    try:
        freq = label_to_freq(text)
    except ValueError:
        return None
    if freq is None or freq <= 0:
        return None
    if not text.lower().endswith("hz"):
        lo, hi = BARE_NUMBER_HZ_RANGE
        if not lo <= freq <= hi:
            return None
    return freq_label(freq)


def map_label(value: object) -> str:
    """Return the canonical label of a user-given class (``13``, ``"13"``, ``"rest"``)."""
    if is_rest(value):
        return REST_LABEL
    freq = label_to_freq(value)
    return freq_label(freq)


def cue_table(raw: mne.io.BaseRaw) -> tuple[np.ndarray, np.ndarray]:
    """Return the cue onsets (s from the first sample) and labels of a loaded recording.

    Parameters
    ----------
    raw : mne.io.Raw
        A recording whose annotations name the cues (see :func:`load_recording`).

    Returns
    -------
    onsets : ndarray, shape (n_cues,)
        Seconds from the start of the data.
    labels : ndarray of str, shape (n_cues,)
        Canonical labels.
    """
    ann = raw.annotations
    shift = raw.first_time if ann.orig_time is not None else 0.0
    onsets, labels = [], []
    for onset, desc in zip(ann.onset, ann.description):
        label = canonical_label(desc)
        if label is not None:
            onsets.append(float(onset) - shift)
            labels.append(label)
    order = np.argsort(onsets, kind="stable")
    return np.asarray(onsets, float)[order], np.asarray(labels, dtype=object)[order].astype(str)


def cue_spacing(raws: Iterable[mne.io.BaseRaw]) -> float | None:
    """The trial spacing of recordings: the shortest of their median cue-to-cue intervals (s).

    A window cut ``tmin`` s after a cue stays inside its trial when ``tmin >= 0`` and
    ``tmin + window <= spacing``. None when no recording has two cues.
    """
    gaps = []
    for raw in raws:
        onsets, _ = cue_table(raw)
        if onsets.size > 1:
            gaps.append(float(np.median(np.diff(onsets))))
    return min(gaps) if gaps else None


def cue_durations(onsets: np.ndarray, end_s: float) -> np.ndarray:
    """Duration of each cue: until the next cue; the last one gets the median spacing.

    Parameters
    ----------
    onsets : ndarray, shape (n_cues,)
        Sorted onsets in seconds.
    end_s : float
        End of the recording (s); the last duration never goes past it.
    """
    onsets = np.asarray(onsets, float)
    if onsets.size == 0:
        return onsets.copy()
    gaps = np.diff(onsets)
    last = float(np.median(gaps)) if gaps.size else DEFAULT_TRIAL_S
    last = max(0.0, min(last, end_s - onsets[-1]))
    return np.append(gaps, last)


def require_cues(raw: mne.io.BaseRaw, source: object) -> None:
    """Raise DatasetError when a recording has no cue annotation (say which exist)."""
    onsets, _ = cue_table(raw)
    if onsets.size:
        return
    present = sorted(set(map(str, raw.annotations.description)))
    shown = ", ".join(repr(p) for p in present[:12]) if present else "none"
    raise DatasetError(
        f"{source}: no cue annotations found (annotations present: {shown}). Cues must be "
        f"named like '13.0Hz' or '{REST_LABEL}'; pass cue_map={{description: label}} (or "
        f"event_id for files with events) to say which annotations are cues."
    )


def check_sfreq(sfreq: float, freqs: Iterable[float], n_harmonics: int = 1) -> None:
    """Raise DatasetError when ``sfreq`` cannot represent the stimulus harmonics.

    Parameters
    ----------
    sfreq : float
        Sampling rate (Hz).
    freqs : iterable of float
        Stimulus frequencies (Hz).
    n_harmonics : int, default=1
        Highest harmonic a decoder will use; ``n_harmonics * max(freqs)`` must stay below
        the Nyquist frequency ``sfreq / 2``.
    """
    freqs = [float(f) for f in freqs]
    if not freqs:
        return
    top = max(freqs) * int(n_harmonics)
    if top >= sfreq / 2.0:
        raise DatasetError(
            f"Sampling rate {sfreq:g} Hz is too low for stimulus frequencies up to "
            f"{max(freqs):g} Hz with {n_harmonics} harmonic(s): {top:g} Hz must be below "
            f"the Nyquist frequency {sfreq / 2:g} Hz. Record at more than {2 * top:g} Hz or "
            f"use fewer harmonics."
        )


def set_cue_annotations(
    raw: mne.io.BaseRaw,
    onsets: np.ndarray,
    labels: Iterable[str],
    extra: mne.Annotations | None = None,
) -> None:
    """Replace the annotations of ``raw`` with cue annotations (durations until the next cue).

    Parameters
    ----------
    raw : mne.io.Raw
        Recording to annotate (in place).
    onsets : ndarray, shape (n_cues,)
        Seconds from the first sample.
    labels : iterable of str
        Canonical labels.
    extra : mne.Annotations | None
        Other annotations to keep (onsets relative to the first sample, orig_time None).
    """
    onsets = np.asarray(onsets, float)
    labels = list(labels)
    order = np.argsort(onsets, kind="stable")
    onsets = onsets[order]
    labels = [labels[i] for i in order]
    end_s = raw.n_times / raw.info["sfreq"]
    durations = cue_durations(onsets, end_s)
    ann = mne.Annotations(onsets, durations, labels, orig_time=None)
    if extra is not None and len(extra):
        ann = ann + extra
    raw.set_annotations(ann)
