"""The one evaluation harness: how windows are cut, folded and scored.

Every figure of the project goes through these functions: the offline evaluation
(:mod:`bci.evaluation.crossval`), calibration (model selection and the no-control threshold,
:mod:`calibration.selection`), the pseudo-online evaluation and the benchmark scripts.

- **Trials.** One cued trial = one test window ``[cue + tmin, cue + tmin + window)``. A
  decoder that augments its training data (its ``window_s`` parameter, e.g.
  :class:`bci.decoders.RessFBCCA`) is fitted on longer epochs ``[cue + start, cue + end)``
  (``train_span``, clipped to the shortest trial) and cuts its own windows; every other
  estimator is fitted on the test windows of the training trials.
- **Folds.** :func:`trial_folds`: stratified k-fold over trials (``StratifiedKFold(5,
  shuffle=True, random_state=42)``, fewer folds when a class has fewer trials).
  :func:`session_pairs`: every ordered pair of sessions (cross-session).
- **Sliding windows.** :func:`sliding_windows` cuts the windows the online loop decodes when
  it replays a recording on a virtual clock (:class:`bci.online.RecordingSource`, one every
  ``step`` seconds, starting when the first full window exists), so scores computed here are
  the scores the loop sees. :func:`out_of_fold_streams` scores them with the fold model that
  did not see the trial each window ends in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold

from bci.datasets import cue_table, epoch, pick_channels
from bci.datasets._epoch import select_classes
from bci.evaluation.scoring import trial_ends
from bci.labels import class_labels, is_rest

N_FOLDS = 5
SEED = 42
#: Windows scored per decision_function call in :func:`score_stream`.
_CHUNK = 256


# ---------------------------------------------------------------------- folds and pairs
def trial_folds(y: Sequence, n_folds: int = N_FOLDS, seed: int = SEED) -> np.ndarray:
    """Fold index of each trial: stratified k-fold with shuffling.

    Parameters
    ----------
    y : sequence
        Label of each trial.
    n_folds : int, default=5
        Folds wanted; fewer when the smallest class has fewer trials.
    seed : int, default=42
        Shuffling seed (the same folds for every method).

    Raises
    ------
    ValueError
        When a class has fewer than two trials.
    """
    y = np.asarray(y).astype(str)
    labels, counts = np.unique(y, return_counts=True)
    k = int(min(n_folds, counts.min())) if len(counts) else 0
    if k < 2:
        raise ValueError(
            f"Too few trials to cross-validate ({dict(zip(labels.tolist(), counts.tolist()))}):"
            " every class needs at least 2 trials."
        )
    folds = np.empty(len(y), int)
    skf = StratifiedKFold(k, shuffle=True, random_state=seed)
    for f, (_, test) in enumerate(skf.split(np.zeros(len(y)), y)):
        folds[test] = f
    return folds


def session_pairs(n_sessions: int) -> list[tuple[int, int]]:
    """Every ordered (calibration, test) pair of distinct sessions."""
    return [(a, b) for a in range(n_sessions) for b in range(n_sessions) if a != b]


def calibration_session(test: int, n_sessions: int) -> int:
    """The session that calibrates ``test`` in the pseudo-online evaluation: the one
    recorded just before it, or (for the first session) the one just after."""
    if n_sessions < 2:
        raise ValueError("Cross-session evaluation needs at least two sessions.")
    return test - 1 if test > 0 else 1


# ---------------------------------------------------------------------- estimators
def augments(estimator) -> bool:
    """True when the estimator cuts its own training windows (a ``window_s`` parameter)."""
    return "window_s" in estimator.get_params(deep=False)


def for_window(estimator, window_s: float):
    """An unfitted clone that decodes ``window`` s windows (sets ``window_s`` if it has it)."""
    est = clone(estimator)
    if augments(est):
        est.set_params(window_s=float(window_s))
    return est


# ---------------------------------------------------------------------- trials
@dataclass
class Trials:
    """The cued trials of one or more recordings.

    Attributes
    ----------
    X : ndarray, shape (n_trials, n_channels, n_samples)
        Test windows ``[cue + tmin, cue + tmin + window)``.
    y : ndarray of str
        Labels.
    trial : ndarray of int
        Trial id (unique across recordings).
    session : ndarray of int
        Recording index.
    cue : ndarray of float
        Cue time (s from the recording's first sample).
    window_s : float
        Window length (s).
    long : tuple | None
        ``(X, y, trial)`` of the training epochs over ``train_span`` (None: not built).
    """

    X: np.ndarray
    y: np.ndarray
    trial: np.ndarray
    session: np.ndarray
    cue: np.ndarray
    window_s: float
    long: tuple | None = None

    @classmethod
    def build(cls, raws, *, tmin: float, window_s: float, classes=None, channels=None,
              train_span: tuple[float, float] | None = None, prefilter=None) -> Trials:
        """Cut the trials of ``raws`` (and the training epochs over ``train_span``)."""
        Xs, ys, ts, ss, cs, longs = [], [], [], [], [], []
        n_before = 0
        span = None if train_span is None else _clip_span(raws, train_span, window_s)
        for i, raw in enumerate(raws):
            X, y, on, t = epoch(raw, tmin=tmin, window_s=window_s, classes=classes,
                                channels=channels, prefilter=prefilter, offsets=[])
            Xs.append(X)
            ys.append(y)
            ts.append(t + n_before)
            ss.append(np.full(len(y), i))
            cs.append(on - tmin)
            if span is not None:
                Xl, yl, _, tl = epoch(raw, tmin=span[0], window_s=span[1] - span[0],
                                      classes=classes, channels=channels, prefilter=prefilter,
                                      offsets=[])
                longs.append((Xl, yl, tl + n_before))
            n_before += int(np.sum(select_classes(cue_table(raw)[1], classes)))
        long = None
        if longs:
            long = tuple(np.concatenate([lo[k] for lo in longs]) for k in range(3))
        return cls(np.concatenate(Xs), np.concatenate(ys), np.concatenate(ts),
                   np.concatenate(ss), np.concatenate(cs), float(window_s), long)

    def train(self, trials: np.ndarray, *, long: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Training data of the given trial ids (the long epochs when ``long``)."""
        if long and self.long is not None:
            X, y, t = self.long
            m = np.isin(t, trials)
            return X[m], y[m]
        m = np.isin(self.trial, trials)
        return self.X[m], self.y[m]

    def fit(self, estimator, trials: np.ndarray):
        """Fit a clone of ``estimator`` (for this window) on the given trials."""
        est = for_window(estimator, self.window_s)
        return est.fit(*self.train(trials, long=augments(est)))


def _clip_span(raws, span: tuple[float, float], window_s: float) -> tuple[float, float] | None:
    """``span`` ended at the shortest cue spacing; None when no longer than one window."""
    start, end = float(span[0]), float(span[1])
    gaps = [float(np.min(np.diff(cue_table(r)[0]))) for r in raws if len(cue_table(r)[0]) > 1]
    if gaps:
        end = min(end, min(gaps))
    return (start, end) if end - start > window_s + 1e-9 else None


# ---------------------------------------------------------------------- sliding windows
@dataclass
class ScoreStream:
    """Decoder scores of the windows the online loop decodes over one recording.

    Attributes
    ----------
    scores : ndarray, shape (n_windows, n_classes)
    t : ndarray, shape (n_windows,)
        Time of each window's last sample (s from the recording's first sample), as
        ``Decision.window_end`` in a virtual-clock replay.
    classes : tuple of str
    onsets : ndarray
        Cue times (s).
    labels : ndarray of str
        Cue labels.
    end_s : float
        Length of the recording (s).
    step_s, window_s : float
    """

    scores: np.ndarray
    t: np.ndarray
    classes: tuple[str, ...]
    onsets: np.ndarray
    labels: np.ndarray
    end_s: float
    step_s: float
    window_s: float

    @property
    def rest_minutes(self) -> float:
        """Minutes of rest trials (cue to next cue) in the recording."""
        ends = trial_ends(self.onsets, self.end_s)
        return float(sum(e - o for o, e, lab in zip(self.onsets, ends, self.labels)
                         if is_rest(lab))) / 60.0


def window_ends(n_times: int, sfreq: float, window_s: float, step: float) -> np.ndarray:
    """End sample (exclusive) of every window a virtual-clock replay decodes.

    The replay's clock starts at ``window`` s and advances by ``step`` while it is before
    the end of the data; the window ends at the last sample at or before the clock.
    """
    duration = n_times / sfreq
    ends = []
    t = float(window_s)
    while t < duration:
        ends.append(min(int(np.floor(t * sfreq + 1e-9)) + 1, n_times))
        t += step
    return np.asarray(ends, int)


def sliding_windows(raw, *, window_s: float, step: float, channels=None):
    """Return ``(data, ends, n)``: the picked data, the end samples and the window length."""
    sfreq = float(raw.info["sfreq"])
    data = raw.get_data(picks=pick_channels(raw, channels))
    n = int(round(window_s * sfreq))
    ends = window_ends(data.shape[1], sfreq, window_s, step)
    return data, ends[ends >= n], n


def _score_windows(decoders, which: np.ndarray, data, ends, n, n_classes) -> np.ndarray:
    view = np.lib.stride_tricks.sliding_window_view(data, n, axis=1)  # (c, T-n+1, n)
    scores = np.empty((len(ends), n_classes))
    for f, dec in enumerate(decoders):
        idx = np.flatnonzero(which == f)
        for lo in range(0, len(idx), _CHUNK):
            sel = idx[lo:lo + _CHUNK]
            W = np.ascontiguousarray(view[:, ends[sel] - n].transpose(1, 0, 2))
            scores[sel] = dec.decision_function(W)
    return scores


def score_stream(decoder, raw, *, window_s: float, step: float, channels=None) -> ScoreStream:
    """Scores of a fitted decoder on every window a virtual-clock replay decodes."""
    data, ends, n = sliding_windows(raw, window_s=window_s, step=step, channels=channels)
    classes = class_labels(decoder.classes_)
    scores = _score_windows([decoder], np.zeros(len(ends), int), data, ends, n, len(classes))
    return _stream(raw, scores, ends, classes, step, window_s)


def _stream(raw, scores, ends, classes, step, window_s) -> ScoreStream:
    sfreq = float(raw.info["sfreq"])
    onsets, labels = cue_table(raw)
    return ScoreStream(scores, (ends - 1) / sfreq, tuple(classes), np.asarray(onsets, float),
                       np.asarray(labels).astype(str), raw.n_times / sfreq, float(step),
                       float(window_s))


def out_of_fold_streams(estimator, raws, *, tmin: float, window_s: float, classes=None,
                        channels=None, train_span=None, step: float = 0.1,
                        n_folds: int = N_FOLDS, seed: int = SEED) -> list[ScoreStream]:
    """Out-of-fold scores of the sliding windows of every recording.

    Trials are split by :func:`trial_folds`; a window is scored by the model fitted without
    the trial its last sample falls in (windows before the first cue: the first fold's
    model).
    """
    raws = list(raws)
    tr = Trials.build(raws, tmin=tmin, window_s=window_s, classes=classes, channels=channels,
                      train_span=train_span)
    folds = trial_folds(tr.y, n_folds, seed)
    models = [tr.fit(estimator, tr.trial[folds != f]) for f in range(folds.max() + 1)]
    cls = class_labels(models[0].classes_)
    fold_of_trial = dict(zip(tr.trial.tolist(), folds.tolist()))
    out, n_before = [], 0
    for raw in raws:
        data, ends, n = sliding_windows(raw, window_s=window_s, step=step, channels=channels)
        onsets, labels = cue_table(raw)
        keep = select_classes(labels, classes)
        # trial id of each cue (-1: a class left out)
        tid = np.full(len(onsets), -1)
        tid[keep] = n_before + np.arange(int(keep.sum()))
        cue = np.searchsorted(onsets, (ends - 1) / float(raw.info["sfreq"]), side="right") - 1
        which = np.array([fold_of_trial.get(int(tid[c]), 0) if c >= 0 else 0 for c in cue],
                         int)
        scores = _score_windows(models, which, data, ends, n, len(cls))
        out.append(_stream(raw, scores, ends, cls, step, window_s))
        n_before += int(keep.sum())
    return out


def window_labels(t_end: np.ndarray, onsets, labels, *, window_s: float,
                  guard: float = 1.0) -> list[str | None]:
    """What the user attended during each window (None: unknown).

    A window ending at ``t_end`` gets its cue's label when it starts at least ``guard`` s
    after that cue (the gaze shift) and ends before the next cue; otherwise None.
    """
    onsets = np.asarray(onsets, float)
    labels = np.asarray(labels).astype(str)
    nxt = np.append(onsets[1:], np.inf)
    out: list[str | None] = []
    for e in np.asarray(t_end, float):
        j = int(np.searchsorted(onsets, e, side="right")) - 1
        ok = j >= 0 and e - window_s >= onsets[j] + guard and e <= nxt[j] + 1e-9
        out.append(str(labels[j]) if ok else None)
    return out
