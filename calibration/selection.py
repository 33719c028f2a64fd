"""Model selection on calibration data: decoder x window, then no-control thresholds.

Three pieces, all on recordings loaded by :func:`bci.datasets.load_recording`:

- :func:`cross_validate`: stratified k-fold accuracy and ITR of each candidate decoder and
  window length on the cued windows (rest included when the recording has rest trials);
- :func:`sliding_scores`: out-of-fold decoder scores of sliding windows over the whole
  recording, as the online loop would see them, each labelled with what the user attended;
- :func:`false_activation_rate` / :func:`choose_thresholds`: replay the decision policy over
  those windows and keep the margin that holds the commands per minute of rest under target.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import StratifiedKFold

from bci.datasets import cue_table, epoch, pick_channels
from bci.decoders import METHODS, make_decoder
from bci.evaluation.metrics import itr_bits_per_min
from bci.evaluation.phase import phase_locking_analysis
from bci.labels import REST_LABEL, freq_label, is_rest, label_to_freq
from bci.online.policy import DecisionPolicy
from calibration.errors import CalibrationError

logger = logging.getLogger("calibration")


@dataclass
class LabelledScores:
    """Decoder scores of consecutive sliding windows over one or more recordings.

    Attributes
    ----------
    scores : ndarray, shape (n_windows, n_classes)
        Scores in ``classes`` order.
    labels : list of (str | None)
        What the user attended during each window (None: a cue changed inside the window,
        or the gaze shift after a cue).
    classes : tuple of str
        Column labels.
    step_s : float
        Time between consecutive windows (s).
    trial_ids : ndarray of int
        Cued trial each window ends in (-1: before the first cue, or a cue of another class).
    trial_labels : list of (str | None)
        Cue of that trial. Commands are scored per trial, from its cue to the next cue (as
        :mod:`bci.online.pseudo_online` does): the first command of a target trial is a hit
        when it is the cued target; any command in a rest trial is a false activation.
    """

    scores: np.ndarray
    labels: list
    classes: tuple[str, ...]
    step_s: float
    trial_ids: np.ndarray
    trial_labels: list

    @property
    def rest_minutes(self) -> float:
        """Minutes of rest trials (cue to next cue) covered by the windows."""
        n = sum(1 for lab in self.trial_labels if lab is not None and is_rest(lab))
        return n * self.step_s / 60


def class_labels(classes: Sequence[object]) -> tuple[str, ...]:
    """Decoder ``classes_`` as label strings (numbers become ``"13.0Hz"``)."""

    out = []
    for c in classes:
        c = c.item() if hasattr(c, "item") else c
        f = label_to_freq(c)
        out.append(REST_LABEL if f is None else freq_label(f))
    return tuple(out)


def _cut(raw, *, tmin, window, channels, classes, offsets=None):
    """Epoch one recording; return (X, y, cue onset of each window)."""
    out = epoch(raw, tmin=tmin, window=window, channels=channels, classes=classes,
                offsets=offsets)
    y = np.asarray(out[1]).astype(str)
    if offsets is None:
        cue = np.asarray(out[2]) - tmin
    else:
        onsets, labels = cue_table(raw)
        keep = np.isin(np.asarray(labels).astype(str), list(classes))
        cue = np.asarray(onsets)[keep][np.asarray(out[3], int)]
    return out[0], y, np.round(cue, 3)


def _epochs(raws, *, tmin, window, channels, classes):
    """Cued windows of every recording; keys (recording, cue onset) identify trials."""
    Xs, ys, keys = [], [], []
    for r, raw in enumerate(raws):
        X, y, cue = _cut(raw, tmin=tmin, window=window, channels=channels, classes=classes)
        Xs.append(X)
        ys.append(y)
        keys += [(r, float(c)) for c in cue]
    if not keys:
        raise CalibrationError(
            f"No calibration trial of the classes {list(classes)} fits a {window:g} s window "
            f"starting {tmin:g} s after its cue; record longer trials or use shorter windows."
        )
    return np.concatenate(Xs), np.concatenate(ys), keys


def _fold_ids(y_trial: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    labels, counts = np.unique(y_trial, return_counts=True)
    k = int(min(n_folds, counts.min()))
    if k < 2:
        raise CalibrationError(
            "Too few calibration trials to cross-validate ("
            + ", ".join(f"{lab}: {n}" for lab, n in zip(labels.tolist(), counts.tolist()))
            + "); record at least 2 trials per class (more is better)."
        )
    folds = np.empty(len(y_trial), int)
    skf = StratifiedKFold(k, shuffle=True, random_state=seed)
    for f, (_, test) in enumerate(skf.split(np.zeros(len(y_trial)), y_trial)):
        folds[test] = f
    return folds


def cross_validate(raws: Sequence, *, methods: Sequence[str], windows: Sequence[float],
                   freqs: Sequence[float], channels: Sequence[str], classes: Sequence[str],
                   tmin: float = 2.0, n_folds: int = 5, seed: int = 42,
                   gaze_shift_s: float = 0.5, notes: list[str] | None = None) -> list[dict]:
    """Cross-validated accuracy and ITR of each method x window on the cued windows.

    A candidate that cannot be fitted on the folds (e.g. too few trials for its covariance
    estimates) is left out with a line in ``notes``; when none can be fitted,
    :class:`~calibration.errors.CalibrationError` says why.

    Parameters
    ----------
    raws : sequence of mne.io.Raw
        Calibration recordings (annotated cues).
    methods : sequence of str
        Decoder registry names.
    windows : sequence of float
        Window lengths (s).
    freqs : sequence of float
        Target frequencies (Hz).
    channels : sequence of str
        Channels to decode.
    classes : sequence of str
        Labels to classify (targets, plus ``"rest"`` when the recording has rest trials).
    tmin : float, default=2.0
        Window start after each cue (s).
    n_folds : int, default=5
        Folds (fewer when a class has fewer trials). Windows of one trial stay together.
    seed : int, default=42
        Shuffling seed; the same folds for every candidate.
    gaze_shift_s : float, default=0.5
        Added to the window length for the ITR's time per selection.
    notes : list of str | None
        Receives one line per candidate left out.

    Returns
    -------
    records : list of dict
        One per candidate: ``method, window_s, n_classes, accuracy, itr_bits_per_min,
        n_trials, n_folds``.
    """
    records: list[dict] = []
    failures: list[str] = []
    for w in windows:
        X, y, keys = _epochs(raws, tmin=tmin, window=w, channels=channels, classes=classes)
        folds = _fold_ids(y, n_folds, seed)
        for m in methods:
            offs = _offsets(m, tmin, w)
            correct = 0
            try:
                for f in np.unique(folds):
                    train = {k for k, fo in zip(keys, folds) if fo != f}
                    dec = _fit(m, raws, freqs=freqs, channels=channels, classes=classes,
                               tmin=tmin, window=w, offsets=offs, keep_trials=train)
                    correct += int(np.sum(class_labels(dec.predict(X[folds == f]))
                                          == y[folds == f]))
            except CalibrationError as exc:
                failures.append(f"{m} at {w:g} s left out: {exc}")
                logger.warning("%s", failures[-1])
                continue
            acc = correct / len(y)
            records.append({
                "method": m, "window_s": float(w), "n_classes": len(classes),
                "accuracy": acc,
                "itr_bits_per_min": itr_bits_per_min(acc, len(classes), w, gaze_shift_s),
                "n_trials": int(len(y)), "n_folds": int(len(np.unique(folds))),
            })
            logger.info("cv %s %.2f s: accuracy %.3f", m, w, acc)
    if notes is not None:
        notes.extend(failures)
    if not records:
        raise CalibrationError("No candidate decoder could be fitted on the calibration data: "
                               + " | ".join(failures))
    return records


def _offsets(method: str, tmin: float, window: float):
    offs = METHODS[method].get("train_offsets")
    if not offs:
        return None
    return [tmin + o for o in offs if tmin + o >= 0]


def _fit(method: str, raws, *, freqs, channels, classes, tmin, window, offsets=None,
         keep_trials: set | None = None):
    """Fit ``method`` on the cued windows of ``raws`` (only ``keep_trials`` when given)."""
    Xs, ys = [], []
    for r, raw in enumerate(raws):
        X, y, cue = _cut(raw, tmin=tmin, window=window, channels=channels, classes=classes,
                         offsets=offsets)
        if keep_trials is not None:
            keep = np.array([(r, float(c)) in keep_trials for c in cue], bool)
            X, y = X[keep], y[keep]
        Xs.append(X)
        ys.append(y)
    X, y = np.concatenate(Xs), np.concatenate(ys)
    sfreq = raws[0].info["sfreq"]
    dec = make_decoder(method, sfreq=sfreq, freqs=freqs)
    try:
        return dec.fit(X, y)
    except (np.linalg.LinAlgError, ValueError) as exc:
        labels, counts = np.unique(y, return_counts=True)
        per_class = ", ".join(f"{lab} {n}" for lab, n in zip(labels, counts))
        raise CalibrationError(
            f"{method} cannot be fitted on these {window:g} s calibration windows "
            f"({per_class}): {str(exc).rstrip('.')}. Record more trials per class, or choose "
            "other methods with --methods."
        ) from exc


def fit_decoder(method: str, raws: Sequence, *, freqs, channels, classes, tmin: float,
                window: float):
    """Fit ``method`` on every cued window of the calibration recordings."""
    return _fit(method, list(raws), freqs=freqs, channels=channels, classes=classes, tmin=tmin,
                window=window, offsets=_offsets(method, tmin, window))


def window_labels(raw, ends_s: np.ndarray, window_s: float, *, guard_s: float = 1.0,
                  classes: Sequence[str] | None = None) -> tuple[list, np.ndarray]:
    """Label sliding windows ending at ``ends_s`` with the cue they lie in.

    A window gets a cue's label when it starts at least ``guard_s`` after that cue and ends
    before the next one; otherwise None. Also returns each window's cue index (-1: none).
    """
    onsets, labels = cue_table(raw)
    labels = np.asarray(labels).astype(str)
    end_rec = raw.n_times / raw.info["sfreq"]
    nxt = np.append(onsets[1:], end_rec)
    out, idx = [], np.full(len(ends_s), -1)
    starts = ends_s - window_s
    seg = np.searchsorted(onsets, ends_s, side="right") - 1
    for i, (s, e, j) in enumerate(zip(starts, ends_s, seg)):
        if j < 0:
            out.append(None)
            continue
        idx[i] = j
        ok = s >= onsets[j] + guard_s and e <= nxt[j] + 1e-9
        lab = labels[j]
        if classes is not None and lab not in classes:
            ok = False
        out.append(str(lab) if ok else None)
    return out, idx


def sliding_scores(method: str, raws: Sequence, *, freqs, channels, classes, tmin: float,
                   window: float, step_s: float = 0.25, guard_s: float = 1.0,
                   n_folds: int = 5, seed: int = 42) -> LabelledScores:
    """Out-of-fold scores of sliding windows over the recordings, as online.

    Trials are split into folds as in :func:`cross_validate`; the windows inside a trial
    are scored by the decoder fitted without that trial.
    """
    raws = list(raws)
    _, y, keys = _epochs(raws, tmin=tmin, window=window, channels=channels, classes=classes)
    folds = _fold_ids(y, n_folds, seed)
    fold_of = dict(zip(keys, folds.tolist()))
    offs = _offsets(method, tmin, window)
    decs = {}
    for f in np.unique(folds):
        train = {k for k, fo in fold_of.items() if fo != f}
        decs[int(f)] = _fit(method, raws, freqs=freqs, channels=channels, classes=classes,
                            tmin=tmin, window=window, offsets=offs, keep_trials=train)
    all_scores, all_labels, all_tid, all_tlab = [], [], [], []
    cls = class_labels(decs[0].classes_)
    for r, raw in enumerate(raws):
        sf = raw.info["sfreq"]
        win, ends = _windows(raw, channels, window, step_s)
        labs, seg = window_labels(raw, ends / sf, window, guard_s=guard_s)
        onsets, _ = cue_table(raw)
        onsets = np.round(np.asarray(onsets), 3)
        # each window is scored by the model that did not see the trial it lies in
        fold_w = np.array([fold_of.get((r, float(onsets[j])), 0) if j >= 0 else 0
                           for j in seg], int)
        scores = np.empty((len(ends), len(cls)))
        for f, dec in decs.items():
            m = fold_w == f
            if m.any():
                scores[m] = dec.decision_function(win[m])
        all_scores.append(scores)
        all_labels += [lab if (lab is None or lab in classes or is_rest(lab)) else None
                       for lab in labs]
        tid, tlab = _trials(raw, seg, cls, offset=100_000 * r)
        all_tid.append(tid)
        all_tlab += tlab
    return LabelledScores(np.concatenate(all_scores), all_labels, cls, float(step_s),
                          np.concatenate(all_tid), all_tlab)


def _windows(raw, channels, window: float, step_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Sliding windows ``(n_windows, n_channels, n)`` and their end sample indices."""
    sf = raw.info["sfreq"]
    n = int(round(window * sf))
    data = raw.get_data(picks=pick_channels(raw, channels))
    step = max(1, int(round(step_s * sf)))
    ends = np.arange(n, data.shape[1] + 1, step)
    view = np.lib.stride_tricks.sliding_window_view(data, n, axis=1)
    return np.ascontiguousarray(view[:, ends - n].transpose(1, 0, 2)), ends


