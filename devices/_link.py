"""A minimal, fully controllable host link for the conformance kit (frames out, timestamped
frames in; no retransmission, no reconnection, heartbeats only when told)."""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Callable

import serial
import serial.threaded

from devices.errors import PortError
from devices.exoskeleton import _Reader, open_exclusive, release_exclusive
from devices.protocol import PROTOCOL_VERSION, Frame, FrameParser, Telemetry, encode_frame


class _Recorder(serial.threaded.Protocol):
    def __init__(self, link: ControllerLink) -> None:
        self.link = link

    def data_received(self, data: bytes) -> None:
        self.link._on_bytes(data)

    def connection_lost(self, exc) -> None:
        self.link._on_closed(exc)


class ControllerLink:
    """A minimal, fully controllable host: frames out, timestamped frames in.

    Unlike :class:`devices.exoskeleton.ExoskeletonDriver` it retransmits nothing, reconnects
    never and sends heartbeats only when told, so each check decides exactly what the
    controller sees.
    """

    def __init__(self, url: str, *, baudrate: int = 115200, exclusive: bool = True) -> None:
        self.url = url
        self.baudrate = baudrate
        kwargs = {"baudrate": baudrate, "timeout": 0.05, "write_timeout": 0.5}
        if exclusive:
            self.ser = open_exclusive(url, **kwargs)
        else:
            try:
                self.ser = serial.serial_for_url(url, **kwargs)
            except (serial.SerialException, OSError, ValueError) as exc:
                raise PortError(f"Cannot open {url!r}: {exc}") from exc
        self.parser = FrameParser()
        self.frames: list[tuple[float, Frame]] = []
        self.cond = threading.Condition()
        self.closed_reason: str | None = None
        self._seq = 0
        self._wlock = threading.Lock()
        self._hb_stop: threading.Event | None = None
        self._hb_thread: threading.Thread | None = None
        self.last_hb = 0.0
        self.reader = _Reader(self.ser, lambda: _Recorder(self))
        self.reader.start()
        self.reader.connect()

    # ------------------------------------------------------------ receive side
    def _on_bytes(self, data: bytes) -> None:
        now = time.monotonic()
        frames = self.parser.feed(data)
        if frames:
            with self.cond:
                self.frames.extend((now, f) for f in frames)
                self.cond.notify_all()

    def _on_closed(self, exc) -> None:
        with self.cond:
            self.closed_reason = str(exc) if exc is not None else "closed"
            self.cond.notify_all()

    def mark(self) -> int:
        """Index of the next frame to arrive (for :meth:`wait`)."""
        with self.cond:
            return len(self.frames)

    def wait(self, pred: Callable[[Frame], bool], timeout: float,
             since: int = 0) -> tuple[float, Frame] | None:
        """The first frame from index ``since`` on that satisfies ``pred`` (or None)."""
        deadline = time.monotonic() + timeout
        i = since
        with self.cond:
            while True:
                while i < len(self.frames):
                    t, f = self.frames[i]
                    i += 1
                    if pred(f):
                        return t, f
                left = deadline - time.monotonic()
                if left <= 0 or self.closed_reason is not None:
                    return None
                self.cond.wait(left)

    def tel_since(self, since: int) -> list[tuple[float, Telemetry]]:
        """Telemetry received from index ``since`` on."""
        with self.cond:
            items = self.frames[since:]
        out = []
        for t, f in items:
            tel = Telemetry.from_frame(f, t) if f.verb == "TEL" else None
            if tel is not None:
                out.append((t, tel))
        return out

    # ------------------------------------------------------------ send side
    def next_seq(self) -> int:
        with self._wlock:
            self._seq = self._seq % 65535 + 1
            return self._seq

    def write(self, data: bytes) -> float:
        """Write raw bytes; return the time they were handed to the port.

        A write longer than the port's buffers returns only once the line has carried most
        of it: 12 KB take 1.04 s at 115200 baud on the wire, and a USB adapter or a simulated
        UART (simavr's: about 2 s) hands the buffer back in bursts. Its timeout grows with
        it, to three times the bare line time.
        """
        with self._wlock:
            normal = self.ser.write_timeout
            line_s = len(data) * 10 / self.baudrate
            if normal is not None and line_s > 0.1:
                self.ser.write_timeout = normal + 3 * line_s
            try:
                self.ser.write(data)
            finally:
                self.ser.write_timeout = normal
            return time.monotonic()

    def send(self, verb: str, *args: object, seq: int | None = None) -> tuple[int, float]:
        """Send one frame; return (seq, write time)."""
        seq = self.next_seq() if seq is None else seq
        return seq, self.write(encode_frame(seq, verb, *args))

    def command(self, verb: str, *args: object, seq: int | None = None,
                timeout: float = 0.5) -> Frame | None:
        """Send one frame and return its ACK/NAK (None when none came)."""
        start = self.mark()
        seq, _ = self.send(verb, *args, seq=seq)
        hit = self.wait(lambda f: f.verb in ("ACK", "NAK") and f.args[:1] == (str(seq),),
                        timeout, start)
        return None if hit is None else hit[1]

    def status(self, timeout: float = 0.5) -> Telemetry | None:
        """STATUS, then the telemetry that answers it."""
        start = self.mark()
        if self.command("STATUS", timeout=timeout) is None:
            return None
        hit = self.wait(lambda f: f.verb == "TEL", timeout, start)
        return None if hit is None else Telemetry.from_frame(hit[1], hit[0])

    def hello(self, nonce: str | None = None) -> Frame | None:
        """Open a session; return the ACK (None when refused or unanswered)."""
        nonce = nonce or secrets.token_hex(4).upper()
        reply = self.command("HELLO", PROTOCOL_VERSION, nonce)
        return reply if reply is not None and reply.verb == "ACK" else None

    def start_heartbeats(self, period: float = 0.1) -> None:
        """Send HB every ``period`` from a thread until :meth:`stop_heartbeats`."""
        self.stop_heartbeats()
        stop = threading.Event()

        def beat() -> None:
            while not stop.is_set():
                with contextlib.suppress(Exception):
                    t = self.write(encode_frame(self.next_seq(), "HB"))
                    self.last_hb = t
                stop.wait(period)

        self._hb_stop = stop
        self._hb_thread = threading.Thread(target=beat, name="conformance-hb", daemon=True)
        self._hb_thread.start()

    def stop_heartbeats(self) -> float:
        """Stop the heartbeats; return the time the last one was written."""
        if self._hb_thread is not None:
            self._hb_stop.set()
            self._hb_thread.join(1.0)
            self._hb_thread = None
        return self.last_hb

    def close(self) -> None:
        """Stop heartbeats and the reader, release and close the port."""
        self.stop_heartbeats()
        self.reader.stop()
        release_exclusive(self.ser)
