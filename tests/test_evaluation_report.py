"""Reports: screen table, JSON, CSV and PNG plots of evaluation records."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from bci.evaluation import format_table, plot_confusions, plot_sweep, write_csv, write_json


def _records():
    recs = []
    rng = np.random.default_rng(0)
    for subject in ("subject01", "subject02"):
        for method in ("fbcca", "cca"):
            for w in (0.5, 1.0, 2.0):
                for n, classes in ((3, ["13.0Hz", "17.0Hz", "21.0Hz"]),
                                   (4, ["13.0Hz", "17.0Hz", "21.0Hz", "rest"])):  # fmt: skip
                    cm = rng.integers(0, 5, (n, n)) + np.eye(n, dtype=int) * 10
                    acc = float(np.trace(cm) / cm.sum())
                    recs.append({
                        "subject": subject, "method": method, "window_s": w, "n_classes": n,
                        "scheme": "within", "accuracy": acc, "itr_bits_per_min": 10.0 * w,
                        "itr_bits_per_min_gaze": 8.0 * w, "gaze_shift_s": 0.5,
                        "accuracy_std": 0.05, "classes": classes, "confusion": cm.tolist(),
                        "available": True, "note": "", "prefilter": "none",
                    })  # fmt: skip
    recs.append({**recs[0], "scheme": "cross", "subject": "subject01", "accuracy": None,
                 "itr_bits_per_min": None, "itr_bits_per_min_gaze": None, "confusion": None,
                 "available": False, "note": "not available: one independent session"})  # fmt: skip
    return recs


def test_table_has_every_method_window_and_block():
    recs = _records()
    text = format_table(recs)
    assert "within-session CV" in text and "3 classes" in text and "4 classes" in text
    assert "fbcca" in text and "cca" in text and "0.5 s" in text and "2 s" in text
    assert text.index("fbcca") < text.index("  cca")  # method order kept
    mean = np.mean([r["accuracy"] for r in recs[:-1] if (r["method"], r["window_s"],
                    r["n_classes"]) == ("fbcca", 1.0, 3)])  # fmt: skip
    assert f"{100 * mean:5.1f}" in text
    assert "not available" in text and "n/a" in text
    per = format_table(recs, per_subject=True)
    assert per.count("subject02") >= 4


def test_json_and_csv(tmp_path):
    recs = _records()
    js = write_json(recs, tmp_path / "out" / "r.json")
    back = json.loads(js.read_text())
    assert back == json.loads(json.dumps(recs))
    cs = write_csv(recs, tmp_path / "r.csv")
    rows = list(csv.DictReader(cs.open()))
    assert len(rows) == len(recs)
    assert list(rows[0])[:7] == ["subject", "method", "window_s", "n_classes", "scheme",
                                 "accuracy", "itr_bits_per_min"]  # fmt: skip
    assert json.loads(rows[0]["confusion"]) == recs[0]["confusion"]


def test_plots_are_written(tmp_path):
    pytest.importorskip("matplotlib")
    recs = _records()
    sweep = plot_sweep(recs, tmp_path)
    conf = plot_confusions(recs, tmp_path)
    assert {p.name for p in sweep} == {"sweep_within_3class.png", "sweep_within_4class.png"}
    assert len(conf) == 6  # 2 class sets x 3 windows with confusion matrices
    for p in sweep + conf:
        head = p.read_bytes()[:8]
        assert head == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 10_000
