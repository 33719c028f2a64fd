"""``EEGStream``: an EEG inlet with a ring buffer, signal health and re-acquisition."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pylsl

from bci._check import check_option, check_range, check_type
from bci._logging import logger, warn
from bci.acquisition import health as _health
from bci.acquisition._base import BaseInlet
from bci.acquisition._metadata import channel_labels, channel_units, describe
from bci.acquisition.ring_buffer import RingBuffer
from bci.acquisition.window import EEGWindow
from bci.errors import StreamError
from bci.units import ASSUMED_UNIT, amplitude_uv, implausible_amplitude, volts_per_unit

#: Seconds after (re)connecting at which the arrival rate is compared with the declared one.
RATE_CHECK_S = 5.0
_NUMERIC = {pylsl.cf_float32: np.float32, pylsl.cf_double64: np.float64,
            pylsl.cf_int8: np.int8, pylsl.cf_int16: np.int16, pylsl.cf_int32: np.int32,
            pylsl.cf_int64: np.int64}


class EEGStream(BaseInlet):
    """Live EEG from an LSL stream: latest windows with their signal health.

    A background thread pulls chunks into a preallocated :class:`RingBuffer` under a lock;
    :meth:`latest_window` copies only the requested window. When the stream's outlet
    vanishes the stream is *lost* (every window reports ``stalled``), and the thread looks
    for it again by its source id (and host, when pinned); once it is back, the buffer starts
    afresh so that no window spans the gap.

    Parameters
    ----------
    name : str | None
        Stream name.
    stype : str | None, default="EEG"
        Stream type, matched case-insensitively (None: any type).
    source_id : str | None
        Source id. Give it with ``hostname`` to pin the headset: a stream with the same name
        or id published by another machine is then ignored, also when re-acquiring.
    hostname : str | None
        Host publishing the stream.
    channels : sequence of str | None
        Channels to keep, by their labels in the stream's metadata (None: all). When the
        stream declares no labels they are taken by position (with a warning).
    buffer_s : float, default=30.0
        Seconds of samples kept.
    stall_timeout : float, default=0.4
        A stream with no new sample for longer than this (local clock) is stalled.
    unit : {"V", "native"}, default="V"
        ``"V"``: convert from the declared channel unit (``microvolts``, ``uV``, ``µV``,
        ``mV``, ``V``, ``volts``, or mne-lsl's FIFF unit codes such as ``"0"`` for volts;
        see :mod:`bci.units`) to volts, like the recordings that :mod:`bci.datasets` loads.
        A missing or unknown unit is taken as microvolts with a warning, and
        :meth:`check_amplitude` refuses the stream when its amplitude says otherwise.
        ``"native"``: keep the stream's values.
    dejitter : bool, default=False
        Add LSL's de-jittering of timestamps. It smooths timestamp gaps out over many
        samples, which hides lost samples from the health report, so it is off by default
        (clock synchronisation and monotonic timestamps are always on).
    reconnect : bool, default=True
        Look for the stream again when it is lost.

    Attributes
    ----------
    ch_names : tuple of str
        Selected channel names (after :meth:`connect`).
    sfreq : float
        Declared sampling rate.
    units : tuple of str | None
        Declared unit of each selected channel.
    assumed_unit_channels : tuple of str
        Selected channels whose unit is absent or unknown (taken as microvolts).
    """

    _kind = "EEG"

    def __init__(
        self,
        name: str | None = None,
        stype: str | None = "EEG",
        source_id: str | None = None,
        hostname: str | None = None,
        channels: Sequence[str] | None = None,
        buffer_s: float = 30.0,
        stall_timeout: float = 0.4,
        *,
        unit: str = "V",
        dejitter: bool = False,
        reconnect: bool = True,
    ) -> None:
        if channels is not None:
            check_type(channels, (list, tuple), "channels")
            if not channels or not all(isinstance(c, str) for c in channels):
                raise TypeError(f"'channels' must be a non-empty list of str, got {channels!r}.")
            if len(set(channels)) != len(channels):
                raise ValueError(f"'channels' lists a channel twice: {list(channels)!r}.")
        self._channels = None if channels is None else tuple(channels)
        self.buffer_s = check_range(buffer_s, "buffer_s", 0, None, low_inclusive=False)
        self.stall_timeout = check_range(stall_timeout, "stall_timeout", 0, None,
                                         low_inclusive=False)
        self._unit = check_option(unit, ("V", "native"), "unit")
        self._listeners: list = []
        check_type(dejitter, bool, "dejitter")
        if dejitter:
            self._processing_flags = (pylsl.proc_clocksync | pylsl.proc_dejitter
                                      | pylsl.proc_monotonize)
        super().__init__(name, stype, source_id, hostname, reconnect=reconnect)

    def _reset_variables(self) -> None:
        super()._reset_variables()
        self.ch_names: tuple[str, ...] = ()
        self.sfreq = float("nan")
        self.units: tuple[str | None, ...] = ()
        self.assumed_unit_channels: tuple[str, ...] = ()
        self._picks = np.zeros(0, dtype=int)
        self._scale = np.ones(0)
        self._buffer: RingBuffer | None = None
        self._pull_buf: np.ndarray | None = None
        self._layout: tuple = (0, 0, [])
        self._last_arrival = 0.0
        self._n_received = 0
        self._rate_start: tuple[float, int] | None = None
        self._rate_checked = False

    # ------------------------------------------------------------------ metadata
    def _select(self, info: pylsl.StreamInfo) -> tuple[np.ndarray, tuple[str, ...]]:
        n = info.channel_count()
        labels = channel_labels(info)
        where = f"The stream {describe(info)}"
        if all(lab is None for lab in labels):
            if self._channels is None:
                names = tuple(f"ch{i + 1}" for i in range(n))
                warn(f"{where} declares no channel labels; naming its channels by position "
                     f"({names[0]}...{names[-1]}). Give the labels in the stream's metadata.")
                return np.arange(n), names
            if len(self._channels) != n:
                raise StreamError(
                    f"{where} declares no channel labels, so channels can only be taken by "
                    f"position, but {len(self._channels)} were requested for its {n} "
                    f"channels. Request exactly {n} channels in stream order, or fix the "
                    f"stream's metadata."
                )
            warn(f"{where} declares no channel labels; assuming they are "
                 f"{list(self._channels)} in this order.")
            return np.arange(n), self._channels
        available = [lab for lab in labels if lab is not None]
        wanted = list(self._channels) if self._channels is not None else None
        if wanted is None:
            if len(available) != n:
                unnamed = [i + 1 for i, lab in enumerate(labels) if lab is None]
                warn(f"{where} has channels without labels (positions {unnamed}); naming "
                     f"them ch<position>.")
            wanted = [lab if lab is not None else f"ch{i + 1}" for i, lab in enumerate(labels)]
            labels = wanted
        dupes = sorted({lab for lab in wanted if labels.count(lab) > 1})
        if dupes:
            raise StreamError(
                f"{where} labels several channels {dupes}, so they cannot be selected by "
                f"name. Fix the stream's channel labels."
            )
        missing = [c for c in wanted if c not in labels]
        if missing:
            raise StreamError(
                f"Channel(s) {missing} are not in {where}, which has {available}. Choose "
                f"channels among those labels (channel names are case-sensitive)."
            )
        return np.array([labels.index(c) for c in wanted]), tuple(wanted)

    def _configure(self, info: pylsl.StreamInfo) -> None:
        where = f"The stream {describe(info)}"
        sfreq = info.nominal_srate()
        if sfreq == pylsl.IRREGULAR_RATE or not np.isfinite(sfreq) or sfreq <= 0:
            raise StreamError(
                f"{where} declares an irregular sampling rate; EEG needs a regular one. "
                f"Is this a marker stream? Choose the EEG stream (type 'EEG')."
            )
        if info.channel_format() not in _NUMERIC:
            raise StreamError(f"{where} does not carry numbers; choose the EEG stream.")
        picks, names = self._select(info)
        units = channel_units(info)
        sel_units = tuple(units[i] for i in picks)
        scale = np.ones(len(picks))
        factors = [volts_per_unit(u) for u in sel_units]
        assumed = tuple(name for name, f in zip(names, factors) if f is None)
        if self._unit == "V":
            unknown = sorted({"none" if u is None else u for u, f in zip(sel_units, factors)
                              if f is None})
            if unknown:
                warn(f"{where} declares no voltage unit that this program knows (found "
                     f"{unknown}) for channels {list(assumed)}; assuming {ASSUMED_UNIT}, as "
                     f"most EEG streams use, if the amplitude of the first seconds agrees. "
                     f"Declare the unit in the stream's metadata (desc/channels/channel/unit).")
            scale = np.array([1e-6 if f is None else f for f in factors])
        self.sfreq = float(sfreq)
        self.ch_names = names
        self.units = sel_units
        self.assumed_unit_channels = assumed
        self._picks = picks
        self._scale = scale
        cap = max(int(np.ceil(self.buffer_s * sfreq)), 2)
        self._buffer = RingBuffer(len(picks), cap)
        self._layout = (info.channel_count(), info.channel_format(), channel_labels(info))
        self._pull_buf = np.zeros((max(int(sfreq), 64) * 4, info.channel_count()),
                                  _NUMERIC[info.channel_format()])

    def _compatible(self, info: pylsl.StreamInfo) -> str | None:
        if info.nominal_srate() != self.sfreq:
            return f"its rate changed from {self.sfreq:g} to {info.nominal_srate():g} Hz"
        if (info.channel_count(), info.channel_format()) != self._layout[:2]:
            return "its channel count or sample format changed"
        if channel_labels(info) != self._layout[2]:
            return f"its channel labels changed to {channel_labels(info)}"
        return None

    def _on_connected(self) -> None:
        with self._lock:
            if self._buffer is not None:
                self._buffer.clear()
            self._last_arrival = pylsl.local_clock()
            self._rate_start, self._rate_checked = None, False

    # ------------------------------------------------------------------ worker
    def _pull(self, inlet: pylsl.StreamInlet) -> None:
        _, ts = inlet.pull_chunk(timeout=self._poll_s, max_samples=len(self._pull_buf),
                                 dest_obj=self._pull_buf, as_numpy=True)
        n = len(ts)
        if not n:
            return
        chunk = self._pull_buf[:n, self._picks].astype(np.float64)
        if self._unit == "V":
            chunk *= self._scale
        with self._lock:
            self._buffer.push(chunk, ts)
            self._last_arrival = pylsl.local_clock()
            self._n_received += n
        self._check_rate(n)
        for listener in tuple(self._listeners):
            try:
                listener(chunk, ts)
            except Exception:  # noqa: BLE001 - a listener must not stop acquisition
                logger.exception("An EEG chunk listener failed (%r)", listener)

    def _check_rate(self, n: int) -> None:
        """Warn once per connection when samples arrive far from the declared rate."""
        now = self._last_arrival
        if self._rate_start is None:
            self._rate_start = (now, 0)
            return
        t0, count = self._rate_start
        count += n
        self._rate_start = (t0, count)
        if self._rate_checked or now - t0 < RATE_CHECK_S:
            return
        self._rate_checked = True
        rate = count / (now - t0)
        if abs(rate / self.sfreq - 1) > 0.1:
            logger.warning(
                "The EEG stream %r declares %g Hz but delivered %.1f samples/s over %.0f s. "
                "A replay faster than real time does this; a headset should not: check its "
                "configured sampling rate.", self._info.name(), self.sfreq, rate, now - t0)

    def add_listener(self, callback) -> None:
        """Call ``callback(chunk, timestamps)`` from the acquisition thread for each chunk.

        ``chunk`` is an ndarray of shape (n_samples, n_channels) (selected channels, in
        the output unit) that the callback may keep; ``timestamps`` has shape (n_samples,).
        The callback must return quickly (queue the data, e.g. as
        :class:`~bci.recording.SessionRecorder` does); its errors are logged, not raised.
        """
        if not callable(callback):
            raise TypeError(f"'callback' must be callable, got {type(callback).__name__}.")
        self._listeners.append(callback)

    def remove_listener(self, callback) -> None:
        """Stop calling ``callback`` (no error if it was not registered)."""
        if callback in self._listeners:
            self._listeners.remove(callback)

    # ------------------------------------------------------------------ reading
    @property
    def unit(self) -> str:
        """Unit of the windows: ``"V"`` (converted to volts) or ``"native"`` (as sent)."""
        return self._unit

    @property
    def n_samples_received(self) -> int:
        """Samples received since :meth:`connect`."""
        return self._n_received

    @property
    def n_buffered(self) -> int:
        """Samples held since the last (re)connection (at most the buffer's capacity)."""
        self._check_connected("n_buffered")
        with self._lock:
            return len(self._buffer)

    @property
    def seconds_since_last_sample(self) -> float:
        """Local-clock seconds since the newest sample arrived (or since connecting)."""
        self._check_connected("seconds_since_last_sample")
        return max(pylsl.local_clock() - self._last_arrival, 0.0)

    @property
    def blind(self) -> bool:
        """True while no usable data arrives (stream lost, stalled or its worker failed)."""
        self._check_connected("blind")
        return self.lost or self.seconds_since_last_sample > self.stall_timeout

    def latest_window(self, n_samples: int) -> EEGWindow | None:
        """Copy the newest ``n_samples`` samples with their health.

        Parameters
        ----------
        n_samples : int
            Window length in samples.

        Returns
        -------
        window : EEGWindow | None
            None until ``n_samples`` samples have arrived since the last (re)connection.
            While the stream is lost or stalled, the last window comes back with
            ``health.stalled`` set.
        """
        self._check_connected("latest_window")
        if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)):
            raise TypeError(f"'n_samples' must be an int, got {type(n_samples).__name__}.")
        if not 1 <= n_samples <= self._buffer.capacity:
            raise ValueError(
                f"'n_samples' must be in [1, {self._buffer.capacity}] (buffer_s="
                f"{self.buffer_s:g} s at {self.sfreq:g} Hz), got {n_samples}."
            )
        with self._lock:
            if len(self._buffer) < n_samples:
                return None
            data, ts = self._buffer.latest(n_samples)
            age = max(pylsl.local_clock() - self._last_arrival, 0.0)
        health = _health.assess(
            data, ts, self.ch_names, self.sfreq, seconds_since_last_sample=age,
            stall_timeout=self.stall_timeout, lost=self.lost,
        )
        return EEGWindow(data=data, timestamps=ts, ch_names=self.ch_names, sfreq=self.sfreq,
                         health=health)

    def check_amplitude(self, seconds: float = 2.0) -> float | None:
        """Refuse a stream whose unit was assumed when its amplitude says otherwise.

        Call it once the first ``seconds`` have arrived. For channels that declare no unit
        (or one :mod:`bci.units` does not know) microvolts were assumed; if the median
        channel's standard deviation over the newest ``seconds`` is implausible for EEG in
        microvolts (:data:`bci.units.PLAUSIBLE_STD_UV`, e.g. a stream in volts), the guess
        is wrong and no factor is applied silently: :class:`~bci.errors.StreamError`.

        Parameters
        ----------
        seconds : float, default=2.0
            Seconds of signal to judge (fewer when fewer are buffered).

        Returns
        -------
        std_uv : float | None
            The median channel's standard deviation in microvolts over those channels (None
            when every unit is declared, the unit is ``"native"`` or no usable sample arrived).

        Raises
        ------
        bci.errors.StreamError
            When the assumed unit does not fit the amplitude.
        """
        self._check_connected("check_amplitude")
        if self._unit != "V" or not self.assumed_unit_channels:
            return None
        picks = [self.ch_names.index(c) for c in self.assumed_unit_channels]
        with self._lock:
            n = min(len(self._buffer), max(int(round(seconds * self.sfreq)), 2))
            if n < 2:
                return None
            data, _ = self._buffer.latest(n)
        data = data[picks]
        why = implausible_amplitude(data)
        if why is not None:
            found = sorted({"none" if self.units[i] is None else self.units[i] for i in picks})
            raise StreamError(
                f"The stream {describe(self._info)} declares no voltage unit that this "
                f"program knows for channels {list(self.assumed_unit_channels)} (found "
                f"{found}), so {ASSUMED_UNIT} were assumed, but over {n / self.sfreq:.1f} s "
                f"{why}. Declare the unit in the stream's metadata "
                f"(desc/channels/channel/unit: microvolts, uV, V, volts, mV, or a FIFF unit "
                f"code as mne-lsl writes); see docs/streams.md."
            )
        return amplitude_uv(data)

    def effective_sfreq(self, seconds: float = 10.0) -> float:
        """Sampling rate measured from the timestamps of the last ``seconds`` (NaN if < 2)."""
        self._check_connected("effective_sfreq")
        with self._lock:
            n = min(len(self._buffer), int(seconds * self.sfreq))
            if n < 2:
                return float("nan")
            _, ts = self._buffer.latest(n)
        span = ts[-1] - ts[0]
        return float((n - 1) / span) if span > 0 else float("nan")

    def __repr__(self) -> str:
        if not self.connected:
            return f"<EEGStream {self._query} (not connected)>"
        state = "lost" if self.lost else "ok"
        return (f"<EEGStream {self._info.name()!r} {len(self.ch_names)} ch @ {self.sfreq:g} "
                f"Hz, {state}, {self._n_reconnections} reconnection(s)>")


__all__ = ["EEGStream"]
