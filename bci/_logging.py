"""One logger for the package, as in MNE: handlers are attached only by the CLI."""

from __future__ import annotations

import atexit
import contextlib
import inspect
import logging
import os
import re
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import pylsl

logger = logging.getLogger("bci")
logger.propagate = False
logger.addHandler(logging.NullHandler())


def warn(message: str, category: type[Warning] = RuntimeWarning) -> None:
    """Emit a warning attributed to the first caller outside this package.

    Parameters
    ----------
    message : str
        The warning text.
    category : type of Warning, default=RuntimeWarning
        Warning class.
    """
    frame = inspect.currentframe()
    stacklevel = 1
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if not (module == "bci" or module.startswith(("bci.", "devices", "calibration"))):
            break
        frame = frame.f_back
        stacklevel += 1
    warnings.warn(message, category, stacklevel=stacklevel)
    if not _WARNINGS_ROUTED:  # routed warnings reach the logger already
        logger.warning(message)


def report_thread_error(message: str, *args: object) -> None:
    """Report the exception being handled by a worker thread that carries on after it.

    Logs ``message`` and hands the exception to :func:`threading.excepthook`, as if it had
    ended the thread: Python prints its traceback, and under pytest it fails the test. Call
    it from an ``except`` block, for failures that are bugs (not for expected outcomes such
    as a lost stream or a full disk).
    """
    logger.error(message, *args)
    exc_type, exc, tb = sys.exc_info()
    if exc is None:  # pragma: no cover - called outside an except block
        return
    threading.excepthook(threading.ExceptHookArgs((exc_type, exc, tb,
                                                   threading.current_thread())))


def route_liblsl_log() -> None:
    """Send liblsl's own log lines (warnings and errors) to the ``bci.liblsl`` logger.

    liblsl writes its log (``INFO``/``WARN``/``ERR`` lines: stream found, transmission broke
    off, ...) straight to stderr, across a live view or a one-line error. Before the first
    LSL call, this points liblsl's log at a file of this process (``log.file`` of liblsl's
    configuration, which also stops its stderr output) and forwards each new line to the
    ``bci.liblsl`` logger: ``ERR`` and ``WARN`` as warnings, anything else as debug. Does
    nothing when the user chose a liblsl configuration (``LSLAPICFG``) or after the first
    call.
    """
    global _LIBLSL_LOG
    if _LIBLSL_LOG is not None or "LSLAPICFG" in os.environ:
        return
    path = Path(tempfile.gettempdir()) / f"ssvep-exo-liblsl-{os.getpid()}.log"
    try:
        path.write_text("", encoding="utf-8")
        pylsl.set_config_content(f"[log]\nlevel = -1\nfile = {path}\n")
        with stderr_silenced():  # liblsl announces its log file on stderr as it opens it
            pylsl.protocol_version()  # loads the configuration now
    except (OSError, RuntimeError):  # pragma: no cover - read-only temp folder, old liblsl
        return
    _LIBLSL_LOG = path
    atexit.register(path.unlink, missing_ok=True)
    threading.Thread(target=_forward_liblsl_log, args=(path,), name="liblsl-log",
                     daemon=True).start()


@contextlib.contextmanager
def stderr_silenced():
    """File descriptor 2 on /dev/null for the duration (C libraries write there directly).

    Only for short calls in the main thread before other threads run: anything else written
    to stderr meanwhile is lost."""
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


_LIBLSL_LOG: Path | None = None
_LIBLSL_LINE = re.compile(r"\s(FATL|ERR|WARN|INFO|\d+)\|\s?(.*)$")


def _forward_liblsl_log(path: Path) -> None:
    lsl_logger = logging.getLogger("bci.liblsl")
    with open(path, encoding="utf-8", errors="replace") as f:
        pending = ""
        while True:
            chunk = f.readline()
            if not chunk:
                time.sleep(0.2)
                continue
            pending += chunk
            if not pending.endswith("\n"):
                continue  # a line still being written
            line, pending = pending.strip(), ""
            m = _LIBLSL_LINE.search(line)
            if m is None or not m.group(2).strip():
                continue
            level = logging.WARNING if m.group(1) in ("FATL", "ERR", "WARN") else logging.DEBUG
            lsl_logger.log(level, "liblsl: %s", m.group(2).strip())


def route_warnings() -> None:
    """Show Python warnings as ``bci`` log records (one line, no source path and line).

    Without this a warning prints as ``.../bin/ssvep-exo:6: RuntimeWarning: ...`` followed by
    the source line of the caller. The command line calls it; :func:`warn` then logs only
    once.
    """
    global _WARNINGS_ROUTED
    _WARNINGS_ROUTED = True
    warnings.showwarning = _show_warning


_WARNINGS_ROUTED = False


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    logger.warning("%s", message)
