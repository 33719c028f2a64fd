"""Shared pieces of the benchmark scripts: data, epochs, folds, filters, ITR, timing.

Every pipeline (peers and ours) receives windows cut here, from the same trials, with the
same folds, so the accuracy tables compare like with like.

Protocol (see ``docs/benchmarks.md``):

- Kalunga2016 FIF files read directly with MNE (no download); events from ``*-eve.fif``;
  codes 1 rest, 2 13 Hz, 3 21 Hz, 4 17 Hz.
- subject07's ``record-[2012.07.11-15.33.08]`` (an exact copy of subject03's session) is
  dropped everywhere; every other session is kept.
- window = [2, 2 + T) s after the cue, exactly ``round(T * sfreq)`` samples.
- within-session: all sessions of a subject pooled, ``StratifiedKFold(5, shuffle=True,
  random_state=42)``; cross-session: train on one session, test on another, every ordered
  pair; accuracy per subject = mean over folds / pairs.
- protocols: ``window`` = each window filtered on its own (as online); ``whole`` = the
  continuous recording filtered first, then cut (as MOABB does).
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bci.evaluation.harness import N_FOLDS, SEED, session_pairs, trial_folds
from bci.evaluation.metrics import itr_bits_per_min

REPO = Path(__file__).resolve().parents[1]
BENCH_DIR = Path(os.environ.get("SSVEP_EXO_BENCH_DIR", REPO / "bench")).resolve()
CACHE_DIR = BENCH_DIR / "cache"
DATA_ROOT = Path(
    os.environ.get("SSVEP_EXO_DATA", REPO.parent / "shared" / "data" / "kalunga2016")
).resolve()

SFREQ = 256.0
FREQS = (13.0, 17.0, 21.0)
CODE_TO_LABEL = {1: "rest", 2: "13.0Hz", 3: "21.0Hz", 4: "17.0Hz"}
LABELS_3 = ("13.0Hz", "17.0Hz", "21.0Hz")
LABELS_4 = ("13.0Hz", "17.0Hz", "21.0Hz", "rest")
DUPLICATE_SESSIONS = {("subject07", "record-[2012.07.11-15.33.08]")}
TMIN = 2.0
WINDOWS = (0.5, 1.0, 2.0)
CLASS_COUNTS = (3, 4)
SCHEMES = ("within", "cross")
PROTOCOLS = ("window", "whole")


@dataclass
class Session:
    """One recording: continuous data (file units), cue sample indices and labels."""

    subject: str
    name: str
    data: np.ndarray  # (n_channels, n_times) float64
    sfreq: float
    ch_names: list[str]
    cue_samples: np.ndarray  # (n_trials,) int
    labels: np.ndarray  # (n_trials,) str


def load_sessions(
    root: Path = DATA_ROOT, subjects: list[str] | None = None, max_sessions: int | None = None
) -> dict[str, list[Session]]:
    """Read the Kalunga FIF files directly (never downloads anything)."""
    import mne

    out: dict[str, list[Session]] = {}
    for subj_dir in sorted(p for p in Path(root).iterdir() if p.is_dir()):
        if subjects is not None and subj_dir.name not in subjects:
            continue
        sessions = []
        for raw_path in sorted(subj_dir.glob("*_raw.fif")):
            name = raw_path.name[: -len("_raw.fif")]
            if (subj_dir.name, name) in DUPLICATE_SESSIONS:
                continue
            raw = mne.io.read_raw_fif(raw_path, preload=True, verbose="error")
            ev = mne.read_events(raw_path.with_name(name + "-eve.fif"), verbose="error")
            keep = np.isin(ev[:, 2], list(CODE_TO_LABEL))
            ev = ev[keep]
            sessions.append(
                Session(
                    subject=subj_dir.name,
                    name=name,
                    data=raw.get_data().astype(np.float64),
                    sfreq=float(raw.info["sfreq"]),
                    ch_names=list(raw.ch_names),
                    cue_samples=ev[:, 0] - raw.first_samp,
                    labels=np.array([CODE_TO_LABEL[c] for c in ev[:, 2]]),
                )
            )
            if max_sessions and len(sessions) >= max_sessions:
                break
        if sessions:
            out[subj_dir.name] = sessions
    return out


def labels_for(n_classes: int) -> tuple[str, ...]:
    """The labels used for a class count (3 = targets only, 4 = targets + rest)."""
    return LABELS_3 if n_classes == 3 else LABELS_4


def cut(
    data: np.ndarray,
    sess: Session,
    *,
    window_s: float,
    n_classes: int,
    tmin: float = TMIN,
    extra: int = 0,
    allow_outside: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Cut ``round(window*sfreq) + extra`` samples starting ``tmin`` s after each cue.

    With ``allow_outside`` a window that runs past the recording is returned filled with NaN
    (training-window augmentation leaves those out, as ``bci.datasets.epoch`` does).
    """
    keep = np.isin(sess.labels, labels_for(n_classes))
    n = int(round(window_s * sess.sfreq)) + extra
    start = sess.cue_samples[keep] + int(round(tmin * sess.sfreq))
    idx = start[:, None] + np.arange(n)[None, :]
    outside = (idx.max(axis=1) >= data.shape[-1]) | (idx.min(axis=1) < 0)
    if outside.any() and not allow_outside:
        raise ValueError(f"window [{tmin}, {tmin + window_s}) s runs outside {sess.name}")
    idx = np.clip(idx, 0, data.shape[-1] - 1)
    X = np.ascontiguousarray(np.moveaxis(data[:, idx], 1, 0))  # (n_trials, n_ch, n)
    X[outside] = np.nan
    return X, sess.labels[keep]


