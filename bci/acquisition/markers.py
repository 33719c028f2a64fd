"""``MarkerStream``: cues and other string markers over LSL, with clock synchronisation."""

from __future__ import annotations

import time
from collections import deque

import pylsl

from bci.acquisition._base import BaseInlet
from bci.acquisition._metadata import channel_labels, describe
from bci.acquisition.resolve import _predicate
from bci.errors import StreamError


class MarkerStream(BaseInlet):
    """String markers (cues such as ``"13.0Hz"`` / ``"rest"``) from an LSL marker stream.

    A background thread collects markers as they arrive; :meth:`pull` hands out the new
    ones. Timestamps are on the local LSL clock (clock synchronised), like
    :class:`~bci.acquisition.EEGStream`'s, so cues line up with EEG samples.

    Two layouts are read: a string stream (one marker per sample, the XDF convention and
    mne-lsl's ``annotations_encoding="string"``), and mne-lsl's default one-hot
    annotations stream (``<name>-annotations`` of ``mne_lsl.player.PlayerLSL``: float
    channels labelled with the annotation descriptions; a non-zero value marks that
    description).

    Parameters
    ----------
    name : str | None
        Stream name (a :class:`~bci.sources.SyntheticEEG` named ``"X"`` publishes its
        schedule as ``"X-markers"``; mne-lsl's ``PlayerLSL`` as ``"X-annotations"``).
    stype : str | None, default="Markers"
        Stream type, matched case-insensitively (None: any type; mne-lsl uses
        ``"annotations"``).
    source_id, hostname : str | None
        Pin the stream (see :class:`~bci.acquisition.EEGStream`).
    max_markers : int, default=10000
        Markers kept until pulled (older ones are dropped).
    reconnect : bool, default=True
        Look for the stream again when it is lost.
    """

    _kind = "Markers"

    def __init__(
        self,
        name: str | None = None,
        stype: str | None = "Markers",
        source_id: str | None = None,
        hostname: str | None = None,
        *,
        max_markers: int = 10000,
        reconnect: bool = True,
    ) -> None:
        self._max_markers = int(max_markers)
        super().__init__(name, stype, source_id, hostname, reconnect=reconnect, poll_s=0.02)

    def _reset_variables(self) -> None:
        super()._reset_variables()
        self._queue: deque[tuple[float, str]] = deque(maxlen=self._max_markers)
        self.n_received = 0
        self._one_hot: tuple[str, ...] | None = None

    def _configure(self, info: pylsl.StreamInfo) -> None:
        self._one_hot = self._layout_of(info)

    @staticmethod
    def _layout_of(info: pylsl.StreamInfo) -> tuple[str, ...] | None:
        """None for a string stream; the descriptions of a one-hot annotations stream."""
        if info.channel_format() == pylsl.cf_string:
            return None
        labels = channel_labels(info)
        if info.nominal_srate() == pylsl.IRREGULAR_RATE and all(labels):
            return tuple(labels)
        raise StreamError(
            f"The stream {describe(info)} carries neither strings nor mne-lsl's one-hot "
            f"annotations (an irregular-rate numeric stream with one labelled channel per "
            f"description), so it is not a marker stream. Choose the marker stream (type "
            f"'Markers', or '<name>-annotations' from mne-lsl)."
        )

    def _compatible(self, info: pylsl.StreamInfo) -> str | None:
        try:
            layout = self._layout_of(info)
        except StreamError:
            return "it no longer carries markers"
        return None if layout == self._one_hot else "its channels changed"

    def _pull(self, inlet: pylsl.StreamInlet) -> None:
        samples, ts = inlet.pull_chunk(timeout=self._poll_s, max_samples=1024)
        if not ts:
            return
        with self._lock:
            for sample, t in zip(samples, ts):
                if self._one_hot is None:
                    self._queue.append((float(t), str(sample[0])))
                else:  # one channel per description; non-zero (the duration, or -1) marks it
                    for label, value in zip(self._one_hot, sample):
                        if value != 0:
                            self._queue.append((float(t), label))
            self.n_received += len(ts)

    def pull(self) -> list[tuple[float, str]]:
        """Return the markers received since the last call, oldest first.

        Returns
        -------
        markers : list of (timestamp, str)
            LSL timestamps (local clock) and marker strings.
        """
        self._check_connected("pull")
        with self._lock:
            out = list(self._queue)
            self._queue.clear()
        return out

    def __repr__(self) -> str:
        if not self.connected:
            return f"<MarkerStream {self._query} (not connected)>"
        return f"<MarkerStream {self._info.name()!r}, {self.n_received} markers>"


#: Suffixes of the cue stream that goes with an EEG stream named ``X``: ``X-markers`` (this
#: project's sources, the usual convention) and ``X-annotations`` (mne-lsl's ``PlayerLSL``).
CUE_SUFFIXES = ("-markers", "-annotations")


def find_cue_stream(eeg_name: str, *, hostname: str | None = None,
                    timeout: float = 1.0) -> MarkerStream:
    """Connect the cue stream of the EEG stream ``eeg_name`` (see :data:`CUE_SUFFIXES`).

    Parameters
    ----------
    eeg_name : str
        Name of the EEG stream.
    hostname : str | None
        Only a cue stream published by this host.
    timeout : float, default=1.0
        Seconds to look for it.

    Returns
    -------
    markers : MarkerStream
        Connected; its type is not checked (``Markers``, ``annotations``...).

    Raises
    ------
    bci.errors.StreamError
        When neither ``<eeg_name>-markers`` nor ``<eeg_name>-annotations`` appears.
    """
    names = [eeg_name + suffix for suffix in CUE_SUFFIXES]
    preds = [_predicate(n, None, None, hostname) for n in names]
    deadline = time.monotonic() + timeout
    if all(p is not None for p in preds):
        resolver = pylsl.ContinuousResolver(pred=" or ".join(f"({p})" for p in preds),
                                            forget_after=2.0)
        while True:
            found = sorted({s.name() for s in resolver.results()}, key=names.index)
            if found or time.monotonic() >= deadline:
                break
            time.sleep(0.02)
        if not found:
            raise StreamError(f"No cue stream {' or '.join(map(repr, names))} was found "
                              f"within {timeout:g} s.")
        names = found[:1]
    last: StreamError | None = None
    for name in names:  # names that XPath cannot quote: ask for each in turn
        try:
            return MarkerStream(name=name, stype=None, hostname=hostname).connect(
                timeout=max(deadline - time.monotonic(), 0.2))
        except StreamError as exc:
            last = exc
    raise last
