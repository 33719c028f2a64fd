"""Accuracy, ITR and timing of the field's SSVEP pipelines and ours, on identical epochs/folds.

Peers (run in ``.venv-bench``): MOABB ``SSVEP_CCA``, ``SSVEP_TRCA``, ``SSVEP_MsetCCA``;
pyRiemann filter-bank covariance (+-0.5 Hz bands) + TangentSpace + LogisticRegression, and
+ MDM; MetaBCI FBCCA, eTRCA, TDCA. Ours: every method of ``bci.decoders.METHODS``.

Usage::

    python scripts/bench_peers.py [--side peers|ours|all] [--subjects subject01,...]
        [--windows 0.5,1,2] [--classes 3,4] [--schemes within,cross]
        [--protocols window,whole] [--methods NAME,...] [--jobs N] [--scheduler ADDRESS]
        [--reuse] [--no-timing]

Results are cached per (library, method, protocol) as ``bench/cache/acc_*.json`` and
``bench/cache/timing_*.json``; ``--reuse`` keeps cache files that exist, otherwise everything
is recomputed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _bench_common as bc  # noqa: E402

warnings.filterwarnings("ignore")
SCALE = 1e6  # numpy inputs are scaled like MOABB's arrays (every method is scale-invariant)


# ----------------------------------------------------------------------------- specs
@dataclass
class Pipeline:
    """A pipeline under test: how to build it and what data it receives."""

    library: str
    method: str
    family: str
    make: Callable[[int, float], object]  # (n_classes, window_s) -> fit/predict object
    prefilter: dict = field(default_factory=lambda: {"window": "bp10-42", "whole": "bp10-42"})
    supports_rest: bool = True
    extra_train: int = 0  # extra samples at the end of training windows (TDCA)
    train_offsets: tuple = ()  # extra training windows, offsets (s) from TMIN
    filter_note: str = ""

    @property
    def key(self) -> str:
        return f"{self.library}_{self.method}".replace(" ", "").replace("/", "-")


def _freq_str(label: str) -> str:
    return "rest" if label == "rest" else f"{float(label[:-2]):g}"


def _from_freq_str(s) -> str:
    s = str(s)
    return "rest" if s == "rest" else f"{float(s):.1f}Hz"


class _MoabbWrap:
    """MOABB SSVEP pipelines fit only on mne.Epochs with frequency-string labels."""

    def __init__(self, est):
        self.est = est

    def fit(self, X, y):
        import mne

        ys = np.array([_freq_str(v) for v in y])
        names = sorted(set(ys))
        event_id = {n: i + 1 for i, n in enumerate(names)}
        events = np.c_[np.arange(len(ys)) * 10000, np.zeros(len(ys), int),
                       [event_id[v] for v in ys]]
        info = mne.create_info([f"EEG{i}" for i in range(X.shape[1])], bc.SFREQ, "eeg")
        ep = mne.EpochsArray(X, info, events=events, event_id=event_id, tmin=bc.TMIN,
                             verbose="error")
        self.est.fit(ep, ys)
        return self

    def predict(self, X):
        return np.array([_from_freq_str(p) for p in self.est.predict(X)])


class _ArrayWrap:
    """numpy pipelines (pyRiemann, MetaBCI): scaled input, labels coded as the peer needs."""

    def __init__(self, est, *, needs_yf=False, index_output=False, window=1.0, pad=0,
                 n_harm=2):
        self.est, self.needs_yf, self.index_output = est, needs_yf, index_output
        self.window, self.pad, self.n_harm = window, pad, n_harm

    def _yf(self, n_samples):
        t = np.arange(n_samples) / bc.SFREQ  # not MetaBCI's linspace (off by N/(N-1))
        return np.stack([
            np.concatenate([[np.sin(2 * np.pi * h * f * t), np.cos(2 * np.pi * h * f * t)]
                            for h in range(1, self.n_harm + 1)])
            for f in bc.FREQS
        ])

    def fit(self, X, y):
        y = np.asarray(y)
        self.labels_ = np.array(sorted(set(y)))  # LABELS order: 13, 17, 21, rest
        yi = np.searchsorted(self.labels_, y)
        Xs = np.array(X * SCALE)
        if self.needs_yf:
            self.est.fit(Xs, yi, Yf=self._yf(Xs.shape[-1] - self.pad))
        else:
            self.est.fit(Xs, yi)
        return self

    def predict(self, X):
        Xs = np.array(X * SCALE)
        if self.pad:
            Xs = np.concatenate([Xs, np.zeros(Xs.shape[:-1] + (self.pad,))], axis=-1)
        return self.labels_[np.asarray(self.est.predict(Xs)).astype(int)]


def _metabci_fb():
    from metabci.brainda.algorithms.decomposition.base import generate_filterbank

    wp = [(11, 42), (24, 42), (37, 42)]  # 3 sub-bands (the 3rd pass band is 37-42 Hz)
    ws = [(9, 46), (20, 46), (33, 46)]
    fb = generate_filterbank(wp, ws, srate=int(bc.SFREQ))
    w = np.array([(m + 1) ** -1.25 + 0.25 for m in range(len(wp))])
    return fb, w


def peer_pipelines() -> list[Pipeline]:
    """The eight peer pipelines (imports happen inside the factories)."""

    def moabb_cca(nc, win):
        from moabb.pipelines import SSVEP_CCA

        return _MoabbWrap(SSVEP_CCA(n_harmonics=2))

    def moabb_trca(nc, win):
        from moabb.pipelines import SSVEP_TRCA

        return _MoabbWrap(SSVEP_TRCA(n_fbands=3))

    def moabb_msetcca(nc, win):
        from moabb.pipelines import SSVEP_MsetCCA

        return _MoabbWrap(SSVEP_MsetCCA(n_filters=1))

    def pyr(clf):
        def make(nc, win):
            from pyriemann.classification import MDM
            from pyriemann.estimation import Covariances
            from pyriemann.tangentspace import TangentSpace
            from sklearn.linear_model import LogisticRegression
            from sklearn.pipeline import make_pipeline

            if clf == "mdm":
                est = make_pipeline(Covariances("lwf"), MDM())
            else:
                est = make_pipeline(Covariances("lwf"), TangentSpace(),
                                    LogisticRegression(max_iter=1000))
            return _ArrayWrap(est)

        return make

    def mb_fbcca(nc, win):
        from metabci.brainda.algorithms.decomposition import FBSCCA

        fb, w = _metabci_fb()
        return _ArrayWrap(FBSCCA(fb, n_components=1, filterweights=w, n_jobs=1),
                          needs_yf=True, index_output=True)

    def mb_etrca(nc, win):
        from metabci.brainda.algorithms.decomposition import TRCA

        return _ArrayWrap(TRCA(n_components=1, ensemble=True, n_jobs=1))

    def mb_tdca(nc, win):
        from metabci.brainda.algorithms.decomposition import TDCA

        return _ArrayWrap(TDCA(padding_len=5, n_components=8), needs_yf=True, pad=5)

    fb = {"window": "fb0.5", "whole": "fb0.5"}
    bp_note = "10-42 Hz Butterworth-4 zero-phase band-pass (1 band)"
    fb_note = "3 bands 13/17/21 +-0.5 Hz Butterworth-4 zero-phase"
    return [
        Pipeline("moabb", "SSVEP_CCA", "CCA (training-free)", moabb_cca, supports_rest=False,
                 filter_note=bp_note),
        Pipeline("moabb", "SSVEP_TRCA", "template (phase-locked)", moabb_trca,
                 supports_rest=False, filter_note=bp_note),
        Pipeline("moabb", "SSVEP_MsetCCA", "template (phase-locked)", moabb_msetcca,
                 filter_note=bp_note),
        Pipeline("pyriemann", "FBCov+TS+LR", "calibrated phase-invariant", pyr("lr"),
                 prefilter=fb, filter_note=fb_note),
        Pipeline("pyriemann", "FBCov+MDM", "calibrated phase-invariant", pyr("mdm"),
                 prefilter=fb, filter_note=fb_note),
        Pipeline("metabci", "FBCCA", "CCA (training-free)", mb_fbcca, supports_rest=False,
                 filter_note=bp_note),
        Pipeline("metabci", "eTRCA", "template (phase-locked)", mb_etrca, filter_note=bp_note),
        Pipeline("metabci", "TDCA", "template (phase-locked)", mb_tdca, supports_rest=False,
                 extra_train=5, filter_note=bp_note),
    ]


class _OursWrap:
    def __init__(self, est):
        self.est = est

    def fit(self, X, y):
        self.est.fit(X, y)
        return self

    def predict(self, X):
        return np.array([str(v) for v in self.est.predict(X)])


def ours_pipelines(methods: list[str] | None = None) -> list[Pipeline]:
    """Every method of ``bci.decoders.METHODS`` (raw windows in; the decoder filters)."""
    from bci import decoders

    out = []
    names = methods or list(decoders.METHODS)
    for m in names:
        info = decoders.METHODS[m]
        cal = bool(info.get("calibrated", True))
        pinv = bool(info.get("phase_invariant", False))
        family = ("CCA (training-free)" if not cal else
                  "calibrated phase-invariant" if pinv else "template (phase-locked)")
        offs = tuple(info.get("train_offsets") or ())

        def make(nc, win, _m=m):
            return _OursWrap(decoders.make_decoder(_m, sfreq=bc.SFREQ, freqs=list(bc.FREQS)))

        out.append(Pipeline(
            "ours", m, family, make,
            prefilter={"window": "none", "whole": "bp10-42"},
            supports_rest=True,
            train_offsets=offs,
            filter_note="inside the decoder (per window)",
        ))
    return out




# ----------------------------------------------------------------------------- evaluation
def _windows(src, sess, pipe, protocol, window, n_classes, *, train: bool):
    pf = pipe.prefilter[protocol]
    extra = pipe.extra_train if train else 0
    X, y = src.windows(sess, window=window, n_classes=n_classes, prefilter=pf,
                       protocol=protocol, extra=extra)
    if not train or not pipe.train_offsets:
        return [X], y
    Xs = [X]
    for off in pipe.train_offsets:
        Xo, _ = src.windows(sess, window=window, n_classes=n_classes, prefilter=pf,
                            protocol=protocol, extra=extra, tmin=bc.TMIN + off,
                            allow_outside=True)
        Xs.append(Xo)
    return Xs, y


def _fit_predict(pipe, n_classes, window, Xtr_list, ytr, Xte):
    Xtr = np.concatenate(Xtr_list, axis=0)
    ytr = np.tile(ytr, len(Xtr_list))
    inside = ~np.isnan(Xtr[:, 0, 0])  # augmented windows past the recording are left out
    Xtr, ytr = Xtr[inside], ytr[inside]
    est = pipe.make(n_classes, window)
    t0 = time.perf_counter()
    est.fit(Xtr, ytr)
    fit_s = time.perf_counter() - t0
    return est.predict(Xte), fit_s


def evaluate(pipe: Pipeline, protocol: str, src: bc.EpochSource, *, windows, class_counts,
             schemes, progress=None, verbose=False) -> list[dict]:
    """Per-subject accuracy records of one pipeline under one filtering protocol."""
    recs = []
    base = dict(library=pipe.library, method=pipe.method, family=pipe.family,
                protocol=protocol)
    for nc in class_counts:
        if nc == 4 and not pipe.supports_rest:
            recs.append(dict(base, n_classes=nc, status="n/a",
                             reason="pipeline cannot learn a rest class"))
            continue
        for win in windows:
            for subj, sessions in src.sessions.items():
                tr = [_windows(src, s, pipe, protocol, win, nc, train=True) for s in sessions]
                te = [_windows(src, s, pipe, protocol, win, nc, train=False) for s in sessions]
                for scheme in schemes:
                    accs, fits, n_test = [], [], 0
                    try:
                        if scheme == "within":
                            y = np.concatenate([t[1] for t in te])
                            Xte_all = np.concatenate([t[0][0] for t in te])
                            Xtr_all = [np.concatenate([t[0][k] for t in tr])
                                       for k in range(len(tr[0][0]))]
                            for itr, ite in bc.within_folds(y):
                                pred, fs = _fit_predict(pipe, nc, win,
                                                        [x[itr] for x in Xtr_all], y[itr],
                                                        Xte_all[ite])
                                accs.append(float(np.mean(pred == y[ite])))
                                fits.append(fs)
                                n_test += len(ite)
                        else:
                            if len(sessions) < 2:
                                continue
                            for a, b in bc.cross_pairs(len(sessions)):
                                pred, fs = _fit_predict(pipe, nc, win, tr[a][0], tr[a][1],
                                                        te[b][0][0])
                                accs.append(float(np.mean(pred == te[b][1])))
                                fits.append(fs)
                                n_test += len(te[b][1])
                    except Exception as exc:  # a peer that cannot run a setting is reported
                        recs.append(dict(base, n_classes=nc, window_s=win, scheme=scheme,
                                         subject=subj, status="error",
                                         reason=f"{type(exc).__name__}: {exc}"[:300]))
                        continue
                    recs.append(dict(base, n_classes=nc, window_s=win, scheme=scheme,
                                     subject=subj, status="ok", accuracy=float(np.mean(accs)),
                                     n_folds=len(accs), n_test=n_test,
                                     fit_s_mean=float(np.mean(fits))))
                if progress:
                    progress()
            if verbose:
                print(f"  {pipe.key} {protocol} {nc}-class {win:g} s done", file=sys.stderr,
                      flush=True)
    return recs


def _prepare_timing(pipe: Pipeline, src: bc.EpochSource) -> dict:
    """Fit 5 times on all 1 s windows of subject01; return the fitted model and one window."""
    subj = "subject01" if "subject01" in src.sessions else next(iter(src.sessions))
    sessions = src.sessions[subj]
    nc = 4 if pipe.supports_rest else 3
    protocol = "whole"
    tr = [_windows(src, s, pipe, protocol, 1.0, nc, train=True) for s in sessions]
    Xtr = [np.concatenate([t[0][k] for t in tr]) for k in range(len(tr[0][0]))]
    y = np.concatenate([t[1] for t in tr])
    Xc = np.concatenate(Xtr)
    yc = np.tile(y, len(Xtr))
    inside = ~np.isnan(Xc[:, 0, 0])
    Xc, yc = Xc[inside], yc[inside]
    fits = []
    for _ in range(5):
        est = pipe.make(nc, 1.0)
        t0 = time.perf_counter()
        est.fit(Xc, yc)
        fits.append(time.perf_counter() - t0)
    # one window as it arrives online: raw for ours, already filtered for peers
    sess = sessions[0]
    if pipe.library == "ours":
        x1, _ = bc.cut(sess.data, sess, window=1.0, n_classes=nc)
    else:
        x1, _ = src.windows(sess, window=1.0, n_classes=nc, prefilter=pipe.prefilter["whole"],
                            protocol="whole")
    x1 = np.ascontiguousarray(x1[:1])
    est.predict(x1)
    return dict(est=est, x1=x1, row=dict(
        library=pipe.library, method=pipe.method, family=pipe.family, n_classes=nc,
        input_shape=list(x1.shape), fit_ms_median=float(np.median(fits) * 1e3),
        n_fit_trials=int(len(yc)), filter_in_predict=pipe.library == "ours",
        filter_note=pipe.filter_note, prefilter=pipe.prefilter["whole"]))


def timing(pipe: Pipeline, src: bc.EpochSource, *, n_calls: int = 300) -> dict:
    """Fit (median of 5) and one-window predict time (median, p99) on subject01, 1 s."""
    prep = _prepare_timing(pipe, src)
    est, x1 = prep["est"], prep["x1"]
    t = bc.time_calls(lambda: est.predict(x1), n_calls=n_calls)
    return dict(prep["row"], predict_ms_median=t["median_ms"], predict_ms_p99=t["p99_ms"],
                n_calls=t["n_calls"])


def timing_round_robin(pipes: list[Pipeline], src: bc.EpochSource, *, n_calls: int = 300,
                       block: int = 10, log=print) -> list[dict]:
    """Time every pipeline's one-window predict in interleaved blocks, in one process.

    Interleaving (``block`` calls of each pipeline in turn, ``n_calls`` in all) exposes every
    pipeline to the same background load, so the ratios stay fair on a shared machine.
    """
    preps = []
    for p in pipes:
        try:
            preps.append(_prepare_timing(p, src))
        except Exception as exc:  # noqa: BLE001 - reported, the others are still timed
            log(f"[timing] {p.key}: {type(exc).__name__}: {exc}")
    filters = _filter_callables()
    calls = [(pr["row"], (lambda e=pr["est"], x=pr["x1"]: e.predict(x))) for pr in preps]
    calls += [(row, fn) for row, fn in filters]
    samples: list[list[float]] = [[] for _ in calls]
    cpu: list[list[float]] = [[] for _ in calls]
    for _, fn in calls:  # warm-up
        for _ in range(5):
            fn()
    for _ in range(max(1, n_calls // block)):
        for i, (_, fn) in enumerate(calls):
            for _ in range(block):
                c0 = time.thread_time()
                t0 = time.perf_counter()
                fn()
                samples[i].append(time.perf_counter() - t0)
                cpu[i].append(time.thread_time() - c0)
    out = []
    for (row, _), ts, cs in zip(calls, samples, cpu):
        ts, cs = 1e3 * np.asarray(ts), 1e3 * np.asarray(cs)
        out.append(dict(row, predict_ms_median=float(np.median(ts)),
                        predict_ms_p99=float(np.percentile(ts, 99)), n_calls=len(ts),
                        cpu_ms_median=float(np.median(cs)),
                        cpu_ms_p99=float(np.percentile(cs, 99)),
                        interleaved=True, loadavg=" ".join(f"{v:.1f}" for v in os.getloadavg())))
    return out


def _filter_callables():
    import mne
    from scipy.signal import sosfiltfilt

    x = np.random.default_rng(0).standard_normal((8, 256))
    out = []
    for name, bands in {"bp10-42": [(10.0, 42.0)],
                        "fb0.5": [(f - 0.5, f + 0.5) for f in bc.FREQS]}.items():
        sos = [mne.filter.create_filter(None, bc.SFREQ, lo, hi, method="iir",
                                        iir_params=dict(order=4, ftype="butter", output="sos"),
                                        verbose="error")["sos"] for lo, hi in bands]
        out.append((dict(prefilter=name, n_bands=len(bands), kind="filter"),
                    lambda sos=sos: [sosfiltfilt(s, x, axis=-1) for s in sos]))
    return out


def run_timing(subjects=None, *, methods=None, n_calls: int = 300, log=print) -> list[dict]:
    """Interleaved timing of every peer and every method of ours; write the timing cache."""
    src = bc.EpochSource(bc.load_sessions(bc.DATA_ROOT, subjects or ["subject01"]))
    pipes = peer_pipelines()
    try:
        pipes += ours_pipelines(methods)
    except ImportError as exc:
        log(f"[timing] ours not available: {exc}")
    t0 = time.perf_counter()
    rows = timing_round_robin(pipes, src, n_calls=n_calls, log=log)
    when = time.strftime("%Y-%m-%d %H:%M:%S")
    for r in rows:
        if r.get("kind") == "filter":
            continue
        key = f"{r['library']}_{r['method']}".replace(" ", "").replace("/", "-")
        bc.save_json(cache_path("timing", key), dict(key=key, protocol="timing", result=r,
                                                     finished=when))
    bc.save_json(cache_path("timing", "filters"), dict(
        result=[r for r in rows if r.get("kind") == "filter"], finished=when))
    log(f"[timing] {len(rows)} rows in {time.perf_counter() - t0:.0f} s")
    return rows


def filter_timing(n_calls: int = 300) -> list[dict]:
    """Cost of the peers' per-window filtering (precomputed SOS, scipy.sosfiltfilt)."""
    import mne
    from scipy.signal import sosfiltfilt

    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 256))
    out = []
    designs = {
        "bp10-42": [(10.0, 42.0)],
        "fb0.5": [(f - 0.5, f + 0.5) for f in bc.FREQS],
    }
    for name, bands in designs.items():
        sos = [mne.filter.create_filter(None, bc.SFREQ, lo, hi, method="iir",
                                        iir_params=dict(order=4, ftype="butter", output="sos"),
                                        verbose="error")["sos"] for lo, hi in bands]

        def run(sos=sos):
            return [sosfiltfilt(s, x, axis=-1) for s in sos]

        t = bc.time_calls(run, n_calls=n_calls)
        out.append(dict(prefilter=name, n_bands=len(bands), predict_ms_median=t["median_ms"],
                        predict_ms_p99=t["p99_ms"]))
    return out


