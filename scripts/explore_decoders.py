"""Accuracy experiments for bci.decoders on the Kalunga2016 recordings (subjects 01-08).

Everything goes through the project's evaluation harness (:mod:`bci.evaluation`): windows
[2, 2 + T) s after each cue, each filtered on its own by the decoder; within-subject
StratifiedKFold(5, shuffle=True, random_state=42) over trials with a subject's sessions
pooled; cross-session = calibrate on one session, test on another (every ordered pair;
subject07's copy of subject03's session dropped by ``find_recordings``). Decoders that cut
their own training windows get the registry's training span (``--span`` to change it).

``--scheme rest-time`` asks, cross-session, whether P(rest) follows the trial's time in the
test session (every Kalunga session has its rest trials first).

Usage: OMP_NUM_THREADS=1 python scripts/explore_decoders.py [method ...] [--windows 1,2]
       [--classes 3,4] [--scheme within|cross|rest-time] [--span 1,5] [--params "k=v;k=v"]
"""

from __future__ import annotations

import argparse
import ast
import os
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from bci.datasets import find_recordings, load_recording
from bci.decoders import METHODS, make_decoder
from bci.evaluation import class_sets, evaluate_cross, evaluate_within
from bci.evaluation.harness import Trials, session_pairs
from bci.labels import REST_LABEL

ROOT = Path(os.environ.get("SSVEP_EXO_DATA", Path(__file__).resolve().parents[2] / "shared"
                           / "data" / "kalunga2016"))


def run(method, window_s, n_classes, scheme="within", params=None, span=None, verbose=True):
    """Per-subject accuracies of one configuration (mean over folds or session pairs)."""
    span = METHODS[method]["train_span"] if span is None else span
    est = make_decoder(method, sfreq=256.0, freqs=(13.0, 17.0, 21.0), **(params or {}))
    fn = evaluate_within if scheme == "within" else evaluate_cross
    accs = []
    for subject, paths in sorted(find_recordings(ROOT).items()):
        raws = [load_recording(p) for p in paths]
        classes = class_sets(["13.0Hz", "17.0Hz", "21.0Hz", REST_LABEL], [n_classes])[n_classes]
        (rec,) = fn(raws, {method: est}, subject=subject, window_s=window_s, classes=classes,
                    train_spans={method: span})
        accs.append(rec["accuracy"])
        if verbose:
            print(f"  {subject[-2:]} {accs[-1] * 100:5.1f}", end="", flush=True)
    if verbose:
        print()
    return np.asarray(accs)


def rest_time(method, window_s, span=None):
    """Cross-session: does P(rest) follow trial time among the test session's target trials?

    Prints the Spearman correlation between P(rest) and trial onset (mean, median, range over
    calibration/test session pairs), rest recall and the rate of false "rest" on targets.
    """
    span = METHODS[method]["train_span"] if span is None else span
    rs, recalls, fprs = [], [], []
    for _, paths in sorted(find_recordings(ROOT).items()):
        raws = [load_recording(p) for p in paths]
        tr = Trials.build(raws, tmin=2.0, window_s=window_s, train_span=span)
        for a, b in session_pairs(len(raws)):
            est = tr.fit(make_decoder(method, sfreq=256.0, freqs=(13.0, 17.0, 21.0)),
                         tr.trial[tr.session == a])
            test = tr.session == b
            ri = list(est.classes_).index(REST_LABEL)
            p_rest = est.predict_proba(tr.X[test])[:, ri]
            pred = np.asarray(est.predict(tr.X[test])).astype(str)
            f = tr.y[test] != REST_LABEL
            rs.append(spearmanr(p_rest[f], tr.cue[test][f])[0])
            recalls.append(np.mean(pred[~f] == REST_LABEL))
            fprs.append(np.mean(pred[f] == REST_LABEL))
    rs = np.asarray(rs)
    print(f"{method} {window_s:g}s cross-session: Spearman(P(rest), time | target trials) mean "
          f"{np.nanmean(rs):+.3f} median {np.nanmedian(rs):+.3f} range [{np.nanmin(rs):+.2f}, "
          f"{np.nanmax(rs):+.2f}] n={len(rs)}; rest recall {np.mean(recalls) * 100:.1f} %, "
          f"false rest on targets {np.mean(fprs) * 100:.1f} %")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("methods", nargs="*", default=["fbcca"])
    p.add_argument("--windows", default="1,2")
    p.add_argument("--classes", default="3,4")
    p.add_argument("--scheme", default="within", choices=["within", "cross", "rest-time"])
    p.add_argument("--span", default=None, help="training epochs, s after the cue, e.g. 1,5")
    p.add_argument("--params", default="", help="k=v;... extra decoder params (literals)")
    a = p.parse_args()
    params = {}
    for kv in filter(None, a.params.split(";")):
        k, v = kv.split("=", 1)
        params[k] = ast.literal_eval(v)
    span = None if a.span is None else tuple(float(v) for v in a.span.split(","))
    if a.scheme == "rest-time":
        for m in a.methods:
            for w in map(float, a.windows.split(",")):
                rest_time(m, w, span)
        return
    for m in a.methods:
        for nc in map(int, a.classes.split(",")):
            for w in map(float, a.windows.split(",")):
                t0 = time.perf_counter()
                print(f"{m} {params or ''} {nc}-class {w:g}s {a.scheme}:")
                acc = run(m, w, nc, a.scheme, params=params, span=span)
                print(f"  => mean {acc.mean() * 100:.1f} % (std {acc.std(ddof=1) * 100:.1f}) "
                      f"[{time.perf_counter() - t0:.0f} s]")


if __name__ == "__main__":
    main()
