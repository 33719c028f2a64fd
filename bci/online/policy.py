"""The decision policy: turn per-window decoder scores into rare, deliberate commands.

For every target ``k`` a window gives the evidence ``e_k = s_k - max_{j != k} s_j``: how far
the target's score lies above its strongest competitor, the no-control (rest) class included.
With a decoder whose scores are log-posteriors (``ress-fbcca``) this is the log-posterior
ratio of the target against the runner-up. The policy accumulates it as a sequential test:

- each window adds ``min(e_k, clip) - drift`` to the target's evidence; the evidence is the
  largest sum over any run of recent windows ending now and no longer than ``horizon_s``
  (evidence older than that never counts, and a run below zero is dropped, as in a CUSUM);
- the target whose evidence first reaches ``threshold`` is committed;
- after a commit all evidence is cleared and nothing is committed for ``refractory_s``;
- the committed target is *latched*: it is not committed again until the decoder has stopped
  favouring it (its evidence below half the threshold) for ``release_s`` without
  interruption, because a user keeps looking at the old light until the next cue; its
  evidence then starts afresh. ``release_s = 0`` disables latching.

``threshold`` is what the false-activation budget sets: calibration
(:func:`calibration.selection.choose_threshold`) raises it until commands during the
calibration data's rest trials, scored out of fold, stay within the budget (commands per
minute of rest). ``drift`` and ``clip`` are stored as absolute values but chosen as fractions
of the threshold, so the policy does not depend on the scale of a decoder's scores.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bci._check import check_range, check_type
from bci.labels import REST_LABEL, is_rest

# Reasons a step gives (also the ``Decision.reason`` vocabulary of the online loop).
COMMITTED = "committed"
REASONS = (
    COMMITTED,
    "rest",  # the rest (no-control) class has the top score and no target has evidence
    "evidence",  # evidence for a target is accumulating but below the threshold
    "refractory",  # a command was committed less than refractory_s ago
    "latched",  # the top class is the last command, not released yet
    "unhealthy",  # the window's signal health is bad: evidence cleared
    "decoder_error",  # set by the online loop
    "behind",  # set by the online loop
    "stalled",  # set by the online loop
)

#: Parameters of :class:`DecisionPolicy` (besides ``classes`` and ``rest_label``).
PARAMS = ("threshold", "drift", "clip", "horizon_s", "refractory_s", "release_s")
#: Those of :data:`PARAMS` that are durations (seconds of signal).
DURATIONS = ("horizon_s", "refractory_s", "release_s")


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
    evidence : float
        The largest accumulated evidence of any target after this window (0 when cleared).
    """

    outcome: str | None
    winner: str | None
    reason: str
    evidence: float = 0.0


class _Accumulator:
    """Largest sum of ``x`` over runs ending now within ``horizon`` (a sliding CUSUM).

    With cumulative sums ``C``, the evidence is ``C_t - min(C_u)`` over the run starts ``u``
    inside the horizon (``C`` at the start included, so an empty run gives 0); a monotone
    deque keeps that minimum in amortised O(1).
    """

    __slots__ = ("cum", "mins")

    def __init__(self) -> None:
        self.cum = 0.0
        self.mins: deque[tuple[float, float]] = deque()  # (time, cumulative sum), increasing

    def clear(self) -> None:
        self.cum = 0.0
        self.mins.clear()

    def add(self, t: float, x: float, horizon: float) -> float:
        # the run may start just before this window: its start value is the previous sum
        c0 = self.cum
        while self.mins and self.mins[-1][1] >= c0:
            self.mins.pop()
        self.mins.append((t, c0))
        while self.mins and self.mins[0][0] < t - horizon + 1e-9:
            self.mins.popleft()
        self.cum = c0 + x
        return max(0.0, self.cum - self.mins[0][1])