def score_recording(decoder, raw, *, channels, window: float, step_s: float = 0.25,
                    guard_s: float = 1.0) -> LabelledScores:
    """Scores of a fitted decoder on sliding windows over a recording (e.g. another session)."""
    win, ends = _windows(raw, channels, window, step_s)
    labs, seg = window_labels(raw, ends / raw.info["sfreq"], window, guard_s=guard_s)
    scores = decoder.decision_function(win)
    cls = class_labels(decoder.classes_)
    labs = [lab if (lab is None or lab in cls or is_rest(lab)) else None for lab in labs]
    tid, tlab = _trials(raw, seg, cls)
    return LabelledScores(np.asarray(scores), labs, cls, float(step_s), tid, tlab)


def _trials(raw, seg: np.ndarray, classes, offset: int = 0) -> tuple[np.ndarray, list]:
    """Trial id and cue label of each window (from its cue index ``seg``)."""
    _, cue_labels = cue_table(raw)
    cue_labels = np.asarray(cue_labels).astype(str)
    tid = np.full(len(seg), -1)
    tlab: list = []
    for i, j in enumerate(seg):
        lab = cue_labels[j] if j >= 0 else None
        if lab is None or not (lab in classes or is_rest(lab)):
            tlab.append(None)
            continue
        tid[i] = offset + int(j)
        tlab.append(str(lab))
    return tid, tlab


