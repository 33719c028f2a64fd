"""Parallel and distributed evaluation: joblib processes and a Dask cluster give the serial
run's records, record for record (all fields but the measured fit and predict times)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from bci.datasets import load_recording
from bci.decoders import METHODS, make_decoder
from bci.evaluation import run_evaluation
from bci.evaluation.crossval import _fit_score
from bci.evaluation.parallel import run_calls, run_tasks
from bci.sources import synthesize_raw

TIMING = ("fit_time_s", "predict_ms_per_trial")


def _results(records):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in records]


def _square(x):
    return x * x


def test_run_tasks_keeps_order_and_reports_each_result():
    seen = []
    out = run_tasks(((_square, i) for i in range(7)), jobs=2,
                    on_result=lambda i, r: seen.append((i, r)))
    assert out == [i * i for i in range(7)]
    assert seen == list(enumerate(out))
    assert run_tasks([(_square, 3)], jobs=1) == [9]


@pytest.fixture(scope="module")
def synthetic():
    """One subject of two synthetic sessions (interleaved rest)."""
    sched = "rest:3,13:4,rest:2,17:4,rest:3,21:4," * 4
    return {"s0": [synthesize_raw(sched.rstrip(","), seed=i, snr=0.4) for i in range(2)]}


def test_jobs_give_the_serial_records(synthetic):
    est = {m: make_decoder(m, sfreq=256.0, freqs=[13, 17, 21]) for m in ("fbcca", "ress-fbcca")}
    kw = dict(windows=[1.0], schemes=["within", "cross"], tmin=0.5, progress=False,
              train_offsets={m: METHODS[m].get("train_offsets") for m in est})
    serial = run_evaluation(synthetic, est, **kw)
    parallel = run_evaluation(synthetic, est, n_jobs=2, **kw)
    assert len(serial) == 2 * 2 * 2  # class sets x schemes x methods
    assert _results(parallel) == _results(serial)
    assert all(r["fit_time_s"] > 0 for r in parallel)  # real fits, not the placeholders
    assert len({r["accuracy"] for r in serial}) > 3  # the records differ from one another


def test_run_calls_counts_each_method_once(synthetic):
    from functools import partial

    from bci.evaluation import evaluate_cross, evaluate_within

    est = {m: make_decoder(m, sfreq=256.0, freqs=[13, 17, 21]) for m in ("cca", "fbcca")}
    raws = synthetic["s0"]
    calls = [partial(evaluate_within, raws, est, subject="s0", window=1.0, tmin=0.5),
             partial(evaluate_cross, raws, est, subject="s0", window=1.0, tmin=0.5),
             partial(evaluate_cross, raws[:1], est, subject="s0", window=1.0, tmin=0.5)]
    ticks = []
    out = run_calls(calls, jobs=2, on_group_done=lambda: ticks.append(1))
    assert [len(r) for r in out] == [2, 2, 2]
    assert len(ticks) == 4  # two methods in two calls; the one-session call has no fit
    assert out[2][0]["available"] is False
    assert _results([r for rs in out for r in rs]) == _results(
        [r for c in calls for r in c()])


def test_fold_task_is_the_harness_fit():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((6, 4, 256))
    y = np.array(["13.0Hz", "17.0Hz", "21.0Hz"] * 2)
    est = make_decoder("fbcca", sfreq=256.0, freqs=[13, 17, 21])
    (pred, fit_s, pred_s), = run_tasks([(_fit_score, est, X, y, X, y)], jobs=2)
    assert pred.shape == (6,) and fit_s >= 0 and pred_s >= 0


@pytest.mark.realdata
@pytest.mark.slow
@pytest.mark.timeout(400)
def test_scheduler_on_a_local_dask_cluster_equals_serial(kalunga_root, tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    base = [sys.executable, "-m", "bci", "evaluate", str(kalunga_root / "subject01"),
            "--methods", "cca,fbcca", "--windows", "1", "--scheme", "both",
            "--no-phase", "--no-progress"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        dist = subprocess.run(base + ["--scheduler", cluster.scheduler_address, "--json",
                                      str(tmp_path / "dask.json")],
                              capture_output=True, text=True, timeout=300, env=env)
        with distributed.Client(cluster) as client:  # the fits ran on the cluster's workers
            assert client.run(lambda: __import__("bci.evaluation.crossval") is not None)
    assert dist.returncode == 0, dist.stdout + dist.stderr
    serial = subprocess.run(base + ["--json", str(tmp_path / "serial.json")],
                            capture_output=True, text=True, timeout=300, env=env)
    assert serial.returncode == 0, serial.stdout + serial.stderr
    a = json.loads((tmp_path / "dask.json").read_text())
    b = json.loads((tmp_path / "serial.json").read_text())
    assert len(a) == 8 and _results(a) == _results(b)
    bad = subprocess.run(base + ["--scheduler", "tcp://127.0.0.1:9"], capture_output=True,
                         text=True, timeout=120, env=env)
    assert bad.returncode == 2 and "Cannot reach the Dask scheduler at" in bad.stderr
    assert "session(s)" not in bad.stdout  # refused before any data was read


@pytest.mark.realdata
def test_cli_jobs_2_equals_serial_on_a_real_subject(kalunga_root, tmp_path):
    raws = [load_recording(p) for p in sorted((kalunga_root / "subject02").glob("*_raw.fif"))]
    est = {"fbcca": make_decoder("fbcca", sfreq=256.0, freqs=[13, 17, 21])}
    kw = dict(windows=[1.0], schemes=["within", "cross"], progress=False)
    assert _results(run_evaluation({"subject02": raws}, est, n_jobs=2, **kw)) == _results(
        run_evaluation({"subject02": raws}, est, **kw))