class DecisionPolicy:
    """Sequential evidence test per target, with refractory period and latching.

    Parameters
    ----------
    classes : sequence of str
        Class labels, in the order of the score columns (the decoder's classes as labels,
        :func:`bci.labels.class_labels`).
    rest_label : str, default="rest"
        The no-control class (never committed).
    threshold : float, default=1.0
        Evidence a target must accumulate to be committed (set by calibration from the
        false-activation budget).
    drift : float, default=0.0
        Subtracted from every window's evidence (>= 0): weak, sustained evidence never adds
        up to a command.
    clip : float | None, default=None
        Largest evidence one window can add (None: no limit), so a single strong window
        cannot commit alone.
    horizon_s : float, default=3.0
        Evidence older than this (s) no longer counts.
    refractory_s : float, default=1.0
        Seconds after a commit during which nothing is committed.
    release_s : float, default=1.0
        Seconds the decoder must stop favouring the last command (its evidence below half the
        threshold) before it can be committed again (0: no latching).

    Notes
    -----
    Call :meth:`update` once per window with the window's time (seconds, any monotonic
    clock) and its scores.
    """

    def __init__(
        self,
        classes: Sequence[str],
        *,
        rest_label: str = REST_LABEL,
        threshold: float = 1.0,
        drift: float = 0.0,
        clip: float | None = None,
        horizon_s: float = 3.0,
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
        self.threshold = check_range(threshold, "threshold", 0.0, low_inclusive=False)
        self.drift = check_range(drift, "drift", 0.0)
        if clip is not None:
            clip = check_range(clip, "clip", 0.0, low_inclusive=False)
        self.clip = clip
        self.horizon_s = check_range(horizon_s, "horizon_s", 0.0, low_inclusive=False)
        self.refractory_s = check_range(refractory_s, "refractory_s", 0.0)
        self.release_s = check_range(release_s, "release_s", 0.0)
        self._rest_idx = next(
            (i for i, c in enumerate(classes) if c == rest_label or is_rest(c)), -1
        )
        self._targets = [i for i in range(len(classes)) if i != self._rest_idx]
        if not self._targets:
            raise ValueError(f"'classes' {classes!r} hold no target (only the rest class).")
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget all evidence, the refractory period and the latch."""
        self._acc = {k: _Accumulator() for k in self._targets}
        self._last_commit_t = -np.inf
        self._latched = -1  # class index of the latched command (-1: none)
        self._away_since: float | None = None  # when the decoder stopped favouring it

    @property
    def latched(self) -> str | None:
        """The command currently latched (not re-issued until released), or None."""
        return self.classes[self._latched] if self._latched >= 0 else None

    def _clear(self) -> None:
        for acc in self._acc.values():
            acc.clear()

    # ------------------------------------------------------------------ update
    def update(
        self, t: float, scores: np.ndarray | None, *, healthy: bool = True
    ) -> PolicyResult:
        """Feed one window; return the outcome.

        Parameters
        ----------
        t : float
            Time of the window (seconds; e.g. its last sample's timestamp).
        scores : ndarray, shape (n_classes,) | None
            Decoder scores in ``classes`` order (higher = more likely); None with
            ``healthy=False``.
        healthy : bool, default=True
            False when the window's signal health is bad: no control, evidence cleared.

        Returns
        -------
        result : PolicyResult
        """
        if not healthy:
            self._clear()
            self._away(t, favoured=False)
            return PolicyResult(None, None, "unhealthy")
        s = [float(v) for v in scores]
        if len(s) != len(self.classes):
            raise ValueError(
                f"Expected {len(self.classes)} scores (one per class {self.classes}), "
                f"got {len(s)}."
            )
        top = max(range(len(s)), key=s.__getitem__)
        # evidence of each target against its strongest competitor
        order = sorted(range(len(s)), key=s.__getitem__, reverse=True)
        first, second = order[0], (order[1] if len(order) > 1 else order[0])
        best_k, best_a = -1, 0.0
        for k in self._targets:
            e = s[k] - s[second if k == first else first] if len(s) > 1 else s[k]
            x = (e if self.clip is None else min(e, self.clip)) - self.drift
            a = self._acc[k].add(t, x, self.horizon_s)
            if k == self._latched:
                # the decoder still favours the last command while its evidence stays above
                # half the threshold; once released, its evidence starts afresh
                self._away(t, favoured=a >= 0.5 * self.threshold)
                if k == self._latched:
                    continue
                self._acc[k].clear()
                a = 0.0
            if a > best_a:
                best_k, best_a = k, a
        winner = self.classes[top]
        if best_k < 0 or best_a < self.threshold:
            if top == self._latched:
                reason = "latched"
            elif top == self._rest_idx and best_a <= 0:
                reason = "rest"
            else:
                reason = "evidence"
            return PolicyResult(None, winner, reason, best_a)
        if t - self._last_commit_t < self.refractory_s:
            return PolicyResult(None, winner, "refractory", best_a)
        self._last_commit_t = t
        self._latched = best_k if self.release_s > 0 else -1
        self._away_since = None
        self._clear()
        return PolicyResult(self.classes[best_k], winner, COMMITTED, best_a)

    def _away(self, t: float, *, favoured: bool) -> None:
        """Track how long the decoder has not favoured the latched command; release it."""
        if self._latched < 0:
            return
        if favoured:
            self._away_since = None
            return
        if t != t:  # no usable time (NaN)
            return
        if self._away_since is None:
            self._away_since = t
        if t - self._away_since >= self.release_s:
            self._latched = -1
            self._away_since = None

    def replay(self, t: np.ndarray, scores: np.ndarray) -> list[tuple[float, str]]:
        """Run a fresh copy of the policy over consecutive windows; return the commits.

        Parameters
        ----------
        t : ndarray, shape (n_windows,)
            Window times (s).
        scores : ndarray, shape (n_windows, n_classes)

        Returns
        -------
        commits : list of (float, str)
            Time and label of every committed target.
        """
        pol = DecisionPolicy.from_dict(self.to_dict())
        out = []
        for ti, row in zip(np.asarray(t, float).tolist(), np.asarray(scores, float)):
            res = pol.update(ti, row)
            if res.outcome is not None:
                out.append((ti, res.outcome))
        return out

    def evidence_trace(self, t: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """The evidence this policy would hold at each window if it never committed.

        For every window: the largest sum of ``min(e_k, clip) - drift`` of any target over a
        non-empty run of windows ending there and starting within ``horizon_s`` (unlike
        :meth:`update`, not floored at zero, so a stretch that never favours a target keeps
        its spread). The policy commits exactly when this first reaches ``threshold``
        (before refractory and latching). A row with a non-finite score clears the evidence
        (as an unhealthy window does) and gives ``-inf``.

        Parameters
        ----------
        t : ndarray, shape (n_windows,)
            Window times (s), increasing.
        scores : ndarray, shape (n_windows, n_classes)

        Returns
        -------
        evidence : ndarray, shape (n_windows,)
        """
        t = np.asarray(t, float)
        s = np.asarray(scores, float)
        if s.ndim != 2 or s.shape[1] != len(self.classes) or len(t) != len(s):
            raise ValueError(f"Expected scores of shape (n_windows, {len(self.classes)}) and "
                             f"one time per window, got {s.shape} and {t.shape}.")
        n = len(t)
        out = np.full(n, -np.inf)
        if n == 0:
            return out
        ok = np.isfinite(s).all(axis=1)
        if len(self.classes) > 1:
            srt = np.sort(np.where(ok[:, None], s, 0.0), axis=1)
            top = np.argmax(np.where(ok[:, None], s, 0.0), axis=1)
            cols = np.arange(s.shape[1])[None, :]
            comp = np.where(cols == top[:, None], srt[:, -2:-1], srt[:, -1:])
            e = s - comp
        else:
            e = s.copy()
        x = (e if self.clip is None else np.minimum(e, self.clip)) - self.drift
        tl = t.tolist()
        for k in self._targets:
            xk = x[:, k].tolist()
            cum, mins = 0.0, deque()
            best = out  # running maximum over targets, in place
            for i in range(n):
                if not ok[i]:
                    cum, mins = 0.0, deque()
                    continue
                c0 = cum
                while mins and mins[-1][1] >= c0:
                    mins.pop()
                mins.append((tl[i], c0))
                while mins[0][0] < tl[i] - self.horizon_s + 1e-9:
                    mins.popleft()
                cum = c0 + xk[i]
                v = cum - mins[0][1]
                if v > best[i]:
                    best[i] = v
        return out

    # ------------------------------------------------------------------ serialization
    def to_dict(self) -> dict:
        """Plain-JSON parameters (for subject profiles and session configs)."""
        return {
            "classes": list(self.classes),
            "rest_label": self.rest_label,
            "threshold": self.threshold,
            "drift": self.drift,
            "clip": self.clip,
            "horizon_s": self.horizon_s,
            "refractory_s": self.refractory_s,
            "release_s": self.release_s,
        }

    def for_speed(self, speed: float) -> DecisionPolicy:
        """A new policy, with this one's parameters, for windows of a source played ``speed``
        times faster than real time.

        The window times given to :meth:`update` are then LSL time stamps that advance
        ``1 / speed`` s per second of signal, so the :data:`DURATIONS` (seconds of signal)
        are divided by ``speed``; the rest is unchanged.
        """
        speed = check_range(speed, "speed", 0.0, low_inclusive=False)
        d = self.to_dict()
        d.update({k: d[k] / speed for k in DURATIONS})
        return type(self).from_dict(d)

    @classmethod
    def from_dict(cls, d: dict) -> DecisionPolicy:
        """Inverse of :meth:`to_dict` (unknown keys raise ValueError)."""
        allowed = {"classes", "rest_label", *PARAMS}
        unknown = set(d) - allowed
        if unknown:
            raise ValueError(
                f"Unknown decision policy key(s) {sorted(unknown)}; allowed keys are "
                f"{sorted(allowed)}."
            )
        if "classes" not in d:
            raise ValueError("A decision policy needs its 'classes' (the decoder's classes).")
        kw = dict(d)
        classes = kw.pop("classes")
        return cls(classes, **kw)

    def __repr__(self) -> str:
        return (
            f"DecisionPolicy(classes={self.classes!r}, threshold={self.threshold:.4g}, "
            f"drift={self.drift:.4g}, clip={self.clip}, horizon_s={self.horizon_s}, "
            f"refractory_s={self.refractory_s}, release_s={self.release_s})"
        )
