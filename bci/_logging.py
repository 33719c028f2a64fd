"""One logger for the package, as in MNE: handlers are attached only by the CLI."""

from __future__ import annotations

import inspect
import logging
import os
import sys
import tempfile
import threading
import warnings
from pathlib import Path

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


def quiet_liblsl() -> None:
    """Keep liblsl's INFO lines off the terminal (call before the first LSL call).

    Points ``LSLAPICFG`` at a config file that sets liblsl's log level to warnings and
    errors only, unless the user already chose a config.
    """
    if "LSLAPICFG" in os.environ:
        return
    cfg = Path(tempfile.gettempdir()) / "ssvep-exo-lsl_api.cfg"
    try:
        if not cfg.exists():
            cfg.write_text("[log]\nlevel = -2\n", encoding="utf-8")
        os.environ["LSLAPICFG"] = str(cfg)
    except OSError:  # pragma: no cover - read-only temp folder: keep liblsl's default
        pass
