"""Parallel evaluation: ``ssvep-exo evaluate``'s path serial and with ``--jobs N``, in one run.

Runs :func:`bci.evaluation.run_evaluation` (what ``ssvep-exo evaluate`` runs) on the Kalunga
recordings once serially and once with ``--jobs N`` (every subject x method x window x
class set x scheme x fold fit one joblib task), right after each other, checks that the
records are identical (all fields but the measured fit and predict times) and prints the
speed-up as a ratio measured in this one run. Exit status 1 when the records differ or the
speed-up misses the target.

Usage::

    python scripts/bench_parallel.py [--subjects all|subject01,...] [--jobs 2]
        [--methods cca,fbcca,...] [--windows 0.5,1,2] [--schemes within] [--target 1.7]

The defaults are ``ssvep-exo evaluate ../shared/data/kalunga2016``'s: every subject, the
registry's default methods, windows 0.5, 1 and 2 s, within-session CV, every class set.
It also prints the CPU time of each run (this process and its joblib workers) and the
cores it got, since on a shared machine the wall-clock ratio says as much about the other
jobs as about the code.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _bench_common as bc  # noqa: E402

#: Measured times, not results: they differ between any two runs.
TIMING_FIELDS = ("fit_time_s", "predict_ms_per_trial")


_SEEN: dict[int, float] = {}


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and every worker process it has had.

    joblib keeps its worker processes alive between runs, so their CPU is read with psutil
    (and remembered for workers that have exited since).
    """
    import psutil

    me = psutil.Process()
    for child in me.children(recursive=True):
        try:
            t = child.cpu_times()
            _SEEN[child.pid] = t.user + t.system
        except psutil.Error:
            pass
    own = me.cpu_times()
    return own.user + own.system + sum(_SEEN.values())


def _results(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING_FIELDS} for r in records]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subjects", default="all")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--methods", default=None, help="default: the registry's defaults")
    ap.add_argument("--windows", default="0.5,1,2")
    ap.add_argument("--schemes", default="within")
    ap.add_argument("--target", type=float, default=1.7)
    a = ap.parse_args(argv)
    from bci.datasets import cue_freqs, find_recordings, load_recording
    from bci.decoders import DEFAULT_METHODS, METHODS, make_decoder
    from bci.evaluation import run_evaluation

    found = find_recordings(bc.DATA_ROOT)
    subjects = list(found) if a.subjects == "all" else a.subjects.split(",")
    recordings = {s: [load_recording(p) for p in found[s]] for s in subjects}
    raws = [r for rs in recordings.values() for r in rs]
    freqs = sorted({f for r in raws for f in cue_freqs(r)})
    methods = a.methods.split(",") if a.methods else list(DEFAULT_METHODS)
    estimators = {m: make_decoder(m, sfreq=raws[0].info["sfreq"], freqs=freqs) for m in methods}
    kw = dict(windows=[float(w) for w in a.windows.split(",")], schemes=a.schemes.split(","),
              train_offsets={m: METHODS[m].get("train_offsets") for m in methods},
              progress=False)
    # warm-up (imports, filter caches) so that neither timed run pays for it
    run_evaluation({subjects[0]: recordings[subjects[0]]}, estimators,
                   **{**kw, "windows": kw["windows"][:1], "schemes": ["within"]})
    c0, t0 = _cpu_seconds(), time.perf_counter()
    serial = run_evaluation(recordings, estimators, n_jobs=1, **kw)
    t_serial, cpu_serial = time.perf_counter() - t0, _cpu_seconds() - c0
    c0, t0 = _cpu_seconds(), time.perf_counter()
    parallel = run_evaluation(recordings, estimators, n_jobs=a.jobs, **kw)
    t_par, cpu_par = time.perf_counter() - t0, _cpu_seconds() - c0
    same = _results(serial) == _results(parallel)
    ratio = t_serial / t_par
    info = bc.machine_info()
    print(f"ssvep-exo evaluate path, {len(subjects)} subject(s) ({len(raws)} sessions), "
          f"methods {', '.join(methods)}, windows {a.windows} s, {a.schemes}, every class "
          f"set: {len(serial)} records")
    print(f"machine: {info['cpu']}, {info['cores']} cores, load average {info['loadavg']}")
    print(f"serial {t_serial:.1f} s, --jobs {a.jobs} {t_par:.1f} s: speed-up {ratio:.2f}x "
          f"(target {a.target:g}x: {'met' if ratio >= a.target else 'missed'})")
    print(f"records identical to the serial run (all fields but {', '.join(TIMING_FIELDS)}): "
          f"{'yes' if same else 'NO'}")
    print(f"CPU time (this process and its workers): serial {cpu_serial:.1f} s, --jobs "
          f"{a.jobs} {cpu_par:.1f} s; CPU the runs got: serial {cpu_serial / t_serial:.2f} "
          f"cores, --jobs {a.jobs} {cpu_par / t_par:.2f} cores (the rest went to other jobs "
          f"on this shared machine)")
    return 0 if same and ratio >= a.target else 1


if __name__ == "__main__":
    sys.exit(main())
