"""Accuracy experiments for bci.decoders on the Kalunga2016 recordings (subjects 01-08).

Protocol (issue 2): windows [2 + offset, 2 + offset + T) s after each cue, each window
filtered on its own by the decoder; within-subject StratifiedKFold(5, shuffle=True,
random_state=42) over trials with all sessions of a subject pooled; cross-session = train on
one session, test on another of the same subject (subject07's duplicate of subject03's
session left out). Calibrated decoders may train on extra windows cut at ``train_offsets``
inside each TRAINING trial only (folds stay by trial).

Usage: OMP_NUM_THREADS=1 python scripts/explore_decoders.py [method ...] [--windows 1,2]
       [--classes 3,4] [--scheme within|cross|rest-time] [--offsets=-1,0.5] [--params "k=v;k=v"]
"""

from __future__ import annotations

import argparse
import glob
import os
import time

import mne
import numpy as np
from sklearn.model_selection import StratifiedKFold

from bci.decoders import METHODS, make_decoder

ROOT = os.environ.get("SSVEP_EXO_DATA", os.path.join(os.path.dirname(__file__), "..", "..",
                                                     "shared", "data", "kalunga2016"))
CODES = {1: "rest", 2: "13.0Hz", 3: "21.0Hz", 4: "17.0Hz"}
DUPLICATE = ("subject07", "record-[2012.07.11-15.33.08]")
SFREQ = 256.0
_CACHE: dict = {}


