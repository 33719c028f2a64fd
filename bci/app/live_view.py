"""Terminal live view of a closed-loop session, refreshed in place.

Shows one bar per target with its current score and the no-control threshold, the current
decision, the exoskeleton's posture, pose and last ACK, signal health per channel and the
processing latency. When the output is not a terminal (a pipe, a log file, CI) it prints one
plain line every few seconds instead.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

from bci._logging import logger
from bci.labels import is_rest

BAR_WIDTH = 36


@dataclass
class ViewState:
    """What the live view shows; the closed loop updates it from its threads.

    Attributes
    ----------
    classes : list of str
        Class labels in score order.
    scores : list of float
        Latest scores.
    mapping : dict
        Target label -> command name.
    threshold : float | None
        No-control threshold on the score axis (None: not shown).
    rule : str
        The policy's no-control rule in words (dwell, margin, rest class).
    margin : float | None
        Top-minus-second score of the last window.
    min_margin : float | None
        The policy's margin: each target's bar marks (with ``|``) the score it must reach to
        count as a win (the best other score plus the margin).
    decision : str
        Current decision text (e.g. ``"13.0Hz -> walk"`` or ``"no control (margin)"``).
    last_command : str
        Last command and what became of it.
    posture : str
    pose : tuple (x, y, heading_deg) | None
    last_ack : str
    ch_names : list of str
    bad_channels : dict
        Channel -> problem (``"flat"``, ``"NaN"``, ``"clipped"``).
    stream_status : str
        ``"ok"``, ``"stalled"``, ...
    latency_ms : float | None
        Processing latency of the last step.
    n_decisions : int
    elapsed_s : float
    role : str
    alert : str
        A problem to show above everything else (e.g. the stream stalled), or ``""``.
    """

    classes: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    mapping: dict[str, str] = field(default_factory=dict)
    threshold: float | None = None
    decision: str = "waiting for data"
    last_command: str = "-"
    posture: str = "?"
    pose: tuple[float, float, float] | None = None
    last_ack: str = "-"
    ch_names: list[str] = field(default_factory=list)
    bad_channels: dict[str, str] = field(default_factory=dict)
    stream_status: str = "connecting"
    latency_ms: float | None = None
    n_decisions: int = 0
    elapsed_s: float = 0.0
    role: str = "all"
    rule: str = ""
    margin: float | None = None
    min_margin: float | None = None
    alert: str = ""

    def show_decision(self, d) -> None:
        """Show one :class:`bci.online.Decision`: scores, margin, signal health, outcome."""
        if d.classes and not self.classes:
            self.classes = list(d.classes)
        if d.scores:
            self.scores = list(d.scores)
            top = sorted(d.scores, reverse=True)
            self.margin = top[0] - top[1] if len(top) > 1 else None
        self.n_decisions += 1
        self.latency_ms = 1000.0 * d.latency_s
        bad = {}
        for ch in d.health.flat_channels:
            bad[ch] = "flat"
        for ch in d.health.clipped_channels:
            bad[ch] = "clipped"
        for ch in d.health.nan_channels:
            bad[ch] = "NaN"
        self.bad_channels = bad
        self.stream_status = "stalled" if d.health.stalled else (
            "ok" if d.health.ok else "bad signal")
        if d.outcome is not None and not is_rest(d.outcome):
            self.decision = f"{d.outcome} -> {self.mapping.get(d.outcome, '?')}"
        else:
            top = f" (top: {d.winner})" if d.winner else ""
            self.decision = f"no control: {d.reason}{top}"


class GuardedOutput:
    """A text output that goes quiet, instead of raising, once writing to it fails.

    After SIGHUP the terminal is gone and every write raises ``OSError``; the session must
    still stop the exoskeleton and write its files, so the console is dropped (once, with a
    log entry) rather than turning the orderly stop into a crash.
    """

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.failed = False

    def _guard(self, action, *args) -> None:
        if self.failed:
            return
        try:
            action(*args)
        except (OSError, ValueError) as exc:  # ValueError: the file was closed
            self.failed = True
            logger.warning("The console is gone (%s); the session goes on without it", exc)

    def write(self, text: str) -> None:
        """Write ``text`` (nothing once the output failed)."""
        self._guard(self.out.write, text)

    def flush(self) -> None:
        """Flush (nothing once the output failed)."""
        self._guard(self.out.flush)

    def isatty(self) -> bool:
        """Whether the output is a terminal."""
        try:
            return bool(self.out.isatty())
        except (AttributeError, OSError, ValueError):
            return False


def _bar(value: float, lo: float, hi: float, threshold: float | None) -> str:
    span = hi - lo if hi > lo else 1.0
    frac = min(1.0, max(0.0, (value - lo) / span))
    n = int(round(frac * BAR_WIDTH))
    cells = ["#"] * n + ["."] * (BAR_WIDTH - n)
    if threshold is not None and lo <= threshold <= hi:
        k = min(BAR_WIDTH - 1, int(round((threshold - lo) / span * BAR_WIDTH)))
        cells[k] = "|"
    return "".join(cells)


def _as_probabilities(scores: list[float]) -> list[float] | None:
    """exp(scores) when the scores are log-probabilities (they sum to 1), else None."""
    if not scores or max(scores) > 1e-9:
        return None
    p = [math.exp(s) for s in scores]
    return p if abs(sum(p) - 1.0) < 1e-3 else None


def render_lines(state: ViewState) -> list[str]:
    """Return the lines of the full view (no escape codes)."""
    lines = [
        f"ssvep-exo run [{state.role}]  t={state.elapsed_s:6.1f} s  decisions={state.n_decisions}"
        f"  stream: {state.stream_status}"
        + ("" if state.latency_ms is None else f"  latency {state.latency_ms:5.1f} ms"),
    ]
    if state.alert:
        lines.append(f"!! {state.alert}")
    if state.classes:
        scores = state.scores if len(state.scores) == len(state.classes) else [0.0] * len(
            state.classes)
        probs = _as_probabilities(scores)
        if probs is not None:  # log-probabilities: show probabilities on a 0..1 axis
            scores, lo, hi, title = probs, 0.0, 1.0, "probabilities"
        else:
            lo = min(0.0, min(scores))
            hi = max(max(scores), state.threshold or 0.0, 1e-9)
            title = "scores"
        thr = "" if state.threshold is None else f"   ('|' = no-control threshold "\
            f"{state.threshold:.2f})"
        lines.append(title + thr)
        per_bar = probs is None and state.min_margin is not None and len(scores) > 1
        if per_bar:
            hi = max(hi, max(scores) + state.min_margin)
            lines[-1] += "   ('|' = score needed to win: best other + margin)"
        for i, (c, s) in enumerate(zip(state.classes, scores)):
            cmd = state.mapping.get(c, "" if c != "rest" else "no control")
            thr = state.threshold
            if per_bar:
                thr = max(v for j, v in enumerate(scores) if j != i) + state.min_margin
            lines.append(f"  {c:>8} {cmd:>10} [{_bar(s, lo, hi, thr)}] {s:6.3f}")
    if state.rule:
        m = "" if state.margin is None else f"  (margin now {state.margin:.3f})"
        lines.append(f"no-control rule: {state.rule}{m}")
    lines.append(f"decision: {state.decision}")
    lines.append(f"last command: {state.last_command}")
    pose = "-" if state.pose is None else (
        f"x={state.pose[0]:+.2f} m y={state.pose[1]:+.2f} m heading={state.pose[2]:+.0f} deg")
    lines.append(f"exoskeleton: {state.posture:<10} {pose}   last ACK: {state.last_ack}")
    if state.ch_names:
        cells = [f"{ch}:{state.bad_channels.get(ch, 'ok')}" for ch in state.ch_names]
        lines.append("signal: " + " ".join(cells))
    return lines


def render_plain(state: ViewState) -> str:
    """One-line form of the view (for pipes and logs)."""
    best = ""
    if state.classes and len(state.scores) == len(state.classes):
        i = max(range(len(state.scores)), key=state.scores.__getitem__)
        probs = _as_probabilities(state.scores)
        best = (f" top={state.classes[i]}:p={probs[i]:.2f}" if probs is not None
                else f" top={state.classes[i]}:{state.scores[i]:.3f}")
    bad = ",".join(f"{k}:{v}" for k, v in state.bad_channels.items()) or "ok"
    lat = "" if state.latency_ms is None else f" latency={state.latency_ms:.1f}ms"
    alert = f" !! {state.alert}" if state.alert else ""
    return (f"[{state.elapsed_s:6.1f}s]{alert} stream={state.stream_status}{best} "
            f"decision={state.decision!r} last={state.last_command!r} "
            f"posture={state.posture} ack={state.last_ack!r} signal={bad}{lat}")


class LiveView:
    """Draws a :class:`ViewState` to a terminal, refreshing in place.

    Parameters
    ----------
    out : file-like, default=sys.stdout
        Where to draw.
    tty : bool | None
        Force the terminal mode (True) or the plain-lines mode (False); None: detect.
    plain_period_s : float, default=2.0
        Seconds between two plain lines when not on a terminal.
    """

    def __init__(self, out: TextIO | None = None, *, tty: bool | None = None,
                 plain_period_s: float = 2.0) -> None:
        self.out = out if out is not None else sys.stdout
        if tty is None:
            isatty = getattr(self.out, "isatty", None)
            tty = bool(isatty and isatty())
        self.tty = tty
        self.plain_period_s = float(plain_period_s)
        self._drawn = 0
        self._last_plain = -float("inf")

    def draw(self, state: ViewState) -> None:
        """Redraw (terminal) or print a line if one is due (plain)."""
        if self.tty:
            lines = render_lines(state)
            buf = []
            if self._drawn:
                buf.append(f"\x1b[{self._drawn}F")  # cursor up to the first line drawn
            for line in lines:
                buf.append("\x1b[2K" + line + "\n")
            for _ in range(self._drawn - len(lines)):
                buf.append("\x1b[2K\n")
            extra = max(0, self._drawn - len(lines))
            if extra:
                buf.append(f"\x1b[{extra}F")
            self._drawn = len(lines)
            self.out.write("".join(buf))
            self.out.flush()
        else:
            now = time.monotonic()
            if now - self._last_plain >= self.plain_period_s:
                self._last_plain = now
                self.out.write(render_plain(state) + "\n")
                self.out.flush()

    def message(self, text: str) -> None:
        """Print a line above the view (the view is redrawn below it next time)."""
        if self.tty and self._drawn:
            self.out.write(f"\x1b[{self._drawn}F\x1b[J")
        self.out.write(text + "\n")
        self.out.flush()
        self._drawn = 0

    def close(self) -> None:
        """Leave the last view on screen and move below it."""
        self._drawn = 0
