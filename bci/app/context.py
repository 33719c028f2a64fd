"""What the parts of a closed-loop session share: settings, record, view, log, stop, threads.

:class:`SessionContext` is handed to each part (:mod:`bci.app.decoding`,
:mod:`bci.app.device_side`, :mod:`bci.app.bridge`) so that none of them needs the session
object itself; :class:`Workers` starts the session's threads and joins them on the way out.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pylsl

from bci._logging import logger
from bci.app.config import SessionConfig
from bci.app.live_view import ViewState
from bci.app.record import SessionRecord
from bci.online import SessionLog


class Workers:
    """The session's worker threads (daemon threads, joined with a bounded wait)."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []

    def start(self, name: str, target: Callable[[], None]) -> None:
        """Start ``target`` in a thread called ``name``."""
        t = threading.Thread(target=target, name=name, daemon=True)
        self.threads.append(t)
        t.start()

    def join(self, timeout: float = 3.0) -> None:
        """Wait for every thread (each up to ``timeout`` s); warn about those still running."""
        for t in self.threads:
            t.join(timeout=timeout)
            if t.is_alive():
                logger.warning("Thread %s did not stop in time", t.name)


@dataclass
class SessionContext:
    """The services a session's parts use.

    Attributes
    ----------
    cfg : SessionConfig
    folder : Path
        The session folder.
    record : SessionRecord
        What happened (for the summary and the plots).
    view : ViewState
        What the live view shows.
    stop_event : threading.Event
        Set when the session is ending; every thread watches it.
    say : callable
        ``say(text)`` prints a message line (above the live view).
    request_stop : callable
        ``request_stop(why)`` ends the session (thread-safe; the first reason wins).
    workers : Workers
    log : bci.online.SessionLog | None
        ``session.jsonl`` once open (see :meth:`log_event`).
    """

    cfg: SessionConfig
    folder: Path
    record: SessionRecord
    view: ViewState
    stop_event: threading.Event
    say: Callable[[str], None]
    request_stop: Callable[[str], None]
    workers: Workers = field(default_factory=Workers)
    log: SessionLog | None = None

    def log_event(self, event: str, data: dict) -> None:
        """Append an event to ``session.jsonl``; a failing disk is logged, never raised."""
        if self.log is None:
            return
        try:
            self.log(event, data)
        except Exception:  # noqa: BLE001 - a failing disk must not stop the session
            logger.exception("Writing the session log failed")


def lsl_clock() -> float:
    """Now on the LSL clock (the clock of decisions, cues and the record)."""
    return pylsl.local_clock()


def safe_close(close: Callable[[], object]) -> None:
    """Call a closer; an error (e.g. a full disk while flushing) is logged, never raised,
    so that every other part is still closed."""
    try:
        close()
    except Exception:  # noqa: BLE001
        logger.exception("Closing %r failed", getattr(close, "__qualname__", close))
