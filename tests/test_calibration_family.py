"""Calibration picks the decoder family the data calls for: template decoders (eTRCA, TDCA)
are dropped from the default candidates when the cues are not phase-locked (free-running
lights), with one line saying so; methods the user names are always tried.
"""

from __future__ import annotations

import re

import pytest

from bci.sources.synthetic import synthesize_raw
from calibration import selection as sel
from calibration.session import calibrate_raws

NOTE = re.compile(r"^Cues are not phase-locked \(ITC \d\.\d\d vs chance \d\.\d\d, p=[\d.e-]+\): "
                  r"template decoders \(etrca, tdca\) skipped; name them with --methods to "
                  r"try anyway\.$")
FAST = {"windows": [1.0], "tmin": 1.0, "step_s": 0.25, "n_folds": 3}


def _raw(phase_locked: bool, reps: int = 4, seed: int = 3):
    sched = ",".join(["rest:3"] + [f"{f}:4,rest:3" for f in (13, 17, 21)] * reps)
    return synthesize_raw(sched, snr=0.6, seed=seed, phase_locked=phase_locked)


@pytest.fixture(scope="module")
def free_raw():
    return _raw(False)


@pytest.fixture(scope="module")
def locked_raw():
    return _raw(True)


def _methods(report) -> set[str]:
    return {r["method"] for r in report.records}


def test_free_running_data_skips_template_decoders_by_default(free_raw):
    profile, report = calibrate_raws([free_raw], **FAST)
    assert _methods(report) == {"cca", "fbcca", "ress-fbcca"}
    assert len(report.notes) == 1 and NOTE.match(report.notes[0]), report.notes
    assert report.notes[0] in report.table().splitlines()
    check = profile.extra["phase_locking"]
    assert check["locked"] is False and check["p_value"] >= sel.PHASE_LOCK_ALPHA


def test_phase_locked_data_keeps_template_decoders(locked_raw):
    profile, report = calibrate_raws([locked_raw], **FAST)
    assert _methods(report) == {"cca", "fbcca", "etrca", "tdca", "ress-fbcca"}
    assert not [n for n in report.notes if "phase" in n or "template" in n]  # nothing pruned
    assert "phase-locked" not in report.table()
    assert profile.extra["phase_locking"]["locked"] is True
    # eTRCA does well here, where it would score near chance without phase locking
    etrca = [r for r in report.records if r["method"] == "etrca"][0]
    assert etrca["accuracy"] > 0.5


def test_named_template_methods_are_tried_on_free_running_data(free_raw):
    _, report = calibrate_raws([free_raw], methods=["cca", "etrca"], **FAST)
    assert _methods(report) == {"cca", "etrca"}
    assert not [n for n in report.notes if "phase-locked" in n]  # no template pruning note


def test_phase_check_tells_locked_free_and_too_few_trials(free_raw, locked_raw):
    free = sel.phase_check([free_raw], tmin=1.0, window_s=1.0)
    locked = sel.phase_check([locked_raw], tmin=1.0, window_s=1.0)
    assert free.locked is False and locked.locked is True
    assert locked.itc > 1.4 * locked.chance > free.itc
    # two trials per frequency: even identical phases would not be significant
    few = sel.phase_check([_raw(True, reps=2)], tmin=1.0, window_s=1.0)
    assert few.locked is None


def test_calibrate_cli_prints_the_skip_line(tmp_path, free_raw, capsys):
    from bci.cli import main

    fif = tmp_path / "calib_raw.fif"
    free_raw.save(fif, verbose=False)
    code = main(["calibrate", "--from-file", str(fif), "--output", str(tmp_path / "prof"),
                 "--windows", "1", "--tmin", "1"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert sum(bool(NOTE.match(line)) for line in out) == 1, out
    assert not any(line.lstrip("* ").startswith(("etrca", "tdca")) for line in out)


def _tiny_raw():
    # one trial per target: too few for TDCA's covariance estimates in 2 folds
    sched = ",".join(["rest:3"] + [f"{f}:4,rest:3" for f in (13, 17, 21)] * 2)
    return synthesize_raw(sched, snr=0.6, seed=3, phase_locked=True)


def test_a_candidate_that_cannot_be_fitted_is_left_out_with_a_note():
    profile, report = calibrate_raws([_tiny_raw()], methods=["tdca", "fbcca"], windows=[1.0],
                                     tmin=1.0, step_s=0.25, n_folds=2)
    assert _methods(report) == {"fbcca"} and profile.method == "fbcca"
    (note,) = [n for n in report.notes if n.startswith("tdca at 1 s left out")]
    assert "Record more trials per class" in note and "13.0Hz 1" in note


def test_no_candidate_fitted_is_a_calibration_error():
    from calibration.errors import CalibrationError

    with pytest.raises(CalibrationError, match=r"No candidate decoder could be fitted.*tdca "
                                               r"cannot be fitted"):
        calibrate_raws([_tiny_raw()], methods=["tdca"], windows=[1.0], tmin=1.0, step_s=0.25,
                       n_folds=2)