# ----------------------------------------------------------------------------- driver
_SRC: bc.EpochSource | None = None
_SRC_SUBJECTS: object = ()


def _init_worker(subjects):
    """Load the sessions once per process (joblib reuses its worker processes)."""
    global _SRC, _SRC_SUBJECTS
    if _SRC is not None and _SRC_SUBJECTS == subjects:
        return
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _SRC = bc.EpochSource(bc.load_sessions(bc.DATA_ROOT, subjects))
    _SRC_SUBJECTS = subjects


def _task(pipe_key, side, methods, protocol, cfg, subjects=None):
    _init_worker(subjects)
    pipes = {p.key: p for p in (peer_pipelines() if side == "peers" else
                                ours_pipelines(methods))}
    pipe = pipes[pipe_key]
    t0 = time.perf_counter()
    try:
        if protocol == "timing":
            res = timing(pipe, _SRC, n_calls=cfg["n_calls"])
        else:
            res = evaluate(pipe, protocol, _SRC, windows=cfg["windows"],
                           class_counts=cfg["classes"], schemes=cfg["schemes"], verbose=True)
    except Exception as exc:
        res = dict(status="error", library=pipe.library, method=pipe.method,
                   reason=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
    return pipe_key, protocol, res, time.perf_counter() - t0


def cache_path(kind: str, key: str, protocol: str = ""):
    suffix = f"_{protocol}" if protocol else ""
    return bc.CACHE_DIR / f"{kind}_{key}{suffix}.json"


def run(side: str, *, subjects=None, windows=bc.WINDOWS, classes=bc.CLASS_COUNTS,
        schemes=bc.SCHEMES, protocols=bc.PROTOCOLS, methods=None, jobs=1, scheduler=None,
        reuse=False, do_timing=True, n_calls=300, log=print) -> dict:
    """Run the accuracy sweep (and timing) for one side; write the cache; return a summary.

    The (pipeline, protocol) tasks run through :func:`bci.evaluation.parallel.run_tasks`,
    the path of ``ssvep-exo evaluate --jobs/--scheduler``: ``jobs`` joblib processes, or the
    Dask cluster at ``scheduler``.
    """
    from bci.evaluation.parallel import run_tasks

    pipes = peer_pipelines() if side == "peers" else ours_pipelines(methods)
    if side == "peers" and methods:
        pipes = [p for p in pipes if p.method in methods or p.key in methods]
    cfg = dict(windows=list(windows), classes=list(classes), schemes=list(schemes),
               n_calls=n_calls)
    tasks = []
    for p in pipes:
        for prot in list(protocols) + (["timing"] if do_timing else []):
            kind = "timing" if prot == "timing" else "acc"
            path = cache_path(kind, p.key, "" if prot == "timing" else prot)
            if reuse and path.exists():
                continue
            tasks.append((p.key, side, methods, prot, cfg))
    log(f"[{side}] {len(tasks)} tasks on {scheduler or f'{jobs} process(es)'}")
    t_all = time.perf_counter()
    done = []

    def on_result(_index, result):  # in task order, as they arrive
        key, prot, res, dt = result
        kind = "timing" if prot == "timing" else "acc"
        payload = dict(key=key, protocol=prot, seconds=dt, config=cfg, subjects=subjects,
                       result=res, finished=time.strftime("%Y-%m-%d %H:%M:%S"))
        bc.save_json(cache_path(kind, key, "" if prot == "timing" else prot), payload)
        n_err = sum(1 for r in (res if isinstance(res, list) else [res])
                    if r.get("status") == "error")
        log(f"[{side}] {key:28s} {prot:7s} {dt:7.1f} s" + (f"  ({n_err} errors)" if n_err else ""))
        done.append((key, prot))

    if scheduler:  # the cluster's workers do not have scripts/ on their path: send the code
        import cloudpickle

        for module in (sys.modules[_task.__module__], bc):
            cloudpickle.register_pickle_by_value(module)
    run_tasks(((_task, *t, subjects) for t in tasks), jobs=jobs, scheduler=scheduler,
              on_result=on_result)
    if side == "peers" and do_timing and not (reuse and cache_path("timing", "filters").exists()):
        bc.save_json(cache_path("timing", "filters"), dict(result=filter_timing(n_calls)))
    log(f"[{side}] done in {time.perf_counter() - t_all:.0f} s")
    return dict(tasks=len(tasks), seconds=time.perf_counter() - t_all)


def _csv(s, conv=str):
    return [conv(v) for v in s.split(",") if v]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", default="all", choices=["peers", "ours", "all"])
    ap.add_argument("--subjects", type=_csv, default=None)
    ap.add_argument("--windows", type=lambda s: _csv(s, float), default=list(bc.WINDOWS))
    ap.add_argument("--classes", type=lambda s: _csv(s, int), default=list(bc.CLASS_COUNTS))
    ap.add_argument("--schemes", type=_csv, default=list(bc.SCHEMES))
    ap.add_argument("--protocols", type=_csv, default=list(bc.PROTOCOLS))
    ap.add_argument("--methods", type=_csv, default=None)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--scheduler", default=None,
                    help="Dask scheduler address: run the tasks on that cluster")
    ap.add_argument("--reuse", action="store_true", help="keep existing cache files")
    ap.add_argument("--no-timing", action="store_true")
    ap.add_argument("--n-calls", type=int, default=300)
    a = ap.parse_args(argv)
    sides = ["peers", "ours"] if a.side == "all" else [a.side]
    for side in sides:
        run(side, subjects=a.subjects, windows=a.windows, classes=a.classes, schemes=a.schemes,
            protocols=a.protocols, methods=a.methods, jobs=a.jobs, scheduler=a.scheduler,
            reuse=a.reuse, do_timing=False, n_calls=a.n_calls)
    if not a.no_timing:
        run_timing(methods=a.methods if a.side == "ours" else None, n_calls=a.n_calls)
    return 0


if __name__ == "__main__":
    sys.exit(main())
