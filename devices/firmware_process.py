"""Run the reference controller firmware (``devices/firmware``) on this machine.

Two builds of the same C core serve ``docs/protocol.md`` on a pseudo-terminal:

- ``"avr"``: the ATmega328P image (``exo-fw.elf``, the one a board is flashed with) running in
  simavr, its UART bridged to a pty; the LED and motor pins can be traced to a CSV file;
- ``"host"``: the core compiled for this machine (fast, no simulator).

``make firmware`` builds both. :class:`FirmwareProcess` starts one, waits until it serves and
gives the path a host opens (``ExoskeletonDriver(proc.url)``); the ``exofw://`` URL
(:mod:`devices.urlhandler.protocol_exofw`) does the same from a serial URL.

Examples
--------
>>> with FirmwareProcess("avr", trace="pins.csv") as fw:      # doctest: +SKIP
...     with ExoskeletonDriver(fw.url) as exo:
...         exo.stand()
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

from devices._check import check_option
from devices.errors import DeviceError

logger = logging.getLogger("devices")

FIRMWARE_DIR = Path(__file__).resolve().parent / "firmware"
BUILD_DIR = FIRMWARE_DIR / "build"
BOARDS = ("avr", "host")
_BUILD_HINT = ("build it with `make firmware` (needs the Debian packages gcc-avr avr-libc simavr "
               "libsimavr-dev libsimavrparts1 libelf-dev pkg-config)")


class FirmwareError(DeviceError):
    """The reference firmware is not built, or its process failed."""


def firmware_command(board: str, *, trace: str | os.PathLike | None = None,
                     link: str | os.PathLike | None = None,
                     build_dir: str | os.PathLike | None = None) -> list[str]:
    """Return the command line that serves ``board`` ("avr" in simavr, or "host").

    Raises
    ------
    FirmwareError
        A program or image it needs is not built.
    """
    check_option(board, BOARDS, "board")
    build = Path(build_dir) if build_dir is not None else BUILD_DIR
    if board == "avr":
        cmd = [build / "exo-simavr", build / "exo-fw.elf"]
    else:
        cmd = [build / "exo-fw-host"]
    for path in cmd:
        if not path.is_file():
            raise FirmwareError(f"{path} does not exist: {_BUILD_HINT}.")
    args = [str(p) for p in cmd]
    if link is not None:
        args += ["--link", str(link)]
    if trace is not None:
        args += ["--trace", str(trace)]
    return args


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Ask Linux to send SIGTERM to the child when its parent dies (no orphan simulators)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class FirmwareProcess:
    """The reference firmware served on a pty by a child process.

    Parameters
    ----------
    board : {"avr", "host"}, default="avr"
        The ATmega328P image in simavr, or the host build.
    trace : path-like | None
        CSV file of pin edges (``t_ns,wall_ns,signal,value``; signals ``led1``.. ``led5``,
        ``motor``, ``session``); see :mod:`devices.led_trace`.
    link : path-like | None
        A symlink kept pointing at the pty (a stable name).
    build_dir : path-like | None
        Where ``make firmware`` put the programs (default ``devices/firmware/build``).
    startup_timeout : float, default=10.0
        Seconds to wait for the process to serve.

    Attributes
    ----------
    url : str
        The path a host opens (the link when given, else the pty).
    pty : str
        The pseudo-terminal device.
    """

    def __init__(self, board: str = "avr", *, trace: str | os.PathLike | None = None,
                 link: str | os.PathLike | None = None,
                 build_dir: str | os.PathLike | None = None,
                 startup_timeout: float = 10.0) -> None:
        self.board = check_option(board, BOARDS, "board")
        self.trace = None if trace is None else Path(trace)
        self.link = None if link is None else Path(link)
        self.build_dir = build_dir
        self.startup_timeout = float(startup_timeout)
        self.url = ""
        self.pty = ""
        self._proc: subprocess.Popen | None = None
        self._output: collections.deque[str] = collections.deque(maxlen=50)
        self._served = threading.Event()
        self._reader: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FirmwareProcess:
        """Start the process and wait until it serves; return self."""
        if self._proc is not None:
            raise RuntimeError("The firmware process is already running; call stop() first.")
        cmd = firmware_command(self.board, trace=self.trace, link=self.link,
                               build_dir=self.build_dir)
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, bufsize=1, start_new_session=True, preexec_fn=_die_with_parent)
        self._reader = threading.Thread(target=self._read_output, name="exofw-output",
                                        daemon=True)
        self._reader.start()
        deadline = time.monotonic() + self.startup_timeout
        while not self._served.wait(0.05):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                out = "\n".join(self._output)
                self.stop()
                raise FirmwareError(f"The {self.board} firmware did not start ({' '.join(cmd)}):"
                                    f"\n{out}")
        logger.info("firmware (%s) serving on %s", self.board, self.url)
        return self

    def _read_output(self) -> None:
        proc = self._proc
        for line in proc.stdout:
            line = line.rstrip("\n")
            self._output.append(line)
            if ": serving on " in line and not self._served.is_set():
                self.url = line.split(": serving on ", 1)[1].strip()
                self.pty = self.pty or self.url
            elif line.startswith(("exo-fw: pty ", "exo-simavr: pty ")):
                self.pty = line.split(": pty ", 1)[1].strip()
            if self.url and (self.link is None or self.pty != self.url):
                self._served.set()
            logger.debug("firmware: %s", line)

    def stop(self, timeout: float = 3.0) -> int | None:
        """End the process (SIGTERM, then SIGKILL after ``timeout``); return its exit status."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        if self._reader is not None:
            self._reader.join(timeout=1.0)
        self._proc = None
        if proc.returncode not in (0, -signal.SIGTERM):
            logger.warning("firmware (%s) exited with status %s: %s", self.board,
                           proc.returncode, " | ".join(self._output))
        return proc.returncode

    def __enter__(self) -> FirmwareProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """True while the process runs."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def output(self) -> list[str]:
        """The last lines the process printed."""
        return list(self._output)

    def vendor_fault(self, active: bool = True) -> None:
        """Assert (or release) the board's vendor-fault input (fault ``MOTOR``)."""
        if not self.running:
            raise FirmwareError("The firmware process is not running.")
        self._proc.send_signal(signal.SIGUSR1 if active else signal.SIGUSR2)

