"""How a closed-loop session ends: exit statuses, the signals that stop it, user errors.

A signal never kills the session outright: :func:`stop_on_signals` turns it into an orderly
stop (threads, then STOP to the exoskeleton and the link closed, then the files), and the
session's exit status names the signal (128 + its number, as a shell reports it).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

from bci.cli import one_line
from bci.errors import BCIError
from devices.errors import DeviceError

EXIT_OK = 0
EXIT_FAILED_CHECK = 1
EXIT_USER_ERROR = 2
EXIT_SIGINT = 128 + signal.SIGINT
EXIT_SIGTERM = 128 + signal.SIGTERM
EXIT_CODES = {
    EXIT_OK: "the session ended normally",
    EXIT_FAILED_CHECK: "the session ran but failed: the online loop failed, or (demo) a "
                       "scheduled command was not executed or a command happened during rest",
    EXIT_USER_ERROR: "user error (configuration, stream, serial port, profile); one line on stderr",
    EXIT_SIGINT: "stopped by SIGINT (Ctrl-C); exoskeleton stopped, files closed",
    EXIT_SIGTERM: "stopped by SIGTERM; exoskeleton stopped, files closed",
}

#: The signals that end a session in order (each stops the exoskeleton first).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def exit_code(stopped_by: str) -> int:
    """The exit status of a session that ended for ``stopped_by`` (see :data:`EXIT_CODES`)."""
    if stopped_by == "error":
        return EXIT_FAILED_CHECK
    for sig in STOP_SIGNALS:
        if stopped_by == sig.name:
            return 128 + sig
    return EXIT_OK


@contextlib.contextmanager
def stop_on_signals(on_signal: Callable[[str], None], *, enabled: bool = True) -> Iterator[None]:
    """Within the block, each of :data:`STOP_SIGNALS` calls ``on_signal(name)`` instead of
    ending the process; the previous handlers come back afterwards.

    Handlers can only be installed from the main thread; elsewhere (or with
    ``enabled=False``) this does nothing.
    """
    previous: dict[int, Any] = {}
    if enabled and threading.current_thread() is threading.main_thread():
        for sig in STOP_SIGNALS:
            previous[sig] = signal.signal(
                sig, lambda signum, frame: on_signal(signal.Signals(signum).name))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def is_user_error(exc: BaseException) -> bool:
    """True for the errors a user can cause (configuration, stream, port, profile)."""
    return isinstance(exc, (BCIError, DeviceError))


def user_error_line(command: str, exc: BaseException) -> str:
    """The one line printed for a user error: ``ssvep-exo <command>: error: <message>``.

    Multi-line messages (e.g. the list of streams seen) are joined into one line.
    """
    return f"ssvep-exo {command}: error: {one_line(exc)}"
