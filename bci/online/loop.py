"""The online decoding loop: window -> decoder scores -> decision policy -> Decision."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np
import pylsl

from bci._check import check_range
from bci._logging import logger
from bci.acquisition.window import SignalHealth
from bci.labels import class_labels
from bci.online.decision import Decision
from bci.online.policy import DecisionPolicy

_STALLED = SignalHealth(stalled=True)
_LATENCY_RING = 4096


class OnlineLoop:
    """Score the latest window every step and turn the scores into decisions.

    Parameters
    ----------
    source : object
        Anything with ``latest_window(n_samples) -> EEGWindow | None``, ``sfreq`` and
        ``ch_names``: :class:`bci.acquisition.EEGStream` live, or
        :class:`bci.online.RecordingSource` for pseudo-online replay. When the source has a
        ``clock()`` method (a virtual clock) it is used instead of ``pylsl.local_clock``.
    decoder : estimator
        A fitted decoder with ``decision_function(X)`` and ``classes_`` (columns follow it).
        It receives raw windows ``(1, n_channels, n_samples)`` and filters them itself.
    policy : DecisionPolicy
        Policy whose ``classes`` equal the decoder's classes as labels (see :func:`class_labels`).
    window_s : float, default=1.0
        Window length, seconds.
    step_s : float, default=0.1
        Time between steps in :meth:`run`, seconds.
    on_decision : callable | None, default=None
        Called with every :class:`Decision` (e.g. the safety supervisor).
    outlet : DecisionsOutlet | None, default=None
        LSL decisions outlet; every decision is pushed to it.
    log : SessionLog | None, default=None
        Session log; every decision (and decoder errors) is written to it.
    max_lag_s : float, default=0.5
        When the window's last sample is older than this, or processing a step takes longer,
        the decision is no control with reason ``"behind"``.
    prefilter : callable | None, default=None
        Optional ``f(data) -> data`` applied to each window's data before the decoder
        (e.g. a causal filter with carried state).

    Attributes
    ----------
    classes : tuple of str
        Class labels, in score order.
    counts : dict
        Steps per reason (``"committed"``, ``"behind"``, ``"decoder_error"``, ...).
    """

    def __init__(
        self,
        source,
        decoder,
        policy: DecisionPolicy,
        *,
        window_s: float = 1.0,
        step_s: float = 0.1,
        on_decision: Callable[[Decision], None] | None = None,
        outlet=None,
        log=None,
        max_lag_s: float = 0.5,
        prefilter: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        for attr in ("latest_window", "sfreq", "ch_names"):
            if not hasattr(source, attr):
                raise TypeError(
                    f"'source' must provide latest_window(), sfreq and ch_names; "
                    f"{type(source).__name__} has no {attr!r}."
                )
        if not hasattr(decoder, "decision_function"):
            raise TypeError(
                f"'decoder' must have a decision_function method, got {type(decoder).__name__}."
            )
        if not hasattr(decoder, "classes_"):
            raise RuntimeError("The decoder is not fitted (no classes_): call fit() first.")
        self.classes = class_labels(decoder.classes_)
        if tuple(policy.classes) != self.classes:
            raise ValueError(
                f"The policy's classes {tuple(policy.classes)} differ from the decoder's "
                f"{self.classes}: build the policy with DecisionPolicy(loop classes)."
            )
        self.source = source
        self.decoder = decoder
        self.policy = policy
        self.window_s = check_range(window_s, "window_s", 0.0, low_inclusive=False)
        self.step_s = check_range(step_s, "step_s", 0.0, low_inclusive=False)
        self.max_lag_s = check_range(max_lag_s, "max_lag_s", 0.0, low_inclusive=False)
        self.n_samples = max(1, int(round(self.window_s * float(source.sfreq))))
        self.on_decision = on_decision
        self.outlet = outlet
        self.log = log
        self.prefilter = prefilter
        clock = getattr(source, "clock", None)
        self.clock: Callable[[], float] = clock if callable(clock) else pylsl.local_clock
        self.counts: dict[str, int] = {}
        self.latencies = np.zeros(_LATENCY_RING)
        self.n_steps = 0
        self.n_overruns = 0
        self._empty: tuple[float, ...] = ()

    # ------------------------------------------------------------------ one step
    def step(self) -> Decision:
        """Take the latest window, decode it, apply the policy, emit and return the decision."""
        t0 = time.perf_counter()
        window = self.source.latest_window(self.n_samples)
        error: BaseException | None = None
        scores: tuple[float, ...] = self._empty
        outcome = winner = None
        evidence = 0.0
        if window is None or window.health.stalled:
            health = window.health if window is not None else _STALLED
            window_end = window.t_end if window is not None else float("nan")
            reason = "stalled"
            # Policy time must be finite (the latch's release timer): use the clock if blind.
            self.policy.update(window_end if window is not None else self.clock(), None,
                               healthy=False)
        else:
            health = window.health
            window_end = window.t_end
            if self.clock() - window_end > self.max_lag_s:
                reason = "behind"
                self.policy.update(window_end, None, healthy=False)
            elif not health.ok:
                reason = self.policy.update(window_end, None, healthy=False).reason
            else:
                data = window.data if self.prefilter is None else self.prefilter(window.data)
                try:
                    raw_scores = np.asarray(self.decoder.decision_function(data[None])[0], float)
                    if raw_scores.shape != (len(self.classes),) or not np.all(
                        np.isfinite(raw_scores)
                    ):
                        raise ValueError(
                            f"decoder returned scores {raw_scores!r}; expected "
                            f"{len(self.classes)} finite values"
                        )
                except Exception as exc:  # noqa: BLE001 - any decoder failure is an outcome
                    error = exc
                    reason = "decoder_error"
                    self.policy.update(window_end, None, healthy=False)
                else:
                    scores = tuple(raw_scores.tolist())
                    if time.perf_counter() - t0 > self.max_lag_s:
                        reason = "behind"
                        self.policy.update(window_end, None, healthy=False)
                    else:
                        res = self.policy.update(window_end, raw_scores)
                        outcome, winner, reason = res.outcome, res.winner, res.reason
                        evidence = res.evidence
        latency = time.perf_counter() - t0
        decision = Decision(
            timestamp=self.clock(),
            window_end=window_end,
            classes=self.classes,
            scores=scores,
            outcome=outcome,
            winner=winner,
            reason=reason,
            health=health,
            latency_s=latency,
            evidence=evidence,
        )
        self.latencies[self.n_steps % _LATENCY_RING] = latency
        self.n_steps += 1
        self.counts[reason] = self.counts.get(reason, 0) + 1
        if error is not None:
            logger.error("Decoder failed on the window ending at %.3f: %r", window_end, error)
        self._emit(decision, error)
        return decision

    def _emit(self, decision: Decision, error: BaseException | None) -> None:
        if self.log is not None:
            try:
                if error is None:
                    self.log.decision(decision)
                else:
                    self.log.decision(decision, error=repr(error))
            except Exception:  # noqa: BLE001 - a failing log must not stop decoding
                logger.exception("Writing the session log failed")
        if self.outlet is not None:
            try:
                self.outlet.push(decision)
            except Exception:  # noqa: BLE001
                logger.exception("Publishing the decision on LSL failed")
        if self.on_decision is not None:
            self.on_decision(decision)

    # ------------------------------------------------------------------ paced run
    def run(self, stop_event: threading.Event, duration: float | None = None) -> int:
        """Step every ``step_s`` on a monotonic clock until ``stop_event`` is set.

        Parameters
        ----------
        stop_event : threading.Event
            Set it (from another thread or a signal handler) to stop.
        duration : float | None, default=None
            Stop after this many seconds.

        Returns
        -------
        n_steps : int
            Steps run.

        Notes
        -----
        When a step overruns its slot by more than ``max_lag_s`` the schedule is reset to
        now (missed steps are skipped, not caught up) and ``n_overruns`` is incremented.
        """
        start = time.monotonic()
        next_t = start
        n = 0
        while not stop_event.is_set():
            if duration is not None and time.monotonic() - start >= duration:
                break
            self.step()
            n += 1
            next_t += self.step_s
            delay = next_t - time.monotonic()
            if delay > 0:
                stop_event.wait(delay)
            elif -delay > self.max_lag_s:
                self.n_overruns += 1
                logger.warning("Online loop fell %.3f s behind its schedule", -delay)
                next_t = time.monotonic()
        return n

    def latency_stats(self) -> dict:
        """Median and 99th percentile of the step processing time (last 4096 steps), seconds."""
        n = min(self.n_steps, _LATENCY_RING)
        if n == 0:
            return {"n": 0, "median_s": float("nan"), "p99_s": float("nan")}
        lat = self.latencies[:n]
        return {
            "n": int(n),
            "median_s": float(np.median(lat)),
            "p99_s": float(np.percentile(lat, 99)),
        }

