"""Parallel evaluation: ``ssvep-exo evaluate``'s path serial and with ``--jobs N``, in one run.

Runs :func:`bci.evaluation.run_evaluation` (what ``ssvep-exo evaluate`` runs) on the Kalunga
recordings once serially and once with ``--jobs N`` (every subject x method x window x
class set x scheme x fold fit one joblib task), right after each other, checks that the
records are identical (all fields but the measured fit and predict times) and prints the
speed-up as a ratio measured in this one run. Exit status 1 when the records differ or the
speed-up misses the target.

Usage::

    python scripts/bench_parallel.py [--subjects subject01,subject02|all] [--jobs 2]
        [--methods fbcca,ress-fbcca] [--windows 1,2] [--target 1.7]
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


def _results(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING_FIELDS} for r in records]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subjects", default="subject01,subject02")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--methods", default="fbcca,ress-fbcca")
    ap.add_argument("--windows", default="1,2")
    ap.add_argument("--target", type=float, default=1.7)
    a = ap.parse_args(argv)
    from bci.datasets import cue_freqs, find_recordings, load_recording
    from bci.decoders import METHODS, make_decoder
    from bci.evaluation import run_evaluation

    found = find_recordings(bc.DATA_ROOT)
    subjects = list(found) if a.subjects == "all" else a.subjects.split(",")
    recordings = {s: [load_recording(p) for p in found[s]] for s in subjects}
    raws = [r for rs in recordings.values() for r in rs]
    freqs = sorted({f for r in raws for f in cue_freqs(r)})
    methods = a.methods.split(",")
    estimators = {m: make_decoder(m, sfreq=raws[0].info["sfreq"], freqs=freqs) for m in methods}
    kw = dict(windows=[float(w) for w in a.windows.split(",")], schemes=["within", "cross"],
              train_offsets={m: METHODS[m].get("train_offsets") for m in methods},
              progress=False)
    # warm-up (imports, filter caches) so that neither timed run pays for it
    run_evaluation({subjects[0]: recordings[subjects[0]]}, estimators,
                   **{**kw, "windows": kw["windows"][:1], "schemes": ["cross"]})
    t0 = time.perf_counter()
    serial = run_evaluation(recordings, estimators, n_jobs=1, **kw)
    t_serial = time.perf_counter() - t0
    t0 = time.perf_counter()
    parallel = run_evaluation(recordings, estimators, n_jobs=a.jobs, **kw)
    t_par = time.perf_counter() - t0
    same = _results(serial) == _results(parallel)
    ratio = t_serial / t_par
    info = bc.machine_info()
    print(f"ssvep-exo evaluate path, {len(subjects)} subject(s) ({len(raws)} sessions), "
          f"methods {', '.join(methods)}, windows {a.windows} s, within + cross, all class "
          f"sets: {len(serial)} records")
    print(f"machine: {info['cpu']}, {info['cores']} cores, load average {info['loadavg']}")
    print(f"serial {t_serial:.1f} s, --jobs {a.jobs} {t_par:.1f} s: speed-up {ratio:.2f}x "
          f"(target {a.target:g}x: {'met' if ratio >= a.target else 'missed'})")
    print(f"records identical to the serial run (all fields but {', '.join(TIMING_FIELDS)}): "
          f"{'yes' if same else 'NO'}")
    return 0 if same and ratio >= a.target else 1


if __name__ == "__main__":
    sys.exit(main())
