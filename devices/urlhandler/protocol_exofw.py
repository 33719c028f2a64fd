"""pyserial handler for ``exofw://``: run the reference firmware and open its pty.

URL format::

    exofw://avr[?trace=<csv path>]     the ATmega328P image in simavr
    exofw://host                       the host build of the same core

The first open of a URL starts a :class:`~devices.firmware_process.FirmwareProcess` and keeps
it for the life of the process (ended at exit); later opens of the same URL (reconnections)
reach the same firmware, whose state survives a reconnection as a board's would. Unknown
options raise ValueError, as pyserial's own handlers do. ``make firmware`` builds the programs.
"""

from __future__ import annotations

import atexit
import threading
import urllib.parse as urlparse

import serial
from serial.serialutil import SerialException

from devices.firmware_process import BOARDS, FirmwareProcess

_OPTIONS = ("trace",)
_PROCESSES: dict[str, object] = {}
_LOCK = threading.Lock()


def firmware_for(url: str):
    """Return the :class:`~devices.firmware_process.FirmwareProcess` serving ``url``."""
    parts = urlparse.urlsplit(url)
    if parts.scheme != "exofw":
        raise SerialException(f"expected a URL starting with exofw://, got {url!r}")
    board = parts.netloc or parts.path.strip("/")
    if board not in BOARDS:
        raise ValueError(f"unknown board {board!r} in {url!r}; use exofw://avr or exofw://host")
    params = {}
    for option, values in urlparse.parse_qs(parts.query, True).items():
        if option not in _OPTIONS:
            raise ValueError(f"unknown option {option!r} in {url!r}; allowed: "
                             f"{', '.join(_OPTIONS)}")
        params[option] = values[0]
    key = f"{board}?{sorted(params.items())}"
    with _LOCK:
        proc = _PROCESSES.get(key)
        if proc is None or not proc.running:
            proc = FirmwareProcess(board, trace=params.get("trace")).start()
            _PROCESSES[key] = proc
    return proc


@atexit.register
def stop_all() -> None:
    """Stop every firmware process started through ``exofw://`` URLs."""
    with _LOCK:
        procs = list(_PROCESSES.values())
        _PROCESSES.clear()
    for proc in procs:
        proc.stop()


class Serial(serial.Serial):
    """The pty of a firmware process, opened like any serial device."""

    def open(self) -> None:
        """Start (or find) the firmware for the URL, then open its pty."""
        url = self._port
        try:
            pty = firmware_for(url).pty
        except (SerialException, ValueError):
            raise
        except Exception as exc:  # a missing build is a failure to open this port
            raise SerialException(str(exc)) from exc
        self._port = self.portstr = pty
        try:
            super().open()
        finally:
            self._port = self.portstr = url
