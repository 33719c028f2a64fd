"""``MarkerStream``: cues and other string markers over LSL, with clock synchronisation."""

from __future__ import annotations

from collections import deque

import pylsl

from bci.acquisition._base import BaseInlet
from bci.acquisition._metadata import describe
from bci.errors import StreamError


class MarkerStream(BaseInlet):
    """String markers (cues such as ``"13.0Hz"`` / ``"rest"``) from an LSL marker stream.

    A background thread collects markers as they arrive; :meth:`pull` hands out the new
    ones. Timestamps are on the local LSL clock (clock synchronised), like
    :class:`~bci.acquisition.EEGStream`'s, so cues line up with EEG samples.

    Parameters
    ----------
    name : str | None
        Stream name (a :class:`~bci.sources.SyntheticEEG` named ``"X"`` publishes its
        schedule as ``"X-markers"``).
    stype : str | None, default="Markers"
        Stream type.
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

    def _configure(self, info: pylsl.StreamInfo) -> None:
        if info.channel_format() != pylsl.cf_string:
            raise StreamError(
                f"The stream {describe(info)} does not carry strings, so it is not a marker "
                f"stream. Choose the marker stream (type 'Markers')."
            )

    def _compatible(self, info: pylsl.StreamInfo) -> str | None:
        if info.channel_format() != pylsl.cf_string:
            return "it no longer carries strings"
        return None

    def _pull(self, inlet: pylsl.StreamInlet) -> None:
        samples, ts = inlet.pull_chunk(timeout=self._poll_s, max_samples=1024)
        if not ts:
            return
        with self._lock:
            for sample, t in zip(samples, ts):
                self._queue.append((float(t), str(sample[0])))
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
