"""Train the population priors shipped with the package (``bci/decoders/priors/``).

The prior of :class:`bci.decoders.population.PopulationRessFBCCA` is RESS-FBCCA trained on
the pooled calibration windows of every dev subject (Kalunga 2016, subjects 01-08, every
session but subject07's copy of subject03's): the windows the deployed calibration trains
on (``window_s`` long, every 0.5 s from 1 s to 5 s after each cue), all four classes. One
prior per window length.

Figures for a new user are measured leave-one-subject-out by ``scripts/population_curve.py``
(the prior there never saw the user); the shipped prior is trained on everyone.

Usage: OMP_NUM_THREADS=1 python scripts/train_population.py [--windows 1,2] [--data PATH]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bci.datasets import epoch, find_recordings, load_recording  # noqa: E402
from bci.decoders.population import PRIOR_DIR, PopulationRessFBCCA  # noqa: E402

DATA = Path(os.environ.get("SSVEP_EXO_DATA", REPO.parent / "shared" / "data" / "kalunga2016"))
SPAN = (1.0, 5.0)
STRIDE = 0.5


def training_windows(raw, window: float):
    """Windows of ``window`` s every ``STRIDE`` s inside ``[cue + SPAN[0], cue + SPAN[1])``."""
    starts = np.arange(SPAN[0], SPAN[1] - window + 1e-9, STRIDE)
    X, y, _, _ = epoch(raw, tmin=float(starts[0]), window_s=window,
                       offsets=[float(s) for s in starts])
    return X, np.asarray(y).astype(str)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--windows", default="1,2")
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--out", default=str(PRIOR_DIR))
    a = ap.parse_args()
    found = find_recordings(a.data)  # drops subject07's copy of subject03's session
    raws = {s: [load_recording(p) for p in paths] for s, paths in sorted(found.items())}
    ch_names = raws[next(iter(raws))][0].ch_names
    for w in (float(x) for x in a.windows.split(",")):
        Xs, ys = [], []
        for sessions in raws.values():
            for raw in sessions:
                X, y = training_windows(raw, w)
                Xs.append(X)
                ys.append(y)
        X, y = np.concatenate(Xs), np.concatenate(ys)
        dec = PopulationRessFBCCA(prior=None, sfreq=float(raws[next(iter(raws))][0].info[
            "sfreq"])).fit(X, y)
        path = Path(a.out) / f"kalunga2016_w{w:g}.npz"
        dec.save_prior(
            path, ch_names=list(ch_names), subjects=sorted(raws),
            n_sessions=sum(len(v) for v in raws.values()),
            training=f"windows every {STRIDE:g} s from {SPAN[0]:g} to {SPAN[1]:g} s after "
                     "each cue",
            source="Kalunga 2016 SSVEP exoskeleton recordings (CC0), subjects 01-08",
            created=dt.date.today().isoformat())
        print(f"{path}: {len(y)} windows, classes {list(dec.classes_)}")


if __name__ == "__main__":
    main()
