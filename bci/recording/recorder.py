"""``SessionRecorder``: record a live session's EEG, cues and decisions to one XDF file."""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pylsl

from bci._logging import logger
from bci.recording.xdf import XDFWriter, stream_header_xml

EEG_ID, MARKERS_ID, DECISIONS_ID = 1, 2, 3
#: Decisions are recorded like the decisions LSL stream (bci.online) publishes them.
DECISIONS_NAME, DECISIONS_TYPE = "ssvep-decisions", "Markers"
_STOP = object()


@dataclass
class _StreamStats:
    first: float = float("nan")
    last: float = float("nan")
    count: int = 0
    offsets: list = field(default_factory=list)

    def add(self, ts: np.ndarray) -> None:
        if len(ts):
            if self.count == 0:
                self.first = float(ts[0])
            self.last = float(ts[-1])
            self.count += len(ts)


class SessionRecorder:
    """Crash-safe recording of EEG, markers (cues) and decisions as three XDF streams.

    EEG chunks come from an :class:`~bci.acquisition.EEGStream` (as a listener, so every
    received sample is recorded) or from :meth:`push_eeg`; cues from :meth:`push_marker`;
    decisions (JSON) from :meth:`push_decision`. A writer thread appends one chunk per
    batch and flushes it, so a killed process leaves a file that loads up to the last
    flushed chunk. A write error (a full disk, say) is logged, stored in :attr:`error`,
    passed to ``on_error``, and ends the recording, never the session.

    Parameters
    ----------
    path : path-like
        The ``.xdf`` file to create.
    stream : EEGStream | None
        A connected EEG stream to record (its channels, rate and unit are declared).
    ch_names, sfreq, unit : optional
        The EEG stream's description when ``stream`` is None and :meth:`push_eeg` is used.
    name : str, default="EEG"
        Name of the recorded EEG stream (default: the live stream's name).
    fsync : bool, default=False
        ``os.fsync`` after every chunk.
    flush_s : float, default=0.2
        The writer gathers queued chunks for at most this long before writing.
    on_error : callable | None
        Called once with the exception when writing fails.

    Attributes
    ----------
    error : BaseException | None
        The write error that ended the recording, if any.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        stream=None,
        ch_names: Sequence[str] | None = None,
        sfreq: float | None = None,
        unit: str = "volts",
        name: str | None = None,
        fsync: bool = False,
        flush_s: float = 0.2,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        if stream is None and (ch_names is None or sfreq is None):
            raise ValueError("Give either 'stream' or both 'ch_names' and 'sfreq'.")
        self.path = os.fspath(path)
        self._stream = stream
        self._ch_names = tuple(ch_names) if ch_names is not None else None
        self._sfreq = None if sfreq is None else float(sfreq)
        self._unit = unit
        self._name = name
        self.fsync = bool(fsync)
        self.flush_s = float(flush_s)
        self.on_error = on_error
        self.error: BaseException | None = None
        self._queue: queue.Queue = queue.Queue()
        self._writer: XDFWriter | None = None
        self._thread: threading.Thread | None = None
        self._stats = {EEG_ID: _StreamStats(), MARKERS_ID: _StreamStats(),
                       DECISIONS_ID: _StreamStats()}
        self._closed = False
        self._eeg_scale = 1.0

    # ------------------------------------------------------------------ life cycle
    def start(self) -> SessionRecorder:
        """Create the file, write the headers and start recording; returns self."""
        if self._thread is not None:
            raise RuntimeError("The SessionRecorder is already started.")
        if self._stream is not None:
            ch_names, sfreq = tuple(self._stream.ch_names), float(self._stream.sfreq)
            unit = "volts" if getattr(self._stream, "unit", "V") == "V" else (
                (self._stream.units or [None])[0] or "")
            name = self._name or self._stream.info.name()
        else:
            ch_names, sfreq, unit, name = self._ch_names, self._sfreq, self._unit, \
                self._name or "EEG"
        self._eeg_scale = 1.0
        if str(unit).strip().lower() in ("v", "volt", "volts"):
            self._eeg_scale, unit = 1e6, "microvolts"  # the LSL/XDF convention
        now = pylsl.local_clock()
        try:
            self._writer = XDFWriter(self.path, fsync=self.fsync)
            self._writer.add_stream(EEG_ID, stream_header_xml(
                name=name, stype="EEG", channel_count=len(ch_names), nominal_srate=sfreq,
                channel_format="float32", source_id=f"{name}-recorded", created_at=now,
                ch_names=ch_names, unit=unit, ch_type="EEG"), "float32", len(ch_names))
            self._writer.add_stream(MARKERS_ID, stream_header_xml(
                name=f"{name}-markers", stype="Markers", channel_count=1, nominal_srate=0,
                channel_format="string", source_id=f"{name}-markers-recorded",
                created_at=now, ch_names=["marker"]), "string", 1)
            self._writer.add_stream(DECISIONS_ID, stream_header_xml(
                name=DECISIONS_NAME, stype=DECISIONS_TYPE, channel_count=1, nominal_srate=0,
                channel_format="string", source_id=f"{DECISIONS_NAME}-recorded",
                created_at=now, ch_names=["decision"],
                desc={"content": "ssvep-exo decisions (Decision.to_json)"}), "string", 1)
        except OSError as exc:
            self._fail(exc)
        self._thread = threading.Thread(target=self._run, name="session-recorder", daemon=True)
        self._thread.start()
        if self._stream is not None:
            self._stream.add_listener(self._on_eeg)
        logger.info("Recording to %s", self.path)
        return self

    def close(self) -> None:
        """Write what is queued, the stream footers, and close the file (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._stream is not None:
            self._stream.remove_listener(self._on_eeg)
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(timeout=10.0)
        if self._writer is not None and self.error is None:
            try:
                for sid, st in self._stats.items():
                    self._writer.write_footer(
                        sid, first_timestamp=0.0 if st.count == 0 else st.first,
                        last_timestamp=0.0 if st.count == 0 else st.last,
                        sample_count=st.count, clock_offsets=st.offsets)
            except OSError as exc:
                self._fail(exc)
        if self._writer is not None:
            try:
                self._writer.close()
            except OSError as exc:  # pragma: no cover - close after a failed write
                self._fail(exc)
        logger.info("Recording %s closed (%d EEG samples, %d markers, %d decisions)",
                    self.path, *(self._stats[i].count for i in (EEG_ID, MARKERS_ID,
                                                                 DECISIONS_ID)))

    def __enter__(self) -> SessionRecorder:
        return self if self._thread is not None else self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def ok(self) -> bool:
        """True while nothing failed."""
        return self.error is None

    @property
    def counts(self) -> dict[str, int]:
        """Samples written per stream."""
        return {"eeg": self._stats[EEG_ID].count, "markers": self._stats[MARKERS_ID].count,
                "decisions": self._stats[DECISIONS_ID].count}

    # ------------------------------------------------------------------ input
    def _on_eeg(self, chunk: np.ndarray, timestamps: np.ndarray) -> None:
        self._queue.put((EEG_ID, chunk, np.asarray(timestamps, dtype=float).copy()))

    def push_eeg(self, data: np.ndarray, timestamps: Sequence[float]) -> None:
        """Queue EEG samples, shape (n_samples, n_channels), with their timestamps."""
        data = np.array(data, dtype=float, ndmin=2)
        ts = np.asarray(timestamps, dtype=float)
        n_ch = len(self._stream.ch_names) if self._stream is not None else len(self._ch_names)
        if data.ndim != 2 or data.shape[1] != n_ch or ts.shape != (data.shape[0],):
            raise ValueError(
                f"push_eeg needs data of shape (n_samples, {n_ch}) and one timestamp per "
                f"sample, got {data.shape} and {ts.shape}."
            )
        self._queue.put((EEG_ID, data, ts))

    def push_marker(self, timestamp: float, label: str) -> None:
        """Queue a marker (a cue such as ``"13.0Hz"``) with its LSL timestamp."""
        self._queue.put((MARKERS_ID, [[str(label)]], np.array([float(timestamp)])))

    def push_decision(self, decision, timestamp: float | None = None) -> None:
        """Queue a decision: a :class:`~bci.online.Decision`, a dict or a JSON string."""
        if hasattr(decision, "to_json"):
            text = decision.to_json()
            t = getattr(decision, "timestamp", None)
        elif isinstance(decision, dict):
            text, t = json.dumps(decision, separators=(",", ":")), decision.get("timestamp")
        else:
            text, t = str(decision), None
        t = timestamp if timestamp is not None else t
        t = pylsl.local_clock() if t is None or not np.isfinite(t) else float(t)
        self._queue.put((DECISIONS_ID, [[text]], np.array([t])))

    # ------------------------------------------------------------------ writer
    def _fail(self, exc: BaseException) -> None:
        if self.error is not None:
            return
        self.error = exc
        logger.error("Writing the recording %s failed: %s. The session goes on without "
                     "recording; free disk space or choose another folder.", self.path, exc)
        if self.on_error is not None:
            try:
                self.on_error(exc)
            except Exception:  # noqa: BLE001
                logger.exception("The recording's on_error callback failed")

    def _run(self) -> None:
        last_offset = 0.0
        stop = False
        while not stop:
            try:
                items = [self._queue.get(timeout=0.5)]
            except queue.Empty:
                items = []
            deadline = time.monotonic() + self.flush_s
            while items and items[-1] is not _STOP and time.monotonic() < deadline:
                try:
                    items.append(self._queue.get(timeout=max(deadline - time.monotonic(), 0)))
                except queue.Empty:
                    break
            if items and items[-1] is _STOP:
                items.pop()
                stop = True
            if self.error is not None or self._writer is None:
                continue  # a failed recording drops data; the session goes on
            try:
                self._write_batch(items)
                now = pylsl.local_clock()
                if now - last_offset > 5.0:  # timestamps are already on the local clock
                    for sid in (EEG_ID, MARKERS_ID, DECISIONS_ID):
                        self._writer.write_clock_offset(sid, now, 0.0)
                        self._stats[sid].offsets.append((now, 0.0))
                    self._writer.write_boundary()
                    last_offset = now
            except Exception as exc:  # noqa: BLE001 - any write failure ends the recording
                self._fail(exc)

    def _write_batch(self, items: list) -> None:
        by_stream: dict[int, list] = {}
        for sid, values, ts in items:
            by_stream.setdefault(sid, []).append((values, ts))
        for sid, parts in by_stream.items():
            ts = np.concatenate([p[1] for p in parts])
            if sid == EEG_ID:
                values = np.concatenate([np.asarray(p[0], dtype=float) for p in parts])
                values *= self._eeg_scale
            else:
                values = [v for p in parts for v in p[0]]
            self._writer.write_samples(sid, values, ts)
            self._stats[sid].add(ts)
