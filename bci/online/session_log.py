"""The session log: one JSON object per line, flushed line by line."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from bci.errors import BCIError
from bci.online.decision import Decision


class SessionLog:
    """Append-only JSON-lines log of a session (decisions and events).

    Every line is a JSON object with at least ``"event"`` and ``"wall_time"`` (Unix time);
    decisions are written as ``{"event": "decision", ...Decision.to_dict()}``. Each line is
    flushed (and, with ``fsync=True``, synced to disk) before :meth:`write` returns, so a
    crash loses at most the line being written. The object is also a ``log(event, data)``
    callable, as the safety supervisor expects.

    Parameters
    ----------
    path : str | Path
        File to append to (created with its parent folders).
    fsync : bool, default=False
        Also ``os.fsync`` after every line (survives power loss, slower).
    """

    def __init__(self, path: str | Path, *, fsync: bool = False) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise BCIError(
                f"Cannot open the session log {str(self.path)!r} ({exc}): choose a writable "
                "folder for the log."
            ) from exc
        self._fsync = bool(fsync)
        self._lock = threading.Lock()
        self.n_lines = 0

    def write(self, record: dict) -> None:
        """Append one JSON object as a line and flush it."""
        line = json.dumps(record, separators=(",", ":"), default=_default)
        with self._lock:
            if self._fh.closed:
                raise RuntimeError("The session log is closed; open a new SessionLog.")
            self._fh.write(line + "\n")
            self._fh.flush()
            if self._fsync:
                os.fsync(self._fh.fileno())
            self.n_lines += 1

    def event(self, event: str, **fields) -> None:
        """Append an event line ``{"event": event, "wall_time": ..., **fields}``."""
        self.write({"event": event, "wall_time": time.time(), **fields})

    def decision(self, decision: Decision, **extra) -> None:
        """Append a decision line."""
        self.write({"event": "decision", "wall_time": time.time(), **decision.to_dict(), **extra})

    def __call__(self, event: str, data: dict | None = None) -> None:
        """Log callback form ``log(event, data)`` (used by the safety supervisor)."""
        self.event(event, **(data or {}))

    def close(self) -> None:
        """Close the file (idempotent)."""
        with self._lock:
            if not self._fh.closed:
                self._fh.close()

    def __enter__(self) -> SessionLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_session_log(path: str | Path) -> list[dict]:
    """Read a session log back (a truncated last line, from a crash, is skipped)."""
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


def _default(obj):
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    return str(obj)
