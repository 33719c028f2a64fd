"""The benchmark machinery runs: one subject, one window, our FBCCA only (no peers).

``make bench`` itself runs in ``.venv-bench`` with the peers installed; this keeps a broken
harness from going unnoticed in ``make test``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
sys.path.insert(0, str(SCRIPTS))

import _bench_common as bc  # noqa: E402
import bench_all as ba  # noqa: E402
import bench_peers as bp  # noqa: E402

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def src(kalunga_root):
    return bc.EpochSource(bc.load_sessions(kalunga_root, ["subject01"]))


def test_windows_are_exact_and_identical_across_protocols(src):
    sess = src.sessions["subject01"][0]
    Xw, yw = src.windows(sess, window_s=0.5, n_classes=4, prefilter="bp10-42", protocol="window")
    Xh, yh = src.windows(sess, window_s=0.5, n_classes=4, prefilter="bp10-42", protocol="whole")
    assert Xw.shape == Xh.shape == (32, 8, 128)
    assert list(yw) == list(yh)
    assert set(yw) == set(bc.LABELS_4)
    # same trials, different filtering: correlated but not equal
    assert not np.allclose(Xw, Xh)
    assert np.corrcoef(Xw.ravel(), Xh.ravel())[0, 1] > 0.5


def test_duplicate_session_is_dropped(kalunga_root):
    sessions = bc.load_sessions(kalunga_root, ["subject07"])
    names = [s.name for s in sessions["subject07"]]
    assert "record-[2012.07.11-15.33.08]" not in names
    assert len(names) == 2


def test_wolpaw_itr_known_values():
    assert bc.wolpaw_itr(1.0, 4, 1.0) == pytest.approx(120.0)
    assert bc.wolpaw_itr(0.25, 4, 1.0) == 0.0
    assert bc.wolpaw_itr(0.8, 3, 2.0) == pytest.approx(
        30 * (np.log2(3) + 0.8 * np.log2(0.8) + 0.2 * np.log2(0.1)))


def test_folds_are_the_protocols_folds():
    y = np.repeat(["a", "b", "c", "d"], 16)
    folds = list(bc.within_folds(y))
    assert len(folds) == 5
    assert sorted(np.concatenate([te for _, te in folds]).tolist()) == list(range(64))
    assert [te.tolist() for _, te in folds] == [te.tolist() for _, te in bc.within_folds(y)]


def test_bench_runs_ours_and_writes_report(src, tmp_path):
    pipe = bp.ours_pipelines(["fbcca"])[0]
    recs = bp.evaluate(pipe, "window", src, windows=[1.0], class_counts=[3],
                       schemes=["within", "cross"])
    assert {r["scheme"] for r in recs} == {"within", "cross"}
    assert all(r["status"] == "ok" for r in recs), recs
    assert all(r["accuracy"] > 0.5 for r in recs)  # chance is 0.33; FBCCA scores ~0.8 here
    t = bp.timing(pipe, src, n_calls=20)
    assert t["input_shape"] == [1, 8, 256] and t["filter_in_predict"]
    assert 0 < t["predict_ms_median"] < 200
    agg = ba.aggregate(recs)
    meta = dict(date="today", machine=bc.machine_info(), versions=bc.versions(), wall_s=1.0)
    text = ba.write_report(agg, [t], [], None, {}, meta, tmp_path / "results.md")
    assert "fbcca" in text and "3-class, within-subject CV" in text
    assert (tmp_path / "results.md").read_text() == text
    paths = ba.plot_accuracy(agg, tmp_path)
    assert all(p.stat().st_size > 10_000 for p in paths)
    assert ba.plot_latency([t], [], None, tmp_path).exists()