def replay_policy(ls: LabelledScores, policy: DecisionPolicy) -> dict:
    """Run the policy over the windows; score its commands per cued trial.

    Returns
    -------
    result : dict
        ``false_per_min`` (commands during rest trials per minute of rest trial),
        ``n_false``, ``rest_min``, ``n_commands``, ``target_segments`` (target trials),
        ``target_segments_hit`` (target trials whose first command is the cued target),
        ``wrong_commands`` (commands for another target during a target trial).
    """
    policy.reset()
    n_false = n_cmd = wrong = 0
    first: dict[int, str] = {}
    target_trials = {int(t): lab for t, lab in zip(ls.trial_ids, ls.trial_labels)
                     if lab is not None and not is_rest(lab)}
    for i, row in enumerate(ls.scores):
        res = policy.update(i * ls.step_s, row)
        if res.outcome is None:
            continue
        n_cmd += 1
        lab = ls.trial_labels[i]
        if lab is None:
            continue
        if is_rest(lab):
            n_false += 1
            continue
        tid = int(ls.trial_ids[i])
        first.setdefault(tid, res.outcome)
        if res.outcome != lab:
            wrong += 1
    policy.reset()
    rest_min = ls.rest_minutes
    hits = sum(1 for t, out in first.items() if out == target_trials.get(t))
    return {
        "false_per_min": (n_false / rest_min) if rest_min > 0 else float("nan"),
        "n_false": n_false, "rest_min": rest_min, "n_commands": n_cmd,
        "wrong_commands": wrong, "target_segments_hit": hits,
        "target_segments": len(target_trials),
    }


