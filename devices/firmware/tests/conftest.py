"""Fixtures of the firmware tests (``make firmware-test``): the firmware built by ``make
firmware``, served by a child process, and a minimal raw client of docs/protocol.md."""

from __future__ import annotations

import os
import threading
import time
import uuid

import pytest
import serial

from devices.firmware_process import FirmwareProcess
from devices.protocol import Frame, FrameParser, encode_frame

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")


@pytest.fixture
def unique_name(request) -> str:
    """A unique LSL stream name / source id prefix for this test."""
    return f"ssvep-fwtest-{request.node.name[:40]}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(params=["host", "avr"])
def board(request) -> str:
    """Both builds of the firmware."""
    return request.param


@pytest.fixture
def firmware(board, tmp_path):
    """The firmware of ``board`` serving on a pty, its pins traced to ``tmp_path/pins.csv``."""
    with FirmwareProcess(board, trace=tmp_path / "pins.csv") as proc:
        yield proc


class RawClient:
    """A host written from docs/protocol.md alone: frames in, frames out, heartbeats on demand.

    Every received frame is kept with its host arrival time (``time.monotonic``).
    """

    def __init__(self, path: str) -> None:
        self.ser = serial.Serial(path, 115200, timeout=0.02, exclusive=True)
        self.parser = FrameParser()
        self.frames: list[tuple[float, Frame]] = []
        self.seq = 0
        self.lock = threading.Lock()
        self._alive = True
        self._hb = threading.Event()
        self._threads = [threading.Thread(target=self._read, daemon=True),
                         threading.Thread(target=self._beat, daemon=True)]
        for t in self._threads:
            t.start()

    def _read(self) -> None:
        while self._alive:
            try:
                data = self.ser.read(self.ser.in_waiting or 1)
            except serial.SerialException:  # the firmware process ended
                return
            now = time.monotonic()
            for f in self.parser.feed(data):
                with self.lock:
                    self.frames.append((now, f))

    def _beat(self) -> None:
        while self._alive:
            if self._hb.is_set():
                self.send("HB")
            time.sleep(0.1)

    def heartbeats(self, on: bool) -> None:
        """Send HB every 100 ms (or stop)."""
        (self._hb.set if on else self._hb.clear)()

    def send(self, verb: str, *args: object) -> int:
        """Send one frame; return its sequence number."""
        with self.lock:
            self.seq += 1
            seq = self.seq
            self.ser.write(encode_frame(seq, verb, *args))
        return seq

    def command(self, verb: str, *args: object, timeout: float = 1.0) -> Frame:
        """Send a command and return its ACK or NAK."""
        seq = self.send(verb, *args)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                for _, f in self.frames:
                    if f.verb in ("ACK", "NAK") and f.args and f.args[0] == str(seq):
                        return f
            time.sleep(0.005)
        raise AssertionError(f"no ACK/NAK to {verb} {args} within {timeout} s")

    def received(self, verb: str) -> list[tuple[float, Frame]]:
        """The frames of ``verb`` received so far, with their arrival times."""
        with self.lock:
            return [(t, f) for t, f in self.frames if f.verb == verb]

    def close(self) -> None:
        self._alive = False
        for t in self._threads:
            t.join(timeout=1.0)
        self.ser.close()


@pytest.fixture
def client(firmware):
    """A raw client attached to the firmware."""
    c = RawClient(firmware.url)
    yield c
    c.close()
