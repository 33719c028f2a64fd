"""Sweep of methods x window lengths x class sets x schemes over subjects, with progress."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

import mne
import numpy as np

from bci.datasets import cue_table
from bci.errors import DatasetError
from bci.evaluation.crossval import GAZE_SHIFT_S, evaluate_cross, evaluate_within
from bci.evaluation.metrics import itr_bits_per_min
from bci.evaluation.parallel import run_calls
from bci.labels import REST_LABEL, is_rest, label_to_freq

SCHEMES = ("within", "cross")


def class_sets(
    labels: Sequence[str], n_classes: Sequence[int] | None = None
) -> dict[int, list[str]]:
    """The class lists to evaluate: targets only, and targets plus rest when present.

    Parameters
    ----------
    labels : list of str
        Labels present in the data.
    n_classes : list of int | None
        Wanted class counts (``3`` and ``4`` on Kalunga: without and with rest). Default:
        every set the data allows.

    Returns
    -------
    sets : dict of int to list of str
        Class count -> labels (frequencies ascending, rest last).
    """
    targets = sorted({lab for lab in labels if not is_rest(lab)}, key=label_to_freq)
    options = {}
    if len(targets) >= 2:
        options[len(targets)] = targets
    if any(is_rest(lab) for lab in labels) and targets:
        options[len(targets) + 1] = [*targets, REST_LABEL]
    if n_classes is None:
        return dict(sorted(options.items()))
    out = {}
    for n in n_classes:
        if n not in options:
            raise DatasetError(
                f"Cannot evaluate {n} classes: the recordings have {len(targets)} target "
                f"frequencies{' and rest' if len(options) > 1 else ''}, so the class counts "
                f"available are {', '.join(map(str, sorted(options))) or 'none'}."
            )
        out[n] = options[n]
    return out


def run_evaluation(
    recordings: Mapping[str, Sequence[mne.io.BaseRaw]],
    estimators: Mapping[str, object],
    *,
    windows: Sequence[float] = (0.5, 1.0, 2.0),
    n_classes: Sequence[int] | None = None,
    schemes: Sequence[str] = ("within",),
    tmin: float = 2.0,
    channels: Sequence[str] | None = None,
    prefilter: tuple[float, float] | None = None,
    train_offsets: Mapping[str, Sequence[float] | None] | None = None,
    gaze_shift_s: float = GAZE_SHIFT_S,
    n_jobs: int = 1,
    scheduler: str | None = None,
    progress: bool = True,
) -> list[dict]:
    """Evaluate every method on every subject, window, class set and scheme.

    Parameters
    ----------
    recordings : dict of str to list of mne.io.Raw
        Loaded sessions by subject.
    estimators : dict of str to estimator
        Methods (cloned for every fit).
    windows : list of float
        Window lengths (s).
    n_classes : list of int | None
        Class counts (see :func:`class_sets`); default: all available.
    schemes : list of str
        ``"within"`` and/or ``"cross"``.
    tmin, channels, prefilter, train_offsets, gaze_shift_s
        As in :func:`bci.evaluation.evaluate_within`.
    n_jobs : int, default=1
        Worker processes. Above 1, every fit of the sweep (subject x method x window x
        class set x scheme x fold) is one task for ``joblib.Parallel``
        (:func:`bci.evaluation.parallel.run_calls`); the records equal a serial run's.
    scheduler : str | None
        Address of a ``dask.distributed`` scheduler: the same tasks go to that cluster
        through joblib's Dask backend (``n_jobs`` is then ignored).
    progress : bool, default=True
        Show a tqdm progress bar (on a terminal).

    Returns
    -------
    records : list of dict
        One per subject, method, window, class count and scheme.
    """
    from tqdm.auto import tqdm

    for s in schemes:
        if s not in SCHEMES:
            raise ValueError(
                f"Invalid value for the 'schemes' parameter. Allowed values are "
                f"{', '.join(map(repr, SCHEMES))}, but got {s!r} instead."
            )
    labels = sorted({lab for raws in recordings.values() for r in raws for lab in cue_table(r)[1]})
    sets = class_sets(labels, n_classes)
    total = len(recordings) * len(windows) * len(sets) * len(schemes) * len(estimators)
    bar = tqdm(total=total, desc="evaluate", unit="fit-set", disable=not progress or None)
    records: list[dict] = []
    common = {"tmin": tmin, "channels": channels, "prefilter": prefilter,
              "train_offsets": train_offsets, "gaze_shift_s": gaze_shift_s}  # fmt: skip
    if n_jobs < 1:
        raise ValueError(f"'n_jobs' must be at least 1, got {n_jobs}.")
    calls = []
    try:
        for subject, raws in recordings.items():
            for window in windows:
                for _, classes in sets.items():
                    for scheme in schemes:
                        fn = evaluate_within if scheme == "within" else evaluate_cross
                        kw = dict(subject=subject, window=window, classes=classes, **common)
                        if n_jobs > 1 or scheduler is not None:
                            calls.append(functools.partial(fn, raws, estimators, **kw))
                            continue
                        done = [0]

                        def tick(done=done):
                            done[0] += 1
                            bar.update(1)

                        bar.set_postfix_str(f"{subject} {window:g}s {len(classes)}cl {scheme}")
                        records += fn(raws, estimators, on_method_done=tick, **kw)
                        bar.update(len(estimators) - done[0])
        if calls:  # every (subject, method, window, fold) fit as one task stream
            where = scheduler or f"{n_jobs} processes"
            bar.set_postfix_str(f"{len(calls) * len(estimators)} fit-sets on {where}")
            for recs in run_calls(calls, jobs=n_jobs, scheduler=scheduler,
                                  on_group_done=lambda: bar.update(1)):
                records += recs
            bar.update(total - bar.n)
    finally:
        bar.close()
    return records


def summarize(records: Sequence[dict]) -> list[dict]:
    """Mean over subjects per method, window, class count and scheme.

    ``itr_bits_per_min`` of a summary row is computed from the mean accuracy (as the
    published tables do); ``itr_mean_of_subjects`` is the mean of per-subject ITRs.
    Records with ``accuracy=None`` (not available) are left out and counted.
    """
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        groups.setdefault((r["method"], r["window_s"], r["n_classes"], r["scheme"]), []).append(r)
    rows = []
    for (method, window, n, scheme), rs in groups.items():
        ok = [r for r in rs if r.get("accuracy") is not None]
        accs = np.array([r["accuracy"] for r in ok], float)
        mean = float(accs.mean()) if len(accs) else None
        gaze = rs[0].get("gaze_shift_s", GAZE_SHIFT_S)
        rows.append(
            {
                "method": method,
                "window_s": window,
                "n_classes": n,
                "scheme": scheme,
                "accuracy": mean,
                "accuracy_std": float(accs.std(ddof=1)) if len(accs) > 1 else None,
                "itr_bits_per_min": None if mean is None else itr_bits_per_min(mean, n, window),
                "itr_bits_per_min_gaze": None
                if mean is None
                else itr_bits_per_min(mean, n, window, gaze),
                "itr_mean_of_subjects": float(np.mean([r["itr_bits_per_min"] for r in ok]))
                if ok
                else None,
                "gaze_shift_s": gaze,
                "n_subjects": len(ok),
                "n_not_available": len(rs) - len(ok),
            }
        )
    order = {m: i for i, m in enumerate(dict.fromkeys(r["method"] for r in records))}
    rows.sort(key=lambda r: (r["scheme"], r["n_classes"], order[r["method"]], r["window_s"]))
    return rows
