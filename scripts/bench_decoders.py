"""Speed of the decoders: one decision_function call on one window, and fit times.

Prints, per registry method, the median and p99 latency of ``decision_function`` on one
1 s window ``(1, 8, 256)`` at 256 Hz (per-window filtering included) over many calls, and
the median fit time on one subject's 1 s windows (Kalunga subject01 when the data is there,
synthetic windows otherwise; calibrated methods that cut their own training windows get the
epochs of the registry's training span).

Usage: OMP_NUM_THREADS=1 python scripts/bench_decoders.py [--calls 2000]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from bci.datasets import epoch, find_recordings, load_recording
from bci.decoders import METHODS, make_decoder

ROOT = os.environ.get("SSVEP_EXO_DATA", os.path.join(os.path.dirname(__file__), "..", "..",
                                                     "shared", "data", "kalunga2016"))
SF = 256.0


def training_data(span) -> tuple[np.ndarray, np.ndarray, str]:
    """Training data of subject01 (or synthetic): 1 s windows 2 s after each cue, or the
    epochs ``[cue + span[0], cue + span[1])`` for decoders that cut their own windows."""
    start, n = (2.0, 256) if span is None else (span[0], int(round((span[1] - span[0]) * SF)))
    found = find_recordings(ROOT) if Path(ROOT).is_dir() else {}
    if found.get("subject01"):
        parts = [epoch(load_recording(p), tmin=start, window_s=n / SF)
                 for p in found["subject01"]]
        return (np.concatenate([x for x, _, _ in parts]),
                np.concatenate([y for _, y, _ in parts]), "Kalunga subject01")
    rng = np.random.default_rng(0)
    y = np.repeat(["13.0Hz", "17.0Hz", "21.0Hz", "rest"], 16)
    t = np.arange(n) / SF
    X = rng.standard_normal((len(y), 8, n))
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
        span = info["train_span"] if info["calibrated"] else None
        X, y, src = training_data(span)
        extra = {} if span is None else {"window_s": 1.0}  # cuts its own 1 s windows
        fits = []
        for _ in range(3):
            est = make_decoder(name, sfreq=SF, freqs=(13.0, 17.0, 21.0), **extra)
            t0 = time.perf_counter()
            est.fit(X, y)
            fits.append(time.perf_counter() - t0)
        x1 = np.ascontiguousarray(X[:1, :, :256])  # one 1 s window
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
