"""``RecordingPlayer``: replay a recorded session as live LSL EEG plus its cues as markers."""

from __future__ import annotations

import os
from collections.abc import Sequence

import mne
import numpy as np

from bci._check import check_option
from bci.datasets import load_recording
from bci.errors import DatasetError
from bci.labels import REST_LABEL, freq_label, label_to_freq
from bci.sources._base import CyclicMarkers, PacedSource


def _cue_label(description: str) -> str | None:
    """Canonical label of a cue annotation (None for anything else)."""
    try:
        freq = label_to_freq(description)
    except ValueError:
        return None
    return REST_LABEL if freq is None else freq_label(freq)


def annotation_samples(raw: mne.io.BaseRaw) -> np.ndarray:
    """Sample index (from the first sample of ``raw``) of each annotation's onset."""
    ann = raw.annotations
    onset = np.asarray(ann.onset, dtype=float)
    if ann.orig_time is not None:
        onset = onset - raw.first_time
    return np.round(onset * raw.info["sfreq"]).astype(np.int64)


class RecordingPlayer(PacedSource):
    """Replay a recording as an LSL EEG outlet plus a marker outlet with its annotations.

    Parameters
    ----------
    recording : path-like | mne.io.BaseRaw
        A file that :func:`bci.datasets.load_recording` reads (Kalunga FIF, any MNE format
        with annotations or events, XDF), or a Raw whose annotations name the cues.
    name : str, default="ssvep-replay"
        EEG stream name (the marker stream is ``f"{name}-markers"``).
    source_id : str | None
        Source id (default: ``name``).
    speed : float, default=1.0
        Speed factor (``> 1``: faster than real time).
    loop : bool, default=False
        Start again at the end (otherwise :attr:`finished` is set).
    chunk_s : float, default=1/16
        Seconds of signal per chunk.
    channels : sequence of str | None
        Channels to publish (default: the EEG channels, else all).
    markers : {"cues", "all"}, default="cues"
        ``"cues"``: publish the cue annotations only, as canonical labels (``"13.0Hz"``,
        ``"rest"``); ``"all"``: every annotation as it is named (e.g. the decisions of a
        recorded session too).

    Notes
    -----
    The samples are published in microvolts (the Raw holds volts); each marker is stamped
    with the timestamp of its onset sample.
    """

    def __init__(
        self,
        recording: str | os.PathLike | mne.io.BaseRaw,
        *,
        name: str = "ssvep-replay",
        source_id: str | None = None,
        speed: float = 1.0,
        loop: bool = False,
        chunk_s: float = 1 / 16,
        channels: Sequence[str] | None = None,
        markers: str = "cues",
    ) -> None:
        check_option(markers, ("cues", "all"), "markers")
        if isinstance(recording, mne.io.BaseRaw):
            raw = recording
        elif isinstance(recording, (str, os.PathLike)):
            raw = load_recording(recording)
        else:
            raise TypeError(
                "'recording' must be a path or an mne.io.Raw, got "
                f"{type(recording).__name__} instead."
            )
        if channels is None:
            picks = mne.pick_types(raw.info, eeg=True, exclude=[])
            channels = [raw.ch_names[i] for i in picks] or list(raw.ch_names)
        missing = [c for c in channels if c not in raw.ch_names]
        if missing:
            raise DatasetError(
                f"Channel(s) {missing} are not in the recording, which has {raw.ch_names}."
            )
        self._data = np.ascontiguousarray(raw.get_data(picks=list(channels)))
        if self._data.shape[1] == 0:
            raise DatasetError("The recording holds no samples; nothing to replay.")
        super().__init__(name=name, source_id=source_id, sfreq=raw.info["sfreq"],
                         ch_names=channels, speed=speed, chunk_s=chunk_s, loop=loop,
                         manufacturer="ssvep-exo replay")
        n = self._data.shape[1]
        samples = annotation_samples(raw)
        labels = [_cue_label(d) if markers == "cues" else str(d)
                  for d in raw.annotations.description]
        keep = [0 <= s < n and lab is not None for s, lab in zip(samples, labels)]
        self._cues = CyclicMarkers(samples[np.asarray(keep, dtype=bool)],
                                   [lab for lab, ok in zip(labels, keep) if ok], n)
        self.n_times = n
        self.position = 0

    @property
    def duration(self) -> float:
        """Length of one pass through the recording, seconds."""
        return self.n_times / self.sfreq

    @property
    def cues(self) -> list[tuple[int, str]]:
        """(sample, description) of every marker of one pass."""
        return list(zip(self._cues.samples.tolist(), self._cues.labels))

    def _read(self, n: int) -> tuple[np.ndarray, list[tuple[int, str]]]:
        start = self.position
        if not self.loop:
            n = min(n, self.n_times - start)
            if n <= 0:
                return np.zeros((len(self.ch_names), 0)), []
            data = self._data[:, start:start + n]
        else:
            idx = (start + np.arange(n)) % self.n_times
            data = self._data[:, idx]
        self.position += n
        return data, self._cues.between(start, start + n)
