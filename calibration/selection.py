"""Model selection on calibration data: decoder x window, then the no-control threshold.

All on recordings loaded by :func:`bci.datasets.load_recording`, through the evaluation
harness (:mod:`bci.evaluation.harness`), so calibration cuts, folds and scores exactly as
the evaluation does:

- :func:`cross_validate`: stratified k-fold accuracy and ITR of each candidate decoder and
  window length on the cued windows (rest included when the recording has rest trials);
- :func:`choose_threshold`: THE threshold procedure of the project. It replays the decision
  policy over out-of-fold scores of the windows the online loop would decode
  (:func:`bci.evaluation.harness.out_of_fold_streams`) and raises the evidence threshold
  until the commands during rest trials stay within the false-activation budget;
- :func:`replay`: the commands a policy gives on score streams, scored per cued trial by
  :mod:`bci.evaluation.scoring`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from bci.decoders import METHODS, make_decoder
from bci.evaluation.harness import ScoreStream, Trials, trial_folds
from bci.evaluation.metrics import itr_bits_per_min
from bci.evaluation.phase import phase_locking_analysis
from bci.evaluation.scoring import Selection, pool, score_trials, totals, trial_ends
from bci.labels import class_labels, is_rest
from bci.online.policy import DecisionPolicy
from calibration.errors import CalibrationError

logger = logging.getLogger("calibration")

#: Defaults of the evidence policy, chosen leave-one-subject-out on the dev recordings
#: (docs/evaluation.md, scripts/loso_defaults.py). ``drift`` and ``clip`` are fractions of
#: the threshold; ``margin`` multiplies the threshold that just holds the budget on the
#: calibration data (a calibration holds about a minute of rest, too little to set it).
POLICY_DEFAULTS = {
    "drift": 0.0,
    "clip": 0.5,
    "horizon_s": 6.0,
    "refractory_s": 1.0,
    "release_s": 3.0,
    "margin": 1.25,
}
#: Commands per minute of rest the threshold allows by default.
MAX_FALSE_PER_MIN = 0.5


def trials(raws, *, method: str, tmin: float, window_s: float, channels, classes) -> Trials:
    """The cued trials of the calibration recordings (with the method's training epochs)."""
    try:
        return Trials.build(list(raws), tmin=tmin, window_s=window_s, channels=channels,
                            classes=classes, train_span=METHODS[method].get("train_span"))
    except ValueError as exc:
        raise CalibrationError(
            f"No calibration trial of the classes {list(classes)} fits a {window_s:g} s window "
            f"starting {tmin:g} s after its cue ({exc}); record longer trials or use shorter "
            "windows.") from exc


def folds(y, n_folds: int, seed: int) -> np.ndarray:
    """:func:`bci.evaluation.harness.trial_folds` with a calibration error message."""
    try:
        return trial_folds(y, n_folds, seed)
    except ValueError:
        labels, counts = np.unique(np.asarray(y).astype(str), return_counts=True)
        raise CalibrationError(
            "Too few calibration trials to cross-validate ("
            + ", ".join(f"{lab}: {n}" for lab, n in zip(labels.tolist(), counts.tolist()))
            + "); record at least 2 trials per class (more is better).") from None


def decoder(method: str, *, sfreq: float, freqs):
    """The unfitted registry decoder."""
    return make_decoder(method, sfreq=sfreq, freqs=freqs)


def fit(method: str, tr: Trials, train_ids: np.ndarray, *, sfreq: float, freqs):
    """Fit ``method`` on the given trials; a fitting failure is a CalibrationError."""
    try:
        return tr.fit(decoder(method, sfreq=sfreq, freqs=freqs), train_ids)
    except (np.linalg.LinAlgError, ValueError) as exc:
        labels, counts = np.unique(tr.y[np.isin(tr.trial, train_ids)], return_counts=True)
        per_class = ", ".join(f"{lab} {n}" for lab, n in zip(labels, counts))
        raise CalibrationError(
            f"{method} cannot be fitted on these {tr.window_s:g} s calibration windows "
            f"({per_class}): {str(exc).rstrip('.')}. Record more trials per class, or choose "
            "other methods with --methods."
        ) from exc


def cross_validate(raws: Sequence, *, methods: Sequence[str], windows: Sequence[float],
                   freqs: Sequence[float], channels: Sequence[str], classes: Sequence[str],
                   tmin: float = 2.0, n_folds: int = 5, seed: int = 42,
                   gaze_shift_s: float = 0.5, notes: list[str] | None = None) -> list[dict]:
    """Cross-validated accuracy and ITR of each method x window on the cued windows.

    A candidate that cannot be fitted on the folds (e.g. too few trials for its covariance
    estimates) is left out with a line in ``notes``; when none can be fitted,
    :class:`~calibration.errors.CalibrationError` says why.

    Returns
    -------
    records : list of dict
        One per candidate: ``method, window_s, n_classes, accuracy, itr_bits_per_min,
        n_trials, n_folds``.
    """
    records: list[dict] = []
    failures: list[str] = []
    sfreq = float(raws[0].info["sfreq"])
    for w in windows:
        for m in methods:
            tr = trials(raws, method=m, tmin=tmin, window_s=w, channels=channels, classes=classes)
            fo = folds(tr.y, n_folds, seed)
            correct = 0
            try:
                for f in range(fo.max() + 1):
                    dec = fit(m, tr, tr.trial[fo != f], sfreq=sfreq, freqs=freqs)
                    pred = np.asarray(class_labels(dec.predict(tr.X[fo == f])))
                    correct += int(np.sum(pred == tr.y[fo == f]))
            except CalibrationError as exc:
                failures.append(f"{m} at {w:g} s left out: {exc}")
                logger.warning("%s", failures[-1])
                continue
            acc = correct / len(tr.y)
            records.append({
                "method": m, "window_s": float(w), "n_classes": len(classes),
                "accuracy": acc,
                "itr_bits_per_min": itr_bits_per_min(acc, len(classes), w, gaze_shift_s),
                "n_trials": int(len(tr.y)), "n_folds": int(fo.max() + 1),
            })
            logger.info("cv %s %.2f s: accuracy %.3f", m, w, acc)
    if notes is not None:
        notes.extend(failures)
    if not records:
        raise CalibrationError("No candidate decoder could be fitted on the calibration data: "
                               + " | ".join(failures))
    return records


# ---------------------------------------------------------------------- threshold
def replay(streams: Sequence[ScoreStream], policy: DecisionPolicy) -> dict:
    """Replay ``policy`` over score streams; score its commands per cued trial.

    Returns
    -------
    result : dict
        :func:`bci.evaluation.scoring.pool` of the streams (``false_activations_per_min``,
        ``hit_rate``, ``wrong_command_rate``, ``n_false_activations``, ``rest_minutes``, ...).
    """
    recs = []
    for st in streams:
        commits = policy.replay(st.t, st.scores)
        rows = score_trials([Selection(t, lab) for t, lab in commits], st.onsets, st.labels,
                            end_s=st.end_s)
        recs.append(totals(rows))
    return pool(recs)


def policy_for(classes, threshold: float, params: Mapping) -> DecisionPolicy:
    """The policy for ``threshold`` with ``drift`` and ``clip`` given as its fractions."""
    p = {**POLICY_DEFAULTS, **dict(params)}
    return DecisionPolicy(
        classes, threshold=threshold, drift=p["drift"] * threshold,
        clip=None if p["clip"] is None else p["clip"] * threshold, horizon_s=p["horizon_s"],
        refractory_s=p["refractory_s"], release_s=p["release_s"])


def choose_threshold(streams: Sequence[ScoreStream], *, max_false_per_min: float,
                     params: Mapping | None = None, rtol: float = 1e-3,
                     allow_no_rest: bool = False) -> tuple[DecisionPolicy, dict]:
    """The policy whose threshold holds the false-activation budget on calibration data.

    The threshold is the smallest for which the commands during the rest trials of the
    (out-of-fold) score streams stay at or under ``max_false_per_min`` per minute of rest
    (bisection in log scale down to a relative width ``rtol``; false activations fall as the
    threshold rises), times ``params["margin"]``.

    Parameters
    ----------
    streams : sequence of ScoreStream
        Out-of-fold scores of the calibration recordings.
    max_false_per_min : float
        The false-activation budget: commands per minute of rest.
    params : mapping | None
        Overrides of :data:`POLICY_DEFAULTS`.
    rtol : float, default=1e-3
        Relative precision of the threshold.
    allow_no_rest : bool, default=False
        Without rest trials no budget can be held: raise CalibrationError, or (True) take
        the lowest threshold (any target that leads for a moment commits).

    Returns
    -------
    policy : DecisionPolicy
    calibration : dict
        The replay of the chosen policy on the streams (:func:`replay`) plus
        ``threshold_at_budget`` (before the margin) and ``held`` (False when even a
        threshold above every window's evidence breaks the budget).
    """
    p = {**POLICY_DEFAULTS, **dict(params or {})}
    classes = streams[0].classes
    rest_min = sum(st.rest_minutes for st in streams)
    scale = max(float(np.max(np.abs(st.scores))) for st in streams) or 1.0
    lo, hi = math.log(scale * 1e-4), math.log(scale * 1e3)
    if rest_min <= 0 and allow_no_rest:
        pol = policy_for(classes, math.exp(lo), p)
        return pol, {**replay(streams, pol), "threshold_at_budget": math.exp(lo),
                     "held": False}
    if rest_min <= 0:
        raise CalibrationError(
            "The calibration data has no rest trials: the no-control threshold cannot be set "
            "for a false-activation budget. Record rest trials (the user looks at none of the "
            "lights).")
    # false activations depend only on the windows up to the end of the last rest trial
    upto = [_until_last_rest(st) for st in streams]

    def ok(h: float) -> bool:
        return replay(upto, policy_for(classes, h, p))["false_activations_per_min"] \
            <= max_false_per_min

    if ok(math.exp(lo)):
        hi = lo
    elif not ok(math.exp(hi)):  # commands during rest whatever the threshold
        lo = hi
    else:
        while hi - lo > math.log1p(rtol):
            mid = 0.5 * (lo + hi)
            if ok(math.exp(mid)):
                hi = mid
            else:
                lo = mid
    h0 = math.exp(hi)
    pol = policy_for(classes, h0 * p["margin"], p)
    rep = replay(streams, pol)
    rep["threshold_at_budget"] = h0
    rep["held"] = rep["false_activations_per_min"] <= max_false_per_min
    return pol, rep


def _until_last_rest(st: ScoreStream) -> ScoreStream:
    """The stream cut after its last rest trial (what its false activations depend on)."""
    ends = trial_ends(st.onsets, st.end_s)
    rest = [e for e, lab in zip(ends, st.labels) if is_rest(lab)]
    if not rest:
        return st
    keep = st.t < max(rest)
    return replace(st, scores=st.scores[keep], t=st.t[keep])


def threshold_curve(streams: Sequence[ScoreStream], threshold: float, params: Mapping | None,
                    n: int = 13) -> list[dict]:
    """False activations and hits on the streams for thresholds around ``threshold``."""
    p = {**POLICY_DEFAULTS, **dict(params or {})}
    out = []
    for h in threshold * np.geomspace(0.25, 4.0, n):
        r = replay(streams, policy_for(streams[0].classes, float(h), p))
        out.append({"threshold": float(h), "false_per_min": r["false_activations_per_min"],
                    "hit_rate": r["hit_rate"], "wrong_command_rate": r["wrong_command_rate"]})
    return out


# ---------------------------------------------------------------------- phase locking
#: Default candidates are pruned only when the data gives no evidence of phase locking at
#: this level (pooled Rayleigh test over the stimulus frequencies).
PHASE_LOCK_ALPHA = 0.05
@dataclass
class PhaseCheck:
    """Whether the calibration cues are phase-locked (see :func:`phase_check`).

    Attributes
    ----------
    locked : bool | None
        True: phase-locked; False: no evidence of phase locking; None: too few trials to
        tell (or the analysis could not run).
    itc : float
        Inter-trial coherence averaged over the stimulus frequencies (nan when unknown).
    chance : float
        Its value for random phases, ``1/sqrt(n_trials)`` averaged likewise.
    p_value : float
        Pooled Rayleigh test (nan when unknown).
    rows : list of dict
        :class:`bci.evaluation.phase.PhaseLockingReport` rows.
    """

    locked: bool | None
    itc: float = float("nan")
    chance: float = float("nan")
    p_value: float = float("nan")
    rows: list | None = None

    def to_dict(self) -> dict:
        """Plain-JSON form (stored in the profile's ``extra``)."""
        def num(v: float) -> float | None:
            return None if v != v else round(float(v), 4)

        return {"locked": self.locked, "itc": num(self.itc), "chance": num(self.chance),
                "p_value": num(self.p_value)}


def phase_check(raws: Sequence, *, tmin: float, window_s: float,
                channels: Sequence[str] | None = None) -> PhaseCheck:
    """Tell phase-locked cues (screen stimuli) from free-running lights on calibration data.

    Runs :func:`bci.evaluation.phase.phase_locking_analysis` on the cued windows and pools
    its per-frequency Rayleigh statistics ``n * itc**2`` (a sum of ``k`` of them follows a
    Gamma(k) law for random phases), which gives power with the few trials of a calibration.

    Parameters
    ----------
    raws : sequence of mne.io.Raw
        Calibration recordings with cue annotations.
    tmin, window_s : float
        The window analysed, seconds after each cue.
    channels : sequence of str | None
        Channels to average the ITC over.

    Returns
    -------
    check : PhaseCheck
        ``locked`` is False only when the trials could have shown phase locking (a perfectly
        locked response would reach ``p < PHASE_LOCK_ALPHA``) and did not.
    """
    from scipy.stats import gamma


    try:
        rows = phase_locking_analysis({"calibration": list(raws)}, tmin=tmin, window_s=window_s,
                                      channels=channels).rows
    except Exception as exc:  # noqa: BLE001 - the check only prunes candidates
        logger.info("phase-locking check skipped: %s", exc)
        return PhaseCheck(None)
    if not rows:
        return PhaseCheck(None, rows=[])
    z = sum(r["n_trials"] * r["itc"] ** 2 for r in rows)
    k = len(rows)
    p = float(gamma.sf(z, k))
    itc = float(np.mean([r["itc"] for r in rows]))
    chance = float(np.mean([r["chance"] for r in rows]))
    if p < PHASE_LOCK_ALPHA:
        locked: bool | None = True
    elif gamma.sf(sum(r["n_trials"] for r in rows), k) >= PHASE_LOCK_ALPHA:
        locked = None  # even identical phases in every trial would not be significant
    else:
        locked = False
    return PhaseCheck(locked, itc, chance, p, rows)
