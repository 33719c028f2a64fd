"""Shared machinery of the LSL inlets: connect, background worker, loss and re-acquisition.

Modelled on mne-lsl's ``stream/base.py``: arguments are checked in ``__init__``, every
attribute that exists after connecting is created in :meth:`_reset_variables`, guarded
methods call :meth:`_check_connected`, one worker thread owns the inlet.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod

import pylsl
from pylsl.util import LostError

from bci._check import check_range, check_type
from bci._logging import logger, report_thread_error
from bci.acquisition._metadata import describe
from bci.acquisition.resolve import _predicate, find_stream, resolve_matching
from bci.errors import StreamError


class BaseInlet(ABC):
    """An LSL inlet read by a background thread, re-acquired when its stream comes back."""

    _kind = "LSL"
    _processing_flags = pylsl.proc_clocksync | pylsl.proc_monotonize

    def __init__(
        self,
        name: str | None,
        stype: str | None,
        source_id: str | None,
        hostname: str | None,
        *,
        reconnect: bool = True,
        poll_s: float = 0.01,
    ) -> None:
        for value, pname in ((name, "name"), (stype, "stype"), (source_id, "source_id"),
                             (hostname, "hostname")):
            check_type(value, (str, type(None)), pname)
        check_type(reconnect, bool, "reconnect")
        self._query = {"name": name, "stype": stype, "source_id": source_id,
                       "hostname": hostname}
        self._reconnect = reconnect
        self._poll_s = check_range(poll_s, "poll_s", 0, 1.0, low_inclusive=False)
        self._lock = threading.Lock()
        self._reset_variables()

    # ------------------------------------------------------------------ state
    def _reset_variables(self) -> None:
        """Create (or reset) every attribute that only exists while connected."""
        self._inlet: pylsl.StreamInlet | None = None
        self._info: pylsl.StreamInfo | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()  # each connection gets its own (see _run)
        self._connected = False
        self._lost = False
        self._worker_error: BaseException | None = None
        self._n_reconnections = 0
        self._pin: dict[str, str | None] = {}
        self._resolver: pylsl.ContinuousResolver | None = None
        self._lost_uid: tuple[str, float] | None = None

    @property
    def connected(self) -> bool:
        """True between :meth:`connect` and :meth:`disconnect`."""
        return self._connected

    def _check_connected(self, name: str) -> None:
        if not self._connected:
            raise RuntimeError(
                f"The {type(self).__name__} is not connected: call connect() before {name}."
            )

    @property
    def info(self) -> pylsl.StreamInfo:
        """Full metadata of the connected stream (as its outlet declared it)."""
        self._check_connected("info")
        return self._info

    @property
    def lost(self) -> bool:
        """True while the stream is gone (its outlet vanished or the worker failed)."""
        return self._connected and (self._lost or self._worker_error is not None)

    @property
    def n_reconnections(self) -> int:
        """How many times the stream was re-acquired after being lost."""
        return self._n_reconnections

    # ------------------------------------------------------------------ connect
    def connect(self, timeout: float = 5.0, *, stop_event: threading.Event | None = None):
        """Find the stream, open it and start the background worker.

        Parameters
        ----------
        timeout : float, default=5.0
            Seconds to look for the stream and to read its metadata.
        stop_event : threading.Event | None
            Stop looking for the stream as soon as it is set
            (:class:`~bci.acquisition.resolve.SearchStopped`).

        Returns
        -------
        self
        """
        if self._connected:
            raise RuntimeError(f"The {type(self).__name__} is already connected.")
        timeout = check_range(timeout, "timeout", 0, None)
        info = find_stream(**self._query, timeout=timeout, stop_event=stop_event)
        self._reset_variables()
        inlet, full = self._open(info, timeout=max(timeout, 1.0))
        self._configure(full)  # validates the metadata, may raise StreamError
        # Re-acquire the same device: its source id (and host when pinned), else name/type.
        sid = self._query["source_id"] or full.source_id() or None
        self._pin = {"source_id": sid, "hostname": self._query["hostname"],
                     "name": None if sid else full.name(),
                     "stype": None if sid else full.type()}
        self._inlet, self._info = inlet, full
        self._connected = True
        self._on_connected()
        self._thread = threading.Thread(target=self._run, args=(self._stop, dict(self._pin)),
                                        name=f"{self._kind}-{full.name()}", daemon=True)
        self._thread.start()
        logger.info("Connected to %s", describe(full))
        return self

    def disconnect(self) -> None:
        """Stop the worker and close the inlet (safe to call twice)."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=5.0)
            if self._thread.is_alive():  # it exits at its next check, touching nothing
                logger.warning("The %s acquisition thread is still busy; leaving it to end "
                               "by itself", self._kind)
        inlet = self._inlet
        self._inlet = None
        if inlet is not None:
            try:
                inlet.close_stream()
            except Exception:  # noqa: BLE001 - closing a broken inlet must not raise
                logger.debug("closing the inlet failed", exc_info=True)
        self._reset_variables()

    def __enter__(self):
        if not self._connected:
            self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.disconnect()

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self._stop.set()
        except Exception:  # noqa: BLE001
            pass

    def _open(self, info: pylsl.StreamInfo, timeout: float):
        inlet = pylsl.StreamInlet(info, max_buflen=360, recover=False,
                                  processing_flags=self._processing_flags)
        try:
            full = inlet.info(timeout=timeout)
            inlet.open_stream(timeout=timeout)
        except Exception as exc:
            raise StreamError(
                f"Could not open the LSL stream {describe(info)}: {exc}. Check that its "
                f"publisher is still running and reachable."
            ) from exc
        try:  # the first clock-offset estimate takes ~0.6 s; get it before pulling data
            inlet.time_correction(timeout=min(timeout, 2.0))
        except Exception:  # noqa: BLE001 - data still flows; LSL retries by itself
            logger.debug("no clock offset yet for %s", describe(full))
        return inlet, full

    # ------------------------------------------------------------------ subclass hooks
    @abstractmethod
    def _configure(self, info: pylsl.StreamInfo) -> None:
        """Check the stream's metadata and prepare buffers (raise StreamError if unusable)."""

    def _on_connected(self) -> None:  # noqa: B027 - optional hook
        """Called after (re)connection, before the worker reads."""

    @abstractmethod
    def _pull(self, inlet: pylsl.StreamInlet) -> None:
        """Pull what is available (waiting at most ``poll_s``) and store it."""

    def _compatible(self, info: pylsl.StreamInfo) -> str | None:
        """Return why a re-found stream cannot replace the lost one (None if it can)."""
        return None

    # ------------------------------------------------------------------ worker
    def _run(self, stop: threading.Event, pin: dict) -> None:
        while not stop.is_set():
            try:
                inlet = self._inlet
                if inlet is None:
                    self._try_reacquire(stop, pin)
                    continue
                try:
                    self._pull(inlet)
                except LostError:
                    self._mark_lost()
            except Exception as exc:  # noqa: BLE001 - reported, the stream marked stalled
                self._worker_error = exc
                report_thread_error("The %s acquisition thread failed; the stream is marked "
                                    "stalled", self._kind)
                stop.wait(0.5)
                if not stop.is_set():
                    self._mark_lost()

    def _mark_lost(self) -> None:
        inlet, self._inlet = self._inlet, None
        if not self._lost:
            logger.warning("LSL stream %s lost; %s", describe(self._info),
                           "looking for it again" if self._reconnect else "not reconnecting")
        self._lost = True
        if self._info is not None:
            self._lost_uid = (self._info.uid(), time.monotonic())
        del inlet

    def _try_reacquire(self, stop: threading.Event, pin: dict) -> None:
        if not self._reconnect:
            stop.wait(0.1)
            return
        # A continuous resolver answers without blocking (a blocking resolve call can take
        # 5 s here after the first one). For the first 1.5 s it may still list the outlet
        # that just vanished; that uid is skipped meanwhile (a stream whose connection broke
        # while its outlet lives keeps its uid and is accepted after that).
        if self._resolver is None:
            pred = _predicate(pin["name"], pin["stype"], pin["source_id"], pin["hostname"])
            if pred is None:  # pragma: no cover - values that XPath cannot quote
                found, _ = resolve_matching(**pin, wait=0.5)
            else:
                self._resolver = pylsl.ContinuousResolver(pred=pred, forget_after=1.0)
        if self._resolver is not None:
            skip = None
            if self._lost_uid is not None and time.monotonic() - self._lost_uid[1] < 1.5:
                skip = self._lost_uid[0]
            found = [s for s in self._resolver.results() if s.uid() != skip]
            if not found:
                stop.wait(0.1)
        if stop.is_set() or not found:
            return
        info = found[0]
        try:
            inlet, full = self._open(info, timeout=1.0)
        except Exception as exc:  # noqa: BLE001
            logger.warning("Re-opening %s failed: %s", describe(info), exc)
            stop.wait(0.5)
            return
        why = self._compatible(full)
        if why is not None or stop.is_set():
            if why is not None:
                logger.error("The stream %s came back but cannot be used: %s",
                             describe(full), why)
            inlet.close_stream()
            stop.wait(1.0)
            return
        self._info = full
        self._on_connected()
        self._inlet = inlet
        self._resolver = None
        self._lost = False
        self._worker_error = None
        self._n_reconnections += 1
        logger.warning("LSL stream %s re-acquired (reconnection %d)", describe(full),
                       self._n_reconnections)
