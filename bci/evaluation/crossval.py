"""Within-session (pooled, stratified k-fold) and cross-session evaluation of estimators.

Every function takes ``{name: scikit-learn estimator}`` (cloned for each fit) and returns
records, one per method: ``subject``, ``method``, ``window_s``, ``n_classes``, ``scheme``,
``accuracy``, ``itr_bits_per_min``, ``itr_bits_per_min_gaze`` and details.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

import mne
import numpy as np
from sklearn.base import clone

from bci._logging import logger
from bci.datasets import epoch, prefilter_raw
from bci.datasets._cues import map_label
from bci.evaluation.harness import (
    N_FOLDS,
    SEED,
    Trials,
    augments,
    for_window,
    session_pairs,
    trial_folds,
)
from bci.evaluation.metrics import accuracy, confusion, itr_bits_per_min
from bci.evaluation.parallel import TASK_RUNNER
from bci.labels import is_rest, label_to_freq

#: Default gaze-shift time added per selection in the second ITR figure (s).
GAZE_SHIFT_S = 0.5


def _fit_score(estimator, X_train, y_train, X_test, y_test):
    est = clone(estimator)
    t0 = time.perf_counter()
    est.fit(X_train, y_train)
    t1 = time.perf_counter()
    pred = np.asarray(est.predict(X_test)).astype(str)
    t2 = time.perf_counter()
    return pred, t1 - t0, (t2 - t1) / max(len(X_test), 1)


def _run(tasks, n_jobs: int):
    runner = TASK_RUNNER.get()  # bci.evaluation.parallel: the fits of a whole sweep at once
    if runner is not None:
        return runner(tasks)
    if n_jobs == 1:
        return [f(*a) for f, *a in tasks]
    from joblib import Parallel, delayed

    return Parallel(n_jobs=n_jobs)(delayed(f)(*a) for f, *a in tasks)


def _record(subject, method, window_s, labels, scheme, accs, y_true, y_pred, fits, preds, extra):
    labels = list(labels)
    acc = float(np.mean(accs)) if len(accs) else None
    n = len(labels)
    rec = {
        "subject": subject,
        "method": method,
        "window_s": float(window_s),
        "n_classes": n,
        "scheme": scheme,
        "accuracy": acc,
        "itr_bits_per_min": None if acc is None else itr_bits_per_min(acc, n, window_s),
        "itr_bits_per_min_gaze": None
        if acc is None
        else itr_bits_per_min(acc, n, window_s, extra["gaze_shift_s"]),
        "accuracy_std": float(np.std(accs)) if len(accs) else None,
        "classes": labels,
        "confusion": confusion(y_true, y_pred, labels).tolist() if len(y_true) else None,
        "n_test_trials": int(len(y_true)),
        "fit_time_s": float(np.mean(fits)) if fits else None,
        "predict_ms_per_trial": float(np.mean(preds) * 1e3) if preds else None,
    }
    rec.update(extra)
    return rec


def _labels_of(y: np.ndarray) -> list[str]:
    return sorted(set(y), key=lambda s: (is_rest(s), label_to_freq(s) or 0.0))


def _prepare(raws, prefilter, train_spans, classes, tmin, gaze_shift_s):
    """Both schemes' set-up: the (prefiltered) raws, the spans by method, the mapped class
    labels, and the record fields that describe the protocol."""
    if prefilter is None:
        raws, pf = list(raws), "none"
    else:
        raws = [prefilter_raw(r, prefilter) for r in raws]
        pf = f"whole {prefilter[0]:g}-{prefilter[1]:g} Hz"
    classes = None if classes is None else [map_label(c) for c in classes]
    extra = {"tmin_s": tmin, "prefilter": pf, "n_sessions": len(raws), "gaze_shift_s": gaze_shift_s}
    return raws, dict(train_spans or {}), classes, extra


def _unavailable(estimators, note, *, subject, window_s, labels, scheme, extra):
    """One record per method saying why the scheme cannot be evaluated (no accuracy)."""
    return [
        _record(subject, name, window_s, labels, scheme, [], [], [], [], [],
                {**extra, "available": False, "note": note})
        for name in estimators
    ]  # fmt: skip


def _evaluate_splits(raws, base, estimators, splits, *, scheme, subject, labels, extra,
                     train_spans, epoch_kw, n_jobs, on_method_done):
    """Fit and score every method on every ``(train mask, test index)`` split of ``base``
    trials; one record per method, its accuracy the mean over splits."""
    window_s = epoch_kw["window_s"]
    records = []
    for name, estimator in estimators.items():
        data, span = _with_span(raws, base, estimator, train_spans.get(name), **epoch_kw)
        est = for_window(estimator, window_s)
        tasks = []
        for train, test in splits:
            Xtr, ytr = data.train(base.trial[train], long=span is not None)
            tasks.append((_fit_score, est, Xtr, ytr, base.X[test], base.y[test]))
        results = _run(tasks, n_jobs)
        accs = [accuracy(base.y[test], r[0]) for (_, test), r in zip(splits, results)]
        y_true = np.concatenate([base.y[test] for _, test in splits])
        y_pred = np.concatenate([r[0] for r in results])
        rec_extra = {**extra, "train_span": list(span) if span else None,
                     "available": True, "note": ""}  # fmt: skip
        records.append(
            _record(subject, name, window_s, labels, scheme, accs, y_true, y_pred,
                    [r[1] for r in results], [r[2] for r in results], rec_extra)
        )  # fmt: skip
        if on_method_done is not None:
            on_method_done()
    return records


def evaluate_within(
    raws: Sequence[mne.io.BaseRaw],
    estimators: Mapping[str, object],
    *,
    subject: str,
    window_s: float,
    classes: Sequence[object] | None = None,
    tmin: float = 2.0,
    channels: Sequence[str] | None = None,
    prefilter: tuple[float, float] | None = None,
    train_spans: Mapping[str, Sequence[float] | None] | None = None,
    n_splits: int = N_FOLDS,
    random_state: int = SEED,
    gaze_shift_s: float = GAZE_SHIFT_S,
    n_jobs: int = 1,
    on_method_done: Callable[[], None] | None = None,
) -> list[dict]:
    """Stratified k-fold cross-validation over all trials of a subject, sessions pooled.

    Parameters
    ----------
    raws : list of mne.io.Raw
        The subject's sessions (from :func:`bci.datasets.load_recording`).
    estimators : dict of str to estimator
        Methods to evaluate; each is cloned for every fold.
    subject : str
        Subject id written into the records.
    window_s : float
        Window length (s); windows start ``tmin`` s after each cue.
    classes : list | None
        Labels to keep (default: all cues).
    tmin : float, default=2.0
        Window start after the cue (s).
    channels : list of str | None
        Channel subset (default: all EEG channels).
    prefilter : (l_freq, h_freq) | None
        Band-pass each whole recording first (MOABB's protocol); default: raw windows.
    train_spans : dict of str to (float, float) | None
        Per method, the training epochs ``[cue + start, cue + end)`` (s; as
        ``bci.decoders.METHODS[name]["train_span"]``) given to decoders that cut their own
        training windows (a ``window_s`` parameter, set to ``window``), from the TRAINING
        trials only; test windows always start at ``tmin``. Ignored for other estimators.
    n_splits : int, default=5
        Folds (fewer when a class has fewer trials).
    random_state : int, default=42
        Seed of ``StratifiedKFold(shuffle=True)``; the same folds serve every method.
    gaze_shift_s : float, default=0.5
        Time added per selection in ``itr_bits_per_min_gaze``.
    n_jobs : int, default=1
        Parallel fits (joblib).
    on_method_done : callable | None
        Called after each method (progress bars).

    Returns
    -------
    records : list of dict
        One per method; ``accuracy`` is the mean over folds.
    """
    raws, train_spans, classes, extra = _prepare(raws, prefilter, train_spans, classes, tmin,
                                                 gaze_shift_s)
    epoch_kw = {"tmin": tmin, "window_s": window_s, "classes": classes, "channels": channels}
    base = Trials.build(raws, **epoch_kw)
    labels = _labels_of(base.y)
    _, counts = np.unique(base.y, return_counts=True)
    k = int(min(n_splits, counts.min()))
    if k < 2:
        return _unavailable(estimators, "not available: fewer than 2 trials in some class",
                            subject=subject, window_s=window_s, labels=labels, scheme="within",
                            extra={**extra, "n_trials": len(base.y)})
    if k < n_splits:
        logger.warning("%s: only %d trials in the smallest class, using %d folds", subject, k, k)
    folds = trial_folds(base.y, n_splits, random_state)
    splits = [(folds != f, np.flatnonzero(folds == f)) for f in range(k)]
    return _evaluate_splits(raws, base, estimators, splits, scheme="within", subject=subject,
                            labels=labels,
                            extra={**extra, "n_folds": k, "n_trials": len(base.y)},
                            train_spans=train_spans, epoch_kw=epoch_kw, n_jobs=n_jobs,
                            on_method_done=on_method_done)


def _with_span(raws, base, estimator, span, **kw):
    """The trials to train on: ``base``, or with long epochs for an augmenting decoder."""
    if span is None or not augments(estimator):
        return base, None
    data = Trials.build(raws, train_span=span, **kw)
    return data, (None if data.long is None else tuple(span))


def evaluate_cross(
    raws: Sequence[mne.io.BaseRaw],
    estimators: Mapping[str, object],
    *,
    subject: str,
    window_s: float,
    classes: Sequence[object] | None = None,
    tmin: float = 2.0,
    channels: Sequence[str] | None = None,
    prefilter: tuple[float, float] | None = None,
    train_spans: Mapping[str, Sequence[float] | None] | None = None,
    gaze_shift_s: float = GAZE_SHIFT_S,
    n_jobs: int = 1,
    on_method_done: Callable[[], None] | None = None,
) -> list[dict]:
    """Calibrate on one session, test on another of the same subject.

    Every ordered pair of sessions is evaluated and the accuracies averaged. A subject with
    one session gets records with ``available=False`` and ``accuracy=None``. Parameters as
    in :func:`evaluate_within`; ``raws`` must be independent sessions (see
    :func:`bci.datasets.find_recordings`, which drops duplicates).

    Returns
    -------
    records : list of dict
        One per method; ``accuracy`` is the mean over ordered session pairs.
    """
    raws, train_spans, classes, extra = _prepare(raws, prefilter, train_spans, classes, tmin,
                                                 gaze_shift_s)
    epoch_kw = {"tmin": tmin, "window_s": window_s, "classes": classes, "channels": channels}
    if len(raws) < 2:
        _, y, _ = epoch(raws[0], **epoch_kw)
        return _unavailable(
            estimators, "not available: one independent session (cross-session needs two)",
            subject=subject, window_s=window_s, labels=_labels_of(y), scheme="cross",
            extra=extra)
    base = Trials.build(raws, **epoch_kw)
    pairs = session_pairs(len(raws))
    splits = [(base.session == a, base.session == b) for a, b in pairs]
    return _evaluate_splits(raws, base, estimators, splits, scheme="cross", subject=subject,
                            labels=_labels_of(base.y),
                            extra={**extra, "n_pairs": len(pairs), "n_trials": len(base.y)},
                            train_spans=train_spans, epoch_kw=epoch_kw, n_jobs=n_jobs,
                            on_method_done=on_method_done)