def load_subject(subject: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Return ``[(session_name, data (8, n), events)]`` (cached in memory)."""
    if subject not in _CACHE:
        out = []
        for f in sorted(glob.glob(os.path.join(ROOT, f"subject{subject:02d}", "*_raw.fif"))):
            raw = mne.io.read_raw_fif(f, preload=True, verbose="error")
            ev = mne.read_events(f.replace("_raw.fif", "-eve.fif"), verbose="error")
            out.append((os.path.basename(f).replace("_raw.fif", ""), raw.get_data(), ev))
        _CACHE[subject] = out
    return _CACHE[subject]


def cut(data, events, window, offsets, classes):
    """Return X (n_trials, n_offsets, 8, n), y, trial time (s) for the wanted classes."""
    n = int(round(window * SFREQ))
    X, y, tt = [], [], []
    for s, _, c in events:
        lab = CODES[int(c)]
        if classes == 3 and lab == "rest":
            continue
        starts = [s + int(round((2.0 + o) * SFREQ)) for o in offsets]
        if max(starts) + n > data.shape[1] or min(starts) < 0:
            continue
        X.append(np.stack([data[:, a:a + n] for a in starts]))
        y.append(lab)
        tt.append(s / SFREQ)
    return np.asarray(X), np.asarray(y), np.asarray(tt)


def run(method, window, classes, scheme="within", subjects=range(1, 9), params=None,
        offsets=None, verbose=True):
    """Return per-subject accuracies for one configuration."""
    info = METHODS[method]
    if offsets is None:
        offsets = info["train_offsets"] or ()
    offs = (0.0, *[o for o in offsets if o != 0.0])
    accs = []
    for subj in subjects:
        sessions = load_subject(subj)
        if scheme == "within":
            parts = [cut(d, e, window, offs, classes) for _, d, e in sessions]
            X = np.concatenate([p[0] for p in parts])
            y = np.concatenate([p[1] for p in parts])
            skf = StratifiedKFold(5, shuffle=True, random_state=42)
            fold_acc = []
            for tr, te in skf.split(X[:, 0, 0, 0], y):
                Xtr = X[tr].reshape(-1, *X.shape[2:])
                ytr = np.repeat(y[tr], X.shape[1])
                est = make_decoder(method, sfreq=SFREQ, freqs=(13.0, 17.0, 21.0), **(params or {}))
                est.fit(Xtr, ytr)
                fold_acc.append(np.mean(est.predict(X[te, 0]) == y[te]))
            accs.append(np.mean(fold_acc))
        else:
            ss = [s for s in sessions if not (subj == 7 and s[0] == DUPLICATE[1])]
            pair_acc = []
            for i, (_, dtr, etr) in enumerate(ss):
                Xtr, ytr, _ = cut(dtr, etr, window, offs, classes)
                est = make_decoder(method, sfreq=SFREQ, freqs=(13.0, 17.0, 21.0), **(params or {}))
                est.fit(Xtr.reshape(-1, *Xtr.shape[2:]), np.repeat(ytr, Xtr.shape[1]))
                for j, (_, dte, ete) in enumerate(ss):
                    if i != j:
                        Xte, yte, _ = cut(dte, ete, window, (0.0,), classes)
                        pair_acc.append(np.mean(est.predict(Xte[:, 0]) == yte))
            accs.append(np.mean(pair_acc))
        if verbose:
            print(f"  s{subj:02d} {accs[-1] * 100:5.1f}", end="", flush=True)
    if verbose:
        print()
    return np.asarray(accs)


def rest_time(method, window, subjects=range(1, 9)):
    """Cross-session: does P(rest) follow trial time among the test session's target trials?

    Prints the Spearman correlation between P(rest) and trial onset (mean, median, range over
    train/test session pairs), rest recall and the rate of false "rest" on target trials.
    """
    from scipy.stats import spearmanr

    offs = (0.0, *(METHODS[method]["train_offsets"] or ()))
    rs, recalls, fprs = [], [], []
    for subj in subjects:
        ss = [s for s in load_subject(subj) if not (subj == 7 and s[0] == DUPLICATE[1])]
        for i, (_, dtr, etr) in enumerate(ss):
            Xtr, ytr, _ = cut(dtr, etr, window, offs, 4)
            est = make_decoder(method, sfreq=SFREQ, freqs=(13.0, 17.0, 21.0))
            est.fit(Xtr.reshape(-1, *Xtr.shape[2:]), np.repeat(ytr, Xtr.shape[1]))
            ri = list(est.classes_).index("rest")
            for j, (_, dte, ete) in enumerate(ss):
                if i == j:
                    continue
                Xte, yte, tt = cut(dte, ete, window, (0.0,), 4)
                p_rest = est.predict_proba(Xte[:, 0])[:, ri]
                pred = est.predict(Xte[:, 0])
                f = yte != "rest"
                rs.append(spearmanr(p_rest[f], tt[f])[0])
                recalls.append(np.mean(pred[~f] == "rest"))
                fprs.append(np.mean(pred[f] == "rest"))
    rs = np.asarray(rs)
    print(f"{method} {window:g}s cross-session: Spearman(P(rest), time | target trials) mean "
          f"{np.nanmean(rs):+.3f} median {np.nanmedian(rs):+.3f} range [{np.nanmin(rs):+.2f}, "
          f"{np.nanmax(rs):+.2f}] n={len(rs)}; rest recall {np.mean(recalls) * 100:.1f} %, "
          f"false rest on targets {np.mean(fprs) * 100:.1f} %")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("methods", nargs="*", default=["fbcca"])
    p.add_argument("--windows", default="1,2")
    p.add_argument("--classes", default="3,4")
    p.add_argument("--scheme", default="within", choices=["within", "cross", "rest-time"])
    p.add_argument("--offsets", default=None, help="training offsets, e.g. -1,-0.5,0.5")
    p.add_argument("--params", default="", help="k=v,... extra decoder params (python literals)")
    a = p.parse_args()
    params = {}
    for kv in filter(None, a.params.split(";")):
        k, v = kv.split("=", 1)
        params[k] = eval(v)  # noqa: S307 - developer script
    if a.scheme == "rest-time":
        for m in a.methods:
            for w in map(float, a.windows.split(",")):
                rest_time(m, w)
        return
    for m in a.methods:
        for nc in map(int, a.classes.split(",")):
            for w in map(float, a.windows.split(",")):
                t0 = time.perf_counter()
                print(f"{m} {params or ''} {nc}-class {w:g}s {a.scheme}:")
                offs = None if a.offsets is None else [float(o) for o in a.offsets.split(',') if o]
                acc = run(m, w, nc, a.scheme, params=params, offsets=offs)
                print(f"  => mean {acc.mean() * 100:.1f} % (std {acc.std(ddof=1) * 100:.1f}) "
                      f"[{time.perf_counter() - t0:.0f} s]")


if __name__ == "__main__":
    main()
