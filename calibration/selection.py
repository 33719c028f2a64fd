"""Model selection on calibration data: decoder x window, then the no-control threshold.

All on recordings loaded by :func:`bci.datasets.load_recording`, through the evaluation
harness (:mod:`bci.evaluation.harness`), so calibration cuts, folds and scores exactly as
the evaluation does:

- :func:`cross_validate`: stratified k-fold accuracy and ITR of each candidate decoder and
  window length on the cued windows (rest included when the recording has rest trials);
- :func:`choose_threshold`: THE threshold procedure of the project. It models the decision
  policy's evidence during the rest trials of out-of-fold scores of the windows the online
  loop would decode (:func:`bci.evaluation.harness.out_of_fold_streams`) with an
  extreme-value fit (:mod:`calibration.rest_model`) and sets the evidence threshold where
  the predicted false-activation rate meets the budget; :func:`predicted_false` gives that
  prediction and its interval at any threshold;
- :func:`replay`: the commands a policy gives on score streams, scored per cued trial by
  :mod:`bci.evaluation.scoring`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from bci.decoders import METHODS, make_decoder
from bci.evaluation.harness import ScoreStream, Trials, trial_folds
from bci.evaluation.metrics import itr_bits_per_min
from bci.evaluation.phase import phase_locking_analysis
from bci.evaluation.scoring import Selection, pool, score_trials, totals, trial_ends
from bci.labels import class_labels, is_rest
from bci.online.policy import DecisionPolicy
from calibration.errors import CalibrationError
from calibration.rest_model import RestTail, block_maxima, fit_rest_tail, threshold_for_budget

logger = logging.getLogger("calibration")

#: Defaults of the evidence policy, chosen leave-one-subject-out on the dev recordings
#: (docs/evaluation.md, scripts/loso_defaults.py). ``drift`` and ``clip`` are fractions of
#: the threshold; ``margin`` multiplies the threshold the model of rest sets for the budget
#: (kept at 1: ``scripts/loso_defaults.py rest_tail``).
POLICY_DEFAULTS = {
    "drift": 0.0,
    "clip": 0.5,
    "horizon_s": 6.0,
    "refractory_s": 1.0,
    "release_s": 3.0,
    "margin": 1.0,
}
#: Commands per minute of rest the threshold allows by default.
MAX_FALSE_PER_MIN = 0.5
#: Share of target trials with a wrong command the window choice accepts (``policy_rank``).
MAX_WRONG = 0.03
#: The model of the rest evidence that sets the threshold (:func:`choose_threshold`):
#: length of the blocks whose maxima are modelled (s), and the GEV shape with its
#: uncertainty for a decoder whose shape was not measured (a Gumbel tail, with an
#: uncertainty wide enough for the heavier tails seen on the dev users).
REST_TAIL_DEFAULTS = {
    "block_s": 2.0,
    "shape": 0.0,
    "shape_sd": 0.2,
}
#: The GEV shape (and its standard error) pooled over the dev users' calibration rest, per
#: decoder (chosen leave-one-subject-out with the block length: ``scripts/loso_defaults.py
#: rest_tail``, docs/evaluation.md).
#: Per decoder and window length (s); a window not listed takes the nearest one's.
REST_TAIL_SHAPES = {
    "ress-fbcca": {1.0: {"shape": 0.3, "shape_sd": 0.050},
                   1.5: {"shape": 0.375, "shape_sd": 0.049},
                   2.0: {"shape": 0.45, "shape_sd": 0.047}},
    "fbcca": {1.5: {"shape": 0.5, "shape_sd": 0.047},  # the top of SHAPE_BOUNDS
              2.0: {"shape": 0.4, "shape_sd": 0.042}},
}
#: Fewest rest blocks the model is fitted on (fewer blocks raise the threshold through the
#: expected-rate correction of :meth:`calibration.rest_model.RestTail.expected_rate`).
MIN_REST_BLOCKS = 3
#: Coverage of the predicted false-activation interval stored in the profile.
PREDICTION_COVERAGE = 0.8


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
def replay_totals(stream: ScoreStream, policy: DecisionPolicy) -> dict:
    """Replay ``policy`` over one score stream; :func:`bci.evaluation.scoring.totals` of its
    commands scored per cued trial."""
    commits = policy.replay(stream.t, stream.scores)
    return totals(score_trials([Selection(t, lab) for t, lab in commits], stream.onsets,
                               stream.labels, end_s=stream.end_s))


def replay(streams: Sequence[ScoreStream], policy: DecisionPolicy) -> dict:
    """Replay ``policy`` over score streams; score its commands per cued trial.

    Returns
    -------
    result : dict
        :func:`bci.evaluation.scoring.pool` of the streams (``false_activations_per_min``,
        ``hit_rate``, ``wrong_command_rate``, ``n_false_activations``, ``rest_minutes``, ...).
    """
    return pool([replay_totals(st, policy) for st in streams])


def rest_tail_params(method: str, window_s: float = 1.5) -> dict:
    """The rest model's parameters for a decoder at a window length
    (:data:`REST_TAIL_DEFAULTS` with its measured shape from :data:`REST_TAIL_SHAPES`, at the
    nearest window measured)."""
    shapes = REST_TAIL_SHAPES.get(method)
    if not shapes:
        return dict(REST_TAIL_DEFAULTS)
    near = min(shapes, key=lambda w: abs(w - float(window_s)))
    return {**REST_TAIL_DEFAULTS, **shapes[near]}


def policy_rank(replayed: Mapping) -> tuple:
    """The deployed criterion on a replay (:func:`replay` of the policy whose threshold holds
    the budget): within :data:`MAX_WRONG` wrong trials first, then the most hits, then the
    shorter median time from the cue (larger is better)."""
    med = replayed.get("median_time_to_command_s")
    return (replayed["wrong_command_rate"] <= MAX_WRONG, round(replayed["hit_rate"], 4),
            -(med if med is not None and med == med else math.inf))


def policy_for(classes, threshold: float, params: Mapping) -> DecisionPolicy:
    """The policy for ``threshold`` with ``drift`` and ``clip`` given as its fractions."""
    p = {**POLICY_DEFAULTS, **dict(params)}
    return DecisionPolicy(
        classes, threshold=threshold, drift=p["drift"] * threshold,
        clip=None if p["clip"] is None else p["clip"] * threshold, horizon_s=p["horizon_s"],
        refractory_s=p["refractory_s"], release_s=p["release_s"])


def rest_intervals(st: ScoreStream) -> list[tuple[float, float]]:
    """The (start, end) of every rest trial of a stream (s; the scorer's trial ends)."""
    ends = trial_ends(st.onsets, st.end_s)
    return [(float(a), float(b)) for a, b, lab in zip(st.onsets, ends, st.labels)
            if is_rest(lab)]


def rest_maxima(streams: Sequence[ScoreStream], policy: DecisionPolicy,
                block_s: float) -> np.ndarray:
    """Per-block maxima of ``policy``'s evidence (:meth:`DecisionPolicy.evidence_trace`)
    during the rest trials of the streams (:func:`calibration.rest_model.block_maxima`).

    The evidence is accumulated from each rest trial's start: what the user did before the
    rest cue (looking at a light, whose command the deployed policy has committed and
    latched) is not evidence of what no-control gives."""
    out = []
    for st in streams:
        for a, b in rest_intervals(st):
            i0, i1 = np.searchsorted(st.t, [a, b], side="left")
            if i1 > i0:
                ev = policy.evidence_trace(st.t[i0:i1], st.scores[i0:i1])
                out.append(block_maxima(st.t[i0:i1], ev, [(a, b)], block_s))
    m = np.concatenate(out) if out else np.zeros(0)
    return m[np.isfinite(m)]


def rest_tail_at(streams: Sequence[ScoreStream], threshold: float,
                 params: Mapping | None = None) -> RestTail:
    """The rest-tail model of the streams' rest evidence for the policy at ``threshold``."""
    p = {**POLICY_DEFAULTS, **REST_TAIL_DEFAULTS, **dict(params or {})}
    mx = rest_maxima(streams, policy_for(streams[0].classes, threshold, p), p["block_s"])
    return fit_rest_tail(mx, p["block_s"], shape=p["shape"], shape_sd=p["shape_sd"])


def predicted_false(streams: Sequence[ScoreStream], threshold: float,
                    params: Mapping | None = None) -> dict:
    """The false-activation rate the rest-tail model predicts at ``threshold``.

    Returns
    -------
    prediction : dict
        ``per_min`` (expected rate a user will see, per minute of rest), ``interval``
        ([low, high], :data:`PREDICTION_COVERAGE` of the realised rate), ``coverage``,
        ``plug_in`` (the fit's own rate) and ``rest_tail`` (the model,
        :meth:`calibration.rest_model.RestTail.to_dict`).
    """
    tail = rest_tail_at(streams, threshold, params)
    mean, lo, hi = tail.expected_rate(threshold, PREDICTION_COVERAGE)
    return {"per_min": mean, "interval": [lo, hi], "coverage": PREDICTION_COVERAGE,
            "plug_in": tail.rate_per_min(threshold), "rest_tail": tail.to_dict()}


def choose_threshold(streams: Sequence[ScoreStream], *, max_false_per_min: float,
                     params: Mapping | None = None, allow_no_rest: bool = False,
                     iterations: int = 30) -> tuple[DecisionPolicy, dict]:
    """The policy whose threshold holds the false-activation budget, from a model of rest.

    A calibration holds about a minute of rest: a threshold that merely keeps its own rest
    free of commands rests on its single most target-like stretch. Instead, the policy's
    evidence during the rest trials of the (out-of-fold) score streams is cut into blocks of
    ``params["block_s"]`` seconds and a generalised extreme-value model of the per-block
    maxima (:mod:`calibration.rest_model`, its shape ``params["shape"]`` pooled over the
    dev users) extrapolates beyond the worst block seen. The threshold is the one at which
    the rate a user is expected to see (the model's rate corrected for the error of a fit on
    so few blocks, :meth:`~calibration.rest_model.RestTail.expected_rate`) equals the
    budget (log bisection), times ``params["margin"]``.

    Parameters
    ----------
    streams : sequence of ScoreStream
        Out-of-fold scores of the calibration recordings.
    max_false_per_min : float
        The false-activation budget: commands per minute of rest (> 0).
    params : mapping | None
        Overrides of :data:`POLICY_DEFAULTS` and :data:`REST_TAIL_DEFAULTS`.
    allow_no_rest : bool, default=False
        Without rest trials no budget can be held: raise CalibrationError, or (True) take
        the lowest threshold (any target that leads for a moment commits).
    iterations : int, default=30
        Bisection steps.

    Returns
    -------
    policy : DecisionPolicy
    calibration : dict
        The replay of the chosen policy on the streams (:func:`replay`) plus
        ``threshold_at_budget`` (before the margin), ``predicted`` (:func:`predicted_false`
        at the chosen threshold: the expected false activations per minute and its
        interval) and ``held`` (the expected rate is within the budget).
    """
    p = {**POLICY_DEFAULTS, **REST_TAIL_DEFAULTS, **dict(params or {})}
    classes = streams[0].classes
    rest_min = sum(st.rest_minutes for st in streams)
    finite = [np.abs(st.scores[np.isfinite(st.scores)]) for st in streams]
    scale = max((float(np.max(f)) for f in finite if f.size), default=1.0) or 1.0
    lo, hi = scale * 1e-4, scale * 1e3
    if rest_min <= 0 and allow_no_rest:
        pol = policy_for(classes, lo, p)
        return pol, {**replay(streams, pol), "threshold_at_budget": lo, "predicted": None,
                     "held": False}
    if rest_min <= 0:
        raise CalibrationError(
            "The calibration data has no rest trials: the no-control threshold cannot be set "
            "for a false-activation budget. Record rest trials (the user looks at none of the "
            "lights).")
    if not max_false_per_min > 0:
        raise CalibrationError(
            f"A false-activation budget of {max_false_per_min!r} per minute cannot be held by "
            "any threshold (the model of rest predicts a positive rate at every level): give "
            "a positive budget, e.g. 0.5.")
    n_blocks = len(rest_maxima(streams, policy_for(classes, scale, p), p["block_s"]))
    if n_blocks < MIN_REST_BLOCKS:
        raise CalibrationError(
            f"Too little rest to set the no-control threshold: {rest_min * 60:.0f} s of rest "
            f"trials give {n_blocks} blocks of {p['block_s']:g} s, at least "
            f"{MIN_REST_BLOCKS} are needed ({MIN_REST_BLOCKS * p['block_s']:g} s). Record "
            "more rest (a live calibration records a realistic no-control schedule).")

    def maxima_at(h: float) -> np.ndarray:
        return rest_maxima(streams, policy_for(classes, h, p), p["block_s"])

    h0, _ = threshold_for_budget(maxima_at, max_false_per_min, block_s=p["block_s"],
                                 shape=p["shape"], shape_sd=p["shape_sd"], lo=lo, hi=hi,
                                 iterations=iterations)
    h = h0 * p["margin"]
    pol = policy_for(classes, h, p)
    rep = replay(streams, pol)
    rep["threshold_at_budget"] = h0
    rep["predicted"] = predicted_false(streams, h, p)
    rep["held"] = rep["predicted"]["per_min"] <= max_false_per_min * (1 + 1e-6)
    return pol, rep


def threshold_curve(streams: Sequence[ScoreStream], threshold: float, params: Mapping | None,
                    n: int = 13) -> list[dict]:
    """False activations (observed on the streams, and predicted by the model of rest when
    they have rest trials) and hits for thresholds around ``threshold``."""
    p = {**POLICY_DEFAULTS, **dict(params or {})}
    has_rest = sum(st.rest_minutes for st in streams) > 0
    out = []
    for h in threshold * np.geomspace(0.25, 4.0, n):
        r = replay(streams, policy_for(streams[0].classes, float(h), p))
        row = {"threshold": float(h), "false_per_min": r["false_activations_per_min"],
               "hit_rate": r["hit_rate"], "wrong_command_rate": r["wrong_command_rate"]}
        if has_rest:
            try:
                pred = predicted_false(streams, float(h), p)
                row["predicted_per_min"], row["predicted_interval"] = \
                    pred["per_min"], pred["interval"]
            except ValueError:  # too few rest blocks for the model
                pass
        out.append(row)
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
