"""Shared pacing of the LSL sources: an EEG outlet and a marker outlet fed by a thread.

Like mne-lsl's ``PlayerLSL._stream``, each chunk is sent against a target clock computed
from the start time and the number of samples sent, so the rate does not drift however
late a wake-up is (a late sender catches up with a larger chunk). Timestamps are on the
LSL local clock: sample ``k`` after (re)starting is stamped ``t0 + k / (sfreq * speed)``,
so a consumer's clock and the samples agree also faster than real time.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Sequence

import numpy as np
import pylsl

from bci._check import check_option, check_range, check_type
from bci._logging import logger
from bci.acquisition._metadata import make_eeg_info, make_marker_info

FAULTS = ("nan", "flat", "clip", "drop", "jump")


class CyclicMarkers:
    """Marker positions (samples) of a possibly looping sequence of length ``n_cycle``."""

    def __init__(self, samples: Sequence[int], labels: Sequence[str], n_cycle: int) -> None:
        order = np.argsort(np.asarray(samples), kind="stable")
        self.samples = np.asarray(samples, dtype=np.int64)[order]
        self.labels = [labels[i] for i in order]
        self.n_cycle = int(n_cycle)

    def between(self, start: int, stop: int) -> list[tuple[int, str]]:
        """Markers at global samples in [start, stop), as (offset from start, label)."""
        out = []
        if not len(self.samples) or stop <= start:
            return out
        for cyc in range(start // self.n_cycle, (stop - 1) // self.n_cycle + 1):
            base = cyc * self.n_cycle
            lo = np.searchsorted(self.samples, start - base, side="left")
            hi = np.searchsorted(self.samples, stop - base, side="left")
            out += [(int(self.samples[i] + base - start), self.labels[i]) for i in range(lo, hi)]
        return out


class PacedSource(ABC):
    """Base of :class:`SyntheticEEG` and :class:`RecordingPlayer`.

    Subclasses implement :meth:`_read`, returning the next samples (volts) and the markers
    that fall in them. Samples are published as float32 microvolts.
    """

    def __init__(
        self,
        *,
        name: str,
        source_id: str | None,
        sfreq: float,
        ch_names: Sequence[str],
        speed: float,
        chunk_s: float,
        loop: bool,
        manufacturer: str,
    ) -> None:
        check_type(name, str, "name")
        if not name:
            raise ValueError("'name' must be a non-empty string.")
        check_type(source_id, (str, type(None)), "source_id")
        check_type(loop, bool, "loop")
        self.name = name
        self.source_id = source_id or name
        self.sfreq = float(sfreq)
        self.ch_names = tuple(ch_names)
        self.speed = check_range(speed, "speed", 0, 1000, low_inclusive=False)
        self.chunk_s = check_range(chunk_s, "chunk_s", 0, 10, low_inclusive=False)
        self.loop = loop
        self.manufacturer = manufacturer
        self.chunk_size = max(1, int(round(self.chunk_s * self.sfreq)))
        self.finished = threading.Event()
        self.n_pushed = 0
        self.n_markers = 0
        self.markers_sent: deque[tuple[float, str]] = deque(maxlen=100_000)
        self._outlet: pylsl.StreamOutlet | None = None
        self._marker_outlet: pylsl.StreamOutlet | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._faults: list[list] = []  # [kind, samples left, channel indices, held value]
        self._fault_lock = threading.Lock()
        self._t_shift = 0.0

    @property
    def marker_name(self) -> str:
        """Name of the marker stream (``f"{name}-markers"``)."""
        return f"{self.name}-markers"

    @property
    def running(self) -> bool:
        """True while the publishing thread runs."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def is_open(self) -> bool:
        """True while the outlets exist (between :meth:`open` and :meth:`close`)."""
        return self._outlet is not None

    # ------------------------------------------------------------------ life cycle
    def open(self):
        """Create the EEG and marker outlets (without publishing yet); returns self."""
        if self._outlet is None:
            info = make_eeg_info(self.name, self.source_id, self.ch_names, self.sfreq,
                                 manufacturer=self.manufacturer)
            self._outlet = pylsl.StreamOutlet(info, chunk_size=0, max_buffered=360)
            self._marker_outlet = pylsl.StreamOutlet(
                make_marker_info(self.marker_name, f"{self.source_id}-markers"))
            logger.info("Opened LSL outlets %r and %r (source id %r)", self.name,
                        self.marker_name, self.source_id)
        return self

    def start(self):
        """Open the outlets if needed and start publishing (again); returns self.

        After :meth:`close`, this re-creates the outlets with the same source id, so the
        stream comes back as the same device; the signal continues where it stopped.
        """
        if self.running:
            raise RuntimeError(f"{type(self).__name__} {self.name!r} is already running.")
        self.open()
        self._stop.clear()
        self.finished.clear()
        self._thread = threading.Thread(target=self._run, name=f"source-{self.name}",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop publishing (the outlets stay open)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)
        self._thread = None

    def close(self) -> None:
        """Stop and destroy the outlets: for consumers, the device vanishes."""
        self.stop()
        outlet, marker = self._outlet, self._marker_outlet
        self._outlet = self._marker_outlet = None
        del outlet, marker  # pylsl destroys an outlet when its last reference goes

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until a non-looping source has published everything; True if it has."""
        return self.finished.wait(timeout)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ faults
    def inject(self, kind: str, seconds: float, channels: Sequence[str] | None = None) -> None:
        """Inject a fault into the samples published next (for tests and demos).

        Parameters
        ----------
        kind : {"nan", "flat", "clip", "drop", "jump"}
            ``"nan"``: NaN values; ``"flat"``: constant values; ``"clip"``: stuck at
            +1000 µV (amplifier saturation); ``"drop"``: the samples are not sent (a gap in
            the timestamps); ``"jump"``: every later timestamp moves ``seconds`` ahead.
        seconds : float
            Duration of the fault (the size of the jump for ``"jump"``).
        channels : sequence of str | None
            Affected channels (None: all); ignored by ``"drop"`` and ``"jump"``.
        """
        check_option(kind, FAULTS, "kind")
        seconds = check_range(seconds, "seconds", 0, None)
        if kind == "jump":
            with self._fault_lock:
                self._t_shift += seconds / self.speed
            return
        names = self.ch_names if channels is None else tuple(channels)
        unknown = [c for c in names if c not in self.ch_names]
        if unknown:
            raise ValueError(f"Unknown channel(s) {unknown}; the source has {list(self.ch_names)}.")
        idx = np.array([self.ch_names.index(c) for c in names], dtype=int)
        with self._fault_lock:
            self._faults.append([kind, int(round(seconds * self.sfreq)), idx, None])

    def _apply_faults(self, data_uv: np.ndarray) -> np.ndarray:
        """Apply pending faults to (n, n_ch) µV samples; return a keep-mask of samples."""
        n = data_uv.shape[0]
        keep = np.ones(n, dtype=bool)
        with self._fault_lock:
            for fault in self._faults:
                kind, left, idx, held = fault
                m = min(left, n)
                if kind == "nan":
                    data_uv[:m, idx] = np.nan
                elif kind == "flat":  # one value for the whole fault
                    if held is None:
                        fault[3] = held = data_uv[0, idx].copy()
                    data_uv[:m, idx] = held
                elif kind == "clip":
                    data_uv[:m, idx] = 1000.0
                elif kind == "drop":
                    keep[:m] = False
                fault[1] = left - m
            self._faults = [f for f in self._faults if f[1] > 0]
        return keep

    # ------------------------------------------------------------------ publishing
    @abstractmethod
    def _read(self, n: int) -> tuple[np.ndarray, list[tuple[int, str]]]:
        """Return up to ``n`` next samples (volts, shape (n_channels, m); m=0 at the end)
        and the markers in them as (sample offset, label)."""

    def _run(self) -> None:
        rate = self.sfreq * self.speed
        t0 = pylsl.local_clock()
        k = 0
        max_chunk = max(self.chunk_size, int(self.sfreq))
        try:
            while not self._stop.is_set():
                now = pylsl.local_clock()
                due = int((now - t0) * rate) - k
                if due < self.chunk_size:
                    self._stop.wait(max(t0 + (k + self.chunk_size) / rate - now, 0.0))
                    continue
                data, markers = self._read(min(due, max_chunk))
                m = data.shape[1]
                if m == 0:
                    self.finished.set()
                    logger.info("Source %r finished after %d samples", self.name, self.n_pushed)
                    return
                ts = t0 + self._t_shift + (k + np.arange(m)) / rate
                chunk = np.ascontiguousarray(data.T * 1e6, dtype=np.float32)
                keep = self._apply_faults(chunk)
                if keep.all():
                    self._outlet.push_chunk(chunk, ts.tolist())
                elif keep.any():
                    self._outlet.push_chunk(chunk[keep], ts[keep].tolist())
                self.n_pushed += int(keep.sum())
                for offset, label in markers:
                    self._marker_outlet.push_sample([label], float(ts[offset]))
                    self.markers_sent.append((float(ts[offset]), label))
                    self.n_markers += 1
                k += m
        except Exception:
            logger.exception("Source %r failed while publishing", self.name)
            self.finished.set()
            raise
