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

from bci.cli import error_text
from bci.errors import BCIError
from devices.errors import DeviceError

EXIT_OK = 0
EXIT_FAILED_CHECK = 1
EXIT_USER_ERROR = 2
EXIT_SOURCE_LOST = 3
EXIT_SIGHUP = 128 + signal.SIGHUP
EXIT_SIGINT = 128 + signal.SIGINT
EXIT_SIGQUIT = 128 + signal.SIGQUIT
EXIT_SIGTERM = 128 + signal.SIGTERM
#: ``stopped_by`` of a session whose input stayed away (see :mod:`bci.app.source_watch`).
SOURCE_LOST = "source stalled"

EXIT_CODES = {
    EXIT_OK: "the session ended normally",
    EXIT_FAILED_CHECK: "the session ran but failed: the online loop failed, or (demo) a "
                       "scheduled command was not executed or a command happened during rest",
    EXIT_USER_ERROR: "user error (configuration, stream, serial port, profile); one line on stderr",
    EXIT_SOURCE_LOST: "the input (EEG stream; decisions stream for the bridge) sent nothing for "
                      "source.max_stall_s; exoskeleton stopped, files closed",
    EXIT_SIGHUP: "stopped by SIGHUP (the terminal closed, the SSH link dropped); exoskeleton "
                 "stopped, files closed",
    EXIT_SIGINT: "stopped by SIGINT (Ctrl-C); exoskeleton stopped, files closed",
    EXIT_SIGQUIT: "stopped by SIGQUIT (Ctrl-\\); exoskeleton stopped, files closed",
    EXIT_SIGTERM: "stopped by SIGTERM (kill, a service manager); exoskeleton stopped, files "
                  "closed",
}

#: The signals a terminal, a shell or a service manager sends to end a program. Each ends a
#: session in order (the exoskeleton stopped first); SIGKILL cannot be caught, and then the
#: controller's watchdog stops the exoskeleton.
STOP_SIGNALS = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM)


def exit_code(stopped_by: str) -> int:
    """The exit status of a session that ended for ``stopped_by`` (see :data:`EXIT_CODES`)."""
    if stopped_by == "error":
        return EXIT_FAILED_CHECK
    if stopped_by == SOURCE_LOST:
        return EXIT_SOURCE_LOST
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
    """What is printed for a user error: ``ssvep-exo <command>: error: <message>`` on one line,
    then the error's details (e.g. the streams seen), one per line (see
    :func:`bci.cli.error_text`)."""
    return error_text(command, exc)
