"""What happened in a closed-loop session, kept in memory for the summary and the plots.

The closed loop appends to a :class:`SessionRecord` from its threads (decisions from the
online loop, events from the safety supervisor, cues from the marker stream, telemetry
from the driver); :mod:`bci.app.summary` and :mod:`bci.app.session_plots` read it at the end.
All times are on the LSL clock (``pylsl.local_clock``), like the decisions and the cues.
"""

from __future__ import annotations

import threading
from array import array
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from bci.datasets import canonical_label

MAX_ITEMS = 200_000  # bound memory on very long sessions (older items are dropped)


def _append(lst: list, item: Any) -> None:
    lst.append(item)
    if len(lst) > MAX_ITEMS:
        del lst[: len(lst) - MAX_ITEMS]


class DecisionItem(Mapping):
    """One recorded decision, read like a dict (``d["t"]``, ``d.get("latency_s")``).

    Slots and an ``array`` of scores instead of a dict and a list of floats: a session keeps
    every decision (36,000 an hour at 10 per second), and this takes about 9 MB an hour where
    dicts took 21 MB (measured by scripts/soak.py, whose target is < 20 MB growth an hour).
    """

    __slots__ = ("t", "scores", "outcome", "winner", "reason", "latency_s", "health_ok")

    def __init__(self, **values: Any) -> None:
        for key in self.__slots__:
            object.__setattr__(self, key, values.get(key))

    def __getitem__(self, key: str) -> Any:
        if key not in self.__slots__:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.__slots__)

    def __len__(self) -> int:
        return len(self.__slots__)

    def __repr__(self) -> str:
        return f"DecisionItem({dict(self)!r})"


@dataclass
class SessionRecord:
    """Decisions, cues, supervisor events and poses of one session.

    Attributes
    ----------
    classes : list of str
        Class labels of the decoder, in score order.
    mapping : dict
        Target label -> command name.
    decisions : list of DecisionItem
        Read like dicts: ``{"t", "scores", "outcome", "winner", "reason", "latency_s",
        "health_ok"}``.
    cues : list of tuple (float, str)
        Cue onsets and labels (from the source's marker stream) where cues exist.
    events : list of dict
        Supervisor events ``{"t", "event", ...}`` (as logged by the supervisor).
    poses : list of tuple (t, x, y, heading_deg, posture)
        Telemetry of the exoskeleton.
    t0 : float | None
        Start of the session (LSL clock).
    t_end : float | None
        End of the session (LSL clock).
    """

    classes: list[str] = field(default_factory=list)
    mapping: dict[str, str] = field(default_factory=dict)
    decisions: list[dict] = field(default_factory=list)
    cues: list[tuple[float, str]] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    poses: list[tuple[float, float, float, float, str]] = field(default_factory=list)
    t0: float | None = None
    t_end: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add_decision(self, d: Any) -> None:
        """Record a :class:`bci.online.decision.Decision`."""
        item = DecisionItem(
            t=float(d.timestamp),
            scores=array("d", d.scores),
            outcome=d.outcome,
            winner=d.winner,
            reason=d.reason,
            latency_s=float(d.latency_s),
            health_ok=bool(d.health.ok),
        )
        with self.lock:
            if not self.classes and d.classes:
                self.classes = list(d.classes)
            _append(self.decisions, item)

    def add_cue(self, t: float, label: str) -> None:
        """Record a cue at LSL time ``t`` (a marker that names no cue is left out).

        Labels are canonicalised as for recordings (:func:`bci.datasets.canonical_label`:
        ``"13 Hz"`` -> ``"13.0Hz"``, ``"Rest"`` -> ``"rest"``); other markers (mne-lsl's
        ``"BAD_..."`` annotations, ``"start"``...) are not cues.
        """
        cue = canonical_label(label)
        if cue is None:
            return
        with self.lock:
            _append(self.cues, (float(t), cue))

    def add_event(self, t: float, event: str, data: dict) -> None:
        """Record a supervisor/driver event."""
        item = {"t": float(t), "event": str(event)}
        item.update({k: v for k, v in data.items() if k not in item})
        with self.lock:
            _append(self.events, item)

    def add_pose(self, t: float, x: float, y: float, heading: float, posture: str) -> None:
        """Record one telemetry sample of the exoskeleton's pose."""
        with self.lock:
            if self.poses and self.poses[-1][1:] == (x, y, heading, posture):
                return
            _append(self.poses, (float(t), float(x), float(y), float(heading), str(posture)))

    def snapshot(self) -> SessionRecord:
        """A consistent copy (for the summary and plots while threads may still write)."""
        with self.lock:
            return SessionRecord(
                classes=list(self.classes),
                mapping=dict(self.mapping),
                decisions=list(self.decisions),
                cues=list(self.cues),
                events=list(self.events),
                poses=list(self.poses),
                t0=self.t0,
                t_end=self.t_end,
            )
