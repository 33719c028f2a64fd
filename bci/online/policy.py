"""The decision policy: turn a stream of per-window decoder scores into rare, safe commands.

A target is committed only when it wins ``n_consecutive`` windows in a row, each with enough
evidence (margin between the top two scores, or probability). After a commit nothing is
committed for ``refractory_s``. Commands are *latched*: the committed target is not committed
again until the decoder has gone back to no-control (or to another target) for ``release_s``,
because a user keeps looking at the old light until the next cue.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bci._check import check_range, check_type, ensure_int
from bci.labels import REST_LABEL, is_rest

# Reasons a step gives (also the ``Decision.reason`` vocabulary of the online loop).
COMMITTED = "committed"
REASONS = (
    COMMITTED,
    "rest",  # the top class is the rest (no-control) class
    "margin",  # not enough evidence (margin / probability below threshold)
    "dwell",  # evidence, but fewer than n_consecutive windows in a row so far
    "refractory",  # a command was committed less than refractory_s ago
    "latched",  # the same command was committed and has not been released yet
    "unhealthy",  # the window's signal health is bad
    "decoder_error",  # set by the online loop
    "behind",  # set by the online loop
    "stalled",  # set by the online loop
)


@dataclass(frozen=True)
class PolicyResult:
    """What the policy made of one window.

    Attributes
    ----------
    outcome : str | None
        The committed target, or None (no control).
    winner : str | None
        The top-scoring class of the window.
    reason : str
        Why (one of :data:`REASONS`).
    """

    outcome: str | None
    winner: str | None
    reason: str


def _evidence(scores: np.ndarray) -> tuple[int, float, float]:
    """Return (index of top score, top minus second score, softmax-free top score)."""
    if scores.shape[0] == 1:
        return 0, float("inf"), float(scores[0])
    i2, i1 = np.argpartition(scores, -2)[-2:]
    if scores[i2] > scores[i1]:
        i1, i2 = i2, i1
    return int(i1), float(scores[i1] - scores[i2]), float(scores[i1])


class DecisionPolicy:
    """Dwell / margin / refractory / latching policy over per-window decoder scores.

    Parameters
    ----------
    classes : sequence of str
        Class labels, in the order of the score columns (the decoder's ``classes_``).
    rest_label : str, default="rest"
        The no-control class; a window it wins gives no control.
    n_consecutive : int, default=3
        Windows in a row the same target must win (each with enough evidence) to commit.
    min_margin : float, default=0.0
        Minimum top-minus-second score for a window to count as evidence.
    min_probability : float | None, default=None
        When set, scores are treated as probabilities and the top one must reach this value
        (in addition to ``min_margin``).
    refractory_s : float, default=1.0
        Seconds after a commit during which nothing is committed.
    release_s : float, default=1.0
        Seconds the decoder must stay away from the last command (no evidence for it) before
        that same command can be committed again; 0 disables latching (the same command
        repeats every ``refractory_s`` while the decoder stays on it).

    Notes
    -----
    Call :meth:`update` once per window with the window's time (seconds, any monotonic
    clock) and its scores. :meth:`fit_thresholds` chooses ``min_margin`` on calibration scores.
    """

    def __init__(
        self,
        classes: Sequence[str],
        *,
        rest_label: str = REST_LABEL,
        n_consecutive: int = 3,
        min_margin: float = 0.0,
        min_probability: float | None = None,
        refractory_s: float = 1.0,
        release_s: float = 1.0,
    ) -> None:
        classes = tuple(str(c) for c in classes)
        if not classes:
            raise ValueError("'classes' must hold at least one class label, got an empty list.")
        if len(set(classes)) != len(classes):
            raise ValueError(f"'classes' must be unique, got {classes!r} instead.")
        self.classes = classes
        self.rest_label = check_type(rest_label, str, "rest_label")
        self.n_consecutive = ensure_int(n_consecutive, "n_consecutive")
        if self.n_consecutive < 1:
            raise ValueError(f"'n_consecutive' must be >= 1, got {n_consecutive!r} instead.")
        self.min_margin = check_range(min_margin, "min_margin", 0.0)
        if min_probability is not None:
            min_probability = check_range(min_probability, "min_probability", 0.0, 1.0)
        self.min_probability = min_probability
        self.refractory_s = check_range(refractory_s, "refractory_s", 0.0)
        self.release_s = check_range(release_s, "release_s", 0.0)
        self._rest_idx = next(
            (i for i, c in enumerate(classes) if c == rest_label or is_rest(c)), -1
        )
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget all evidence, the refractory period and the latch."""
        self._run_idx = -1  # class index of the current run of evidence
        self._run_len = 0
        self._last_commit_t = -np.inf
        self._latched = -1  # class index of the latched command (-1: none)
        self._away_since: float | None = None  # when the decoder left the latched command

    @property
    def latched(self) -> str | None:
        """The command currently latched (not re-issued until released), or None."""
        return self.classes[self._latched] if self._latched >= 0 else None

    # ------------------------------------------------------------------ update
    def update(
        self, t: float, scores: np.ndarray | None, *, healthy: bool = True
    ) -> PolicyResult:
        """Feed one window; return the outcome.

        Parameters
        ----------
        t : float
            Time of the window (seconds; e.g. its last sample's timestamp).
        scores : ndarray, shape (n_classes,)
            Decoder scores in ``classes`` order (higher = more likely).
        healthy : bool, default=True
            False when the window's signal health is bad: no control, evidence reset.

        Returns
        -------
        result : PolicyResult
        """
        if not healthy:
            self._run_idx, self._run_len = -1, 0
            self._leave_latch(t)
            return PolicyResult(None, None, "unhealthy")
        if scores.shape[0] != len(self.classes):
            raise ValueError(
                f"Expected {len(self.classes)} scores (one per class {self.classes}), "
                f"got {scores.shape[0]}."
            )
        idx, margin, top = _evidence(scores)
        winner = self.classes[idx]
        strong = margin >= self.min_margin and (
            self.min_probability is None or top >= self.min_probability
        )
        if idx == self._rest_idx or not strong:
            self._run_idx, self._run_len = -1, 0
            self._leave_latch(t)
            return PolicyResult(None, winner, "rest" if idx == self._rest_idx else "margin")
        # Evidence for a target.
        if idx != self._latched:
            self._leave_latch(t)
        else:
            self._away_since = None
        if idx == self._run_idx:
            self._run_len += 1
        else:
            self._run_idx, self._run_len = idx, 1
        if self._run_len < self.n_consecutive:
            return PolicyResult(None, winner, "dwell")
        if t - self._last_commit_t < self.refractory_s:
            return PolicyResult(None, winner, "refractory")
        if idx == self._latched:
            return PolicyResult(None, winner, "latched")
        self._last_commit_t = t
        self._latched = idx if self.release_s > 0 else -1
        self._away_since = None
        self._run_idx, self._run_len = -1, 0
        return PolicyResult(winner, winner, COMMITTED)

    def _leave_latch(self, t: float) -> None:
        """The decoder is not on the latched command: release it after ``release_s``."""
        if self._latched < 0 or t != t:  # no latch, or no usable time (NaN)
            return
        if self._away_since is None:
            self._away_since = t
        if t - self._away_since >= self.release_s:
            self._latched = -1
            self._away_since = None

    # ------------------------------------------------------------------ calibration
    def fit_thresholds(
        self,
        scores: np.ndarray,
        labels: Sequence[str | None],
        *,
        step_s: float,
        max_false_per_min: float = 0.5,
        candidates: int = 60,
    ) -> DecisionPolicy:
        """Choose ``min_margin`` on calibration scores to hold a false-activation target.

        The policy is replayed over the calibration windows for a range of margins (quantiles
        of the margins seen on the windows); the smallest margin whose commands during rest
        stay at or under ``max_false_per_min`` is kept. Among margins that meet it, the one
        with the most target segments whose first command is right, minus segments with a
        wrong command, wins; ties go to the smallest margin (fastest commands).

        Parameters
        ----------
        scores : ndarray, shape (n_windows, n_classes)
            Consecutive windows' scores, ``step_s`` apart, in ``classes`` order.
        labels : sequence of str | None, length n_windows
            The cued trial each window's last sample falls in (a target label or the rest
            label), or None for windows that count neither way (e.g. before the first cue).
            A run of equal labels is one trial: its first command must be its target;
            every command in a rest run is a false activation.
        step_s : float
            Time between windows, seconds.
        max_false_per_min : float, default=0.5
            Allowed commands per minute of rest windows.
        candidates : int, default=60
            Number of margin values tried.

        Returns
        -------
        self : DecisionPolicy
            With ``min_margin`` set.
        """
        scores = np.asarray(scores, dtype=float)
        if scores.ndim != 2 or scores.shape[1] != len(self.classes):
            raise ValueError(
                f"'scores' must have shape (n_windows, {len(self.classes)}), got {scores.shape}."
            )
        labels = list(labels)
        if len(labels) != scores.shape[0]:
            raise ValueError(
                f"'labels' has {len(labels)} entries but 'scores' has {scores.shape[0]} windows."
            )
        step_s = check_range(step_s, "step_s", 0.0, low_inclusive=False)
        rest_windows = sum(1 for lab in labels if lab is not None and is_rest(lab))
        if rest_windows == 0:
            raise ValueError(
                "Cannot choose thresholds without rest windows: 'labels' must contain "
                f"{self.rest_label!r} for windows in which the user attended nothing."
            )
        srt = np.sort(scores, axis=1)
        margins = srt[:, -1] - srt[:, -2] if scores.shape[1] > 1 else srt[:, -1]
        grid = np.unique(np.quantile(margins, np.linspace(0.0, 1.0, candidates)))
        grid = np.concatenate([[0.0], grid, [margins.max() * 1.01 + 1e-12]])
        rest_min = rest_windows * step_s / 60.0
        best: tuple[float, float] | None = None  # (hits, -margin)
        chosen = float(grid[-1])
        for m in grid:
            fa, hits, wrong = self._simulate(scores, labels, step_s, float(m))
            if fa / rest_min > max_false_per_min:
                continue
            key = (hits - wrong, -float(m))
            if best is None or key > best:
                best, chosen = key, float(m)
        self.min_margin = chosen
        self.reset()
        return self

    def _simulate(
        self, scores: np.ndarray, labels: list, step_s: float, margin: float
    ) -> tuple[int, int, int]:
        """Replay windows with ``margin``.

        Returns (commands during rest, target segments whose first command is right, target
        segments with a wrong command), scored as the pseudo-online evaluation scores trials.
        """
        saved = self.min_margin
        self.min_margin = margin
        self.reset()
        fa = 0
        first: dict[int, bool] = {}
        wrong: set[int] = set()
        seg = -1
        prev = object()
        for i, (row, lab) in enumerate(zip(scores, labels)):
            if lab != prev:
                seg += 1
                prev = lab
            res = self.update(i * step_s, row)
            if res.outcome is None or lab is None:
                continue
            if is_rest(lab):
                fa += 1
                continue
            first.setdefault(seg, res.outcome == lab)
            if res.outcome != lab:
                wrong.add(seg)
        self.min_margin = saved
        self.reset()
        return fa, sum(first.values()), len(wrong)

    # ------------------------------------------------------------------ serialization
    def to_dict(self) -> dict:
        """Plain-JSON parameters (for subject profiles and session configs)."""
        return {
            "classes": list(self.classes),
            "rest_label": self.rest_label,
            "n_consecutive": self.n_consecutive,
            "min_margin": self.min_margin,
            "min_probability": self.min_probability,
            "refractory_s": self.refractory_s,
            "release_s": self.release_s,
        }

    @classmethod
    def from_dict(cls, d: dict) -> DecisionPolicy:
        """Inverse of :meth:`to_dict` (unknown keys raise ValueError)."""
        allowed = set(cls(["a"]).to_dict())
        unknown = set(d) - allowed
        if unknown:
            raise ValueError(
                f"Unknown decision policy key(s) {sorted(unknown)}; allowed keys are "
                f"{sorted(allowed)}."
            )
        if "classes" not in d:
            raise ValueError("A decision policy needs its 'classes' (the decoder's classes_).")
        kw = dict(d)
        classes = kw.pop("classes")
        return cls(classes, **kw)

    def __repr__(self) -> str:
        return (
            f"DecisionPolicy(classes={self.classes!r}, n_consecutive={self.n_consecutive}, "
            f"min_margin={self.min_margin:.4g}, min_probability={self.min_probability}, "
            f"refractory_s={self.refractory_s}, release_s={self.release_s})"
        )
