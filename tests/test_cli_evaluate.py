"""``ssvep-exo evaluate`` end to end: real Kalunga subject, synthetic folder, --online, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bci.cli import main
from bci.sources import synthesize_raw

REQUIRED = {"subject", "method", "window_s", "n_classes", "scheme", "accuracy", "itr_bits_per_min"}


@pytest.mark.realdata
def test_evaluate_kalunga_subject(kalunga_root, tmp_path, capsys):
    js, cs, plots = tmp_path / "r.json", tmp_path / "r.csv", tmp_path / "plots"
    rc = main([
        "evaluate", str(kalunga_root / "subject01"), "--windows", "1", "--classes", "3,4",
        "--methods", "cca,fbcca",
        "--scheme", "both", "--json", str(js), "--csv", str(cs), "--plots", str(plots),
        "--no-progress",
    ])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0
    assert "2 session(s) of 1 subject(s), 256 Hz, stimulus frequencies 13, 17, 21 Hz" in out
    assert "Phase locking" in out and "Recommendation: only" in out
    assert "within-session CV" in out and "cross-session" in out
    records = json.loads(js.read_text())
    assert len(records) == 2 * 2 * 2  # methods x class counts x schemes
    for r in records:
        assert REQUIRED <= set(r)
        assert r["subject"] == "subject01" and r["window_s"] == 1.0
        assert 0.0 <= r["accuracy"] <= 1.0
    fbcca3 = next(r for r in records if (r["method"], r["n_classes"], r["scheme"])
                  == ("fbcca", 3, "within"))  # fmt: skip
    assert fbcca3["accuracy"] > 0.6  # far above the 33 % chance level
    assert cs.read_text().startswith("subject,method,window_s,n_classes,scheme,accuracy")
    assert (plots / "sweep_within_4class.png").exists()
    assert (plots / "confusion_cross_3class_1s.png").exists()


@pytest.fixture(scope="module")
def synth_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    rng = np.random.default_rng(3)
    for subject, n_sessions in (("subject01", 2), ("subject02", 1)):
        (root / subject).mkdir()
        for k in range(n_sessions):
            labels = [lab for lab in ("13", "17", "rest") for _ in range(6)]
            rng.shuffle(labels)
            raw = synthesize_raw(
                [(lab, 5.0) for lab in labels], seed=10 * k + len(subject), snr=1.5
            )
            raw.save(root / subject / f"session{k + 1}_raw.fif", verbose="error")
    return root


def test_evaluate_defaults_on_any_folder(synth_folder, tmp_path, capsys):
    js = tmp_path / "r.json"
    rc = main(["evaluate", str(synth_folder), "--scheme", "both", "--per-subject", "--methods",
               "cca", "--prefilter", "whole", "--json", str(js), "--no-progress", "--no-phase"])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0
    assert "3 session(s) of 2 subject(s)" in out and "stimulus frequencies 13, 17 Hz" in out
    assert "Phase locking" not in out
    records = json.loads(js.read_text())
    assert {r["window_s"] for r in records} == {0.5, 1.0, 2.0}
    assert {r["n_classes"] for r in records} == {2, 3}  # targets only, and with rest
    assert {r["prefilter"] for r in records} == {"whole 10-34 Hz"}
    single = [r for r in records if r["subject"] == "subject02" and r["scheme"] == "cross"]
    assert single and all(r["accuracy"] is None and not r["available"] for r in single)
    assert "not available" in out


def test_evaluate_online(synth_folder, tmp_path, capsys):
    js = tmp_path / "online.json"
    rc = main(["evaluate", str(synth_folder / "subject01"), "--online", "--methods", "fbcca",
               "--windows", "1", "--max-false", "1", "--json", str(js), "--no-progress"])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0
    assert "subject01" in out and "fbcca" in out and "exec %" in out
    (rec,) = json.loads(js.read_text())
    for key in ("subject", "method", "hit_rate", "false_activations_per_min",
                "wrong_command_rate", "median_time_to_command_s", "executed_rate"):  # fmt: skip
        assert key in rec
    assert rec["subject"] == "subject01" and rec["method"] == "fbcca"
    assert rec["max_false_per_min"] == 1.0
    assert 0.0 <= rec["hit_rate"] <= 1.0 and 0.0 <= rec["executed_rate"] <= rec["hit_rate"]
    assert all(s["trials"] for s in rec["sessions"])


def test_default_methods_come_from_the_registry():
    from bci.cli.evaluate import _resolve_methods
    from bci.decoders import DEFAULT_METHODS, METHODS

    assert _resolve_methods(None)[0] == list(DEFAULT_METHODS)
    assert _resolve_methods(["all"])[0] == list(METHODS)
    assert _resolve_methods(["fbcca"])[0] == ["fbcca"]


def test_online_defaults_to_the_deployable_decoders():
    from bci.cli.evaluate import _resolve_methods
    from bci.decoders import BEST_METHOD, BEST_TRAINING_FREE, METHODS

    methods = _resolve_methods(None, online=True)[0]
    assert methods == [BEST_TRAINING_FREE, BEST_METHOD]
    assert METHODS[BEST_METHOD]["calibrated"] and not METHODS[BEST_TRAINING_FREE]["calibrated"]
    assert _resolve_methods(["cca"], online=True)[0] == ["cca"]  # explicit choice wins


def test_evaluate_user_errors(synth_folder, tmp_path, capsys):
    assert main(["evaluate", str(synth_folder), "--methods", "fbca"]) == 2
    assert "unknown method 'fbca'; choose from" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "absent")]) == 2
    assert "Recording or folder not found" in capsys.readouterr().err
    assert main(["evaluate", str(synth_folder), "--classes", "5", "--no-phase",
                 "--no-progress"]) == 2  # fmt: skip
    assert "Cannot evaluate 5 classes" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", str(synth_folder), "--windows", "0.5,abc"])
    assert exc.value.code == 2
    assert "expected numbers separated by commas" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["evaluate", str(synth_folder), "--scheme", "loso"])
    assert "scheme must be within, cross or both" in capsys.readouterr().err
