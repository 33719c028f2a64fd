"""Speed of the decoders: one decision_function call on one window, and fit times.

Prints, per registry method, the median and p99 latency of ``decision_function`` on one
1 s window ``(1, 8, 256)`` at 256 Hz (per-window filtering included) over many calls, and
the median fit time on one subject's 1 s windows (Kalunga subject01 when the data is there,
synthetic windows otherwise; calibrated methods with their training-window offsets).

Usage: OMP_NUM_THREADS=1 python scripts/bench_decoders.py [--calls 2000]
"""

from __future__ import annotations

import argparse
import glob
import os
import time

import numpy as np

from bci.decoders import METHODS, make_decoder

ROOT = os.environ.get("SSVEP_EXO_DATA", os.path.join(os.path.dirname(__file__), "..", "..",
                                                     "shared", "data", "kalunga2016"))
CODES = {1: "rest", 2: "13.0Hz", 3: "21.0Hz", 4: "17.0Hz"}
SF = 256.0


def training_windows(offsets) -> tuple[np.ndarray, np.ndarray, str]:
    """Return 1 s training windows of subject01 (or synthetic ones) and their labels."""
    offs = (0.0, *(offsets or ()))
    files = sorted(glob.glob(os.path.join(ROOT, "subject01", "*_raw.fif")))
    if files:
        import mne

        X, y = [], []
        for f in files:
            data = mne.io.read_raw_fif(f, preload=True, verbose="error").get_data()
            for s, _, c in mne.read_events(f.replace("_raw.fif", "-eve.fif"), verbose="error"):
                for o in offs:
                    a = s + int(round((2.0 + o) * SF))
                    if a + 256 <= data.shape[1]:
                        X.append(data[:, a:a + 256])
                        y.append(CODES[int(c)])
        return np.asarray(X), np.asarray(y), "Kalunga subject01"
    rng = np.random.default_rng(0)
    y = np.repeat(["13.0Hz", "17.0Hz", "21.0Hz", "rest"], 16 * len(offs))
    t = np.arange(256) / SF
    X = rng.standard_normal((len(y), 8, 256))
    for i, lab in enumerate(y):
        if lab != "rest":
            X[i] += 0.5 * np.sin(2 * np.pi * float(lab[:-2]) * t + rng.uniform(0, 6.3))
    return X, y, "synthetic"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=2000)
    a = p.parse_args()
    print(f"{'method':12s} {'classes':>7s} {'median ms':>10s} {'p99 ms':>8s} {'fit ms':>8s} "
          f"{'n_train':>7s}  data")
    for name, info in METHODS.items():
        X, y, src = training_windows(info["train_offsets"] if info["calibrated"] else None)
        fits = []
        for _ in range(3):
            est = make_decoder(name, sfreq=SF, freqs=(13.0, 17.0, 21.0))
            t0 = time.perf_counter()
            est.fit(X, y)
            fits.append(time.perf_counter() - t0)
        x1 = np.ascontiguousarray(X[:1])
        for _ in range(20):
            est.decision_function(x1)
        ts = np.empty(a.calls)
        for i in range(a.calls):
            t0 = time.perf_counter()
            est.decision_function(x1)
            ts[i] = time.perf_counter() - t0
        print(f"{name:12s} {len(est.classes_):7d} {np.median(ts) * 1e3:10.3f} "
              f"{np.percentile(ts, 99) * 1e3:8.3f} {np.median(fits) * 1e3:8.1f} {len(X):7d}  {src}")


if __name__ == "__main__":
    main()