def false_activation_curve(ls: LabelledScores, margins: Sequence[float], **policy_kw) -> list:
    """False activations per minute of rest for each ``min_margin`` (for the report plot)."""
    out = []
    for m in margins:
        pol = DecisionPolicy(ls.classes, min_margin=float(m), **policy_kw)
        r = replay_policy(ls, pol)
        out.append({"min_margin": float(m), **r})
    return out


def choose_thresholds(ls: LabelledScores, *, far_target_per_min: float, candidates: int = 60,
                      n_refine: int = 10, **policy_kw) -> DecisionPolicy:
    """Return a DecisionPolicy whose ``min_margin`` holds the false-activation target.

    The candidates are quantiles of the windows' top-two margins (as in
    :meth:`bci.online.policy.DecisionPolicy.fit_thresholds`); false activations fall as the
    margin rises, so a bisection finds the smallest margin whose replay gives at most
    ``far_target_per_min`` commands per minute of rest (about 7 replays instead of 60).
    Among ``n_refine`` margins from there up that also hold the target, the one with the
    most target trials whose first command is the cued target wins (ties: the smallest).
    Without rest windows the margin stays 0 and a warning is logged.
    """
    pol = DecisionPolicy(ls.classes, **policy_kw)
    if ls.rest_minutes <= 0:
        logger.debug("no rest windows: min_margin stays 0")  # calibrate_raws says it once
        return pol
    m = _margins(ls.scores)
    grid = np.unique(np.concatenate([[0.0], np.quantile(m, np.linspace(0, 1, candidates)),
                                     [m.max() * 1.01 + 1e-12]]))

    def ok(i: int) -> bool:
        pol.min_margin = float(grid[i])
        return replay_policy(ls, pol)["false_per_min"] <= far_target_per_min

    lo, hi = 0, len(grid) - 1  # grid[hi] (above every margin) never commits
    if ok(lo):
        hi = lo
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid
    # Among (up to ``n_refine``) feasible margins from there on, keep the one whose first
    # command in the most target trials is the cued one (ties: the smallest margin).
    best_key, best_m = None, float(grid[hi])
    for i in np.unique(np.linspace(hi, len(grid) - 1, n_refine).round().astype(int)):
        pol.min_margin = float(grid[i])
        r = replay_policy(ls, pol)
        if r["false_per_min"] > far_target_per_min:
            continue
        key = (r["target_segments_hit"], -float(grid[i]))
        if best_key is None or key > best_key:
            best_key, best_m = key, float(grid[i])
    pol.min_margin = best_m
    pol.reset()
    return pol


def _margins(scores: np.ndarray) -> np.ndarray:
    """Top-minus-second score of each window."""
    srt = np.sort(scores, axis=1)
    return srt[:, -1] - srt[:, -2] if scores.shape[1] > 1 else srt[:, -1]


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


def phase_check(raws: Sequence, *, tmin: float, window: float,
                channels: Sequence[str] | None = None) -> PhaseCheck:
    """Tell phase-locked cues (screen stimuli) from free-running lights on calibration data.

    Runs :func:`bci.evaluation.phase.phase_locking_analysis` on the cued windows and pools
    its per-frequency Rayleigh statistics ``n * itc**2`` (a sum of ``k`` of them follows a
    Gamma(k) law for random phases), which gives power with the few trials of a calibration.

    Parameters
    ----------
    raws : sequence of mne.io.Raw
        Calibration recordings with cue annotations.
    tmin, window : float
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
        rows = phase_locking_analysis({"calibration": list(raws)}, tmin=tmin, window=window,
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