# ----------------------------------------------------------------------------- filters
def _iir_params(sfreq: float) -> dict:
    return dict(order=4, ftype="butter", output="sos")


def bandpass(x: np.ndarray, sfreq: float, l_freq: float, h_freq: float) -> np.ndarray:
    """MNE's zero-phase IIR band-pass (Butterworth order 4, forward-backward), as MOABB uses.

    Works on a continuous recording ``(n_ch, n_times)`` or on windows
    ``(n_trials, n_ch, n_times)`` (each window filtered on its own).
    """
    import mne

    return mne.filter.filter_data(
        x, sfreq, l_freq, h_freq, method="iir", iir_params=_iir_params(sfreq), verbose="error"
    )


def filter_bank_fb(x: np.ndarray, sfreq: float, freqs=FREQS, half_width: float = 0.5):
    """pyRiemann/MOABB FilterBankSSVEP: one narrow band per stimulus frequency, stacked.

    Returns ``(..., n_bands * n_ch, n_times)`` (MOABB's ExtendedSSVEPSignal layout).
    """
    bands = [bandpass(x, sfreq, f - half_width, f + half_width) for f in freqs]
    return np.concatenate(bands, axis=-2)


PREFILTERS: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "bp10-42": lambda x, s: bandpass(x, s, 10.0, 42.0),
    "fb0.5": lambda x, s: filter_bank_fb(x, s, FREQS, 0.5),
    "none": lambda x, s: x,
}


class EpochSource:
    """Windows for every (subject, prefilter, protocol), with whole-recording filtering cached."""

    def __init__(self, sessions: dict[str, list[Session]]):
        self.sessions = sessions
        self._filtered: dict[tuple[str, str, str], np.ndarray] = {}

    def _continuous(self, sess: Session, prefilter: str) -> np.ndarray:
        key = (sess.subject, sess.name, prefilter)
        if key not in self._filtered:
            self._filtered[key] = PREFILTERS[prefilter](sess.data, sess.sfreq)
        return self._filtered[key]

    def windows(
        self, sess: Session, *, prefilter: str, protocol: str, **kw
    ) -> tuple[np.ndarray, np.ndarray]:
        """Filtered windows of one session under one protocol; the other keywords
        (``window_s``, ``n_classes``, ``tmin``, ``extra``, ``allow_outside``) and the NaN rows
        as in :func:`cut`."""
        if protocol == "whole":
            return cut(self._continuous(sess, prefilter), sess, **kw)
        X, y = cut(sess.data, sess, **kw)
        ok = ~np.isnan(X[:, 0, 0])
        if ok.all():
            return PREFILTERS[prefilter](X, sess.sfreq), y
        Xf = np.full(X.shape[:1] + PREFILTERS[prefilter](X[:1], sess.sfreq).shape[1:], np.nan)
        Xf[ok] = PREFILTERS[prefilter](X[ok], sess.sfreq)
        return Xf, y


# ----------------------------------------------------------------------------- folds
def within_folds(y: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The project's folds (:func:`bci.evaluation.harness.trial_folds`) as index pairs."""
    folds = trial_folds(y, N_FOLDS, SEED)
    for k in range(folds.max() + 1):
        yield np.flatnonzero(folds != k), np.flatnonzero(folds == k)


#: Every ordered (train, test) pair of distinct sessions (the project's cross-session pairs).
cross_pairs = session_pairs


# ----------------------------------------------------------------------------- figures
def wolpaw_itr(p: float, n: int, t: float) -> float:
    """Wolpaw ITR in bits/min (:func:`bci.evaluation.metrics.itr_bits_per_min`)."""
    return itr_bits_per_min(p, n, t)


def time_calls(fn: Callable[[], object], n_calls: int = 300, warmup: int = 20) -> dict:
    """Median and p99 of ``fn()`` in ms over ``n_calls`` calls (after a warm-up)."""
    for _ in range(warmup):
        fn()
    ts = np.empty(n_calls)
    for i in range(n_calls):
        t0 = time.perf_counter()
        fn()
        ts[i] = time.perf_counter() - t0
    ts *= 1e3
    return {
        "median_ms": float(np.median(ts)),
        "p99_ms": float(np.percentile(ts, 99)),
        "n_calls": int(n_calls),
    }


def machine_info() -> dict:
    """CPU model, core count, Python and OS, for the results header."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "blas_threads": os.environ.get("OMP_NUM_THREADS", "unset"),
        "loadavg": " ".join(f"{v:.1f}" for v in os.getloadavg()),
    }


def versions(names=("numpy", "scipy", "mne", "scikit-learn", "pyriemann", "moabb", "metabci",
                    "pylsl")) -> dict:
    """Installed versions of the packages the benchmark uses (None when missing)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for n in names:
        try:
            out[n] = version(n)
        except PackageNotFoundError:
            out[n] = None
    return out


def save_json(path: Path, obj) -> None:
    """Write JSON atomically (so an interrupted run never leaves half a cache file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=float))
    tmp.replace(path)


def load_json(path: Path):
    """Read a JSON file written by :func:`save_json`."""
    return json.loads(Path(path).read_text())
