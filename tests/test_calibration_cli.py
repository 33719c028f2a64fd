"""``ssvep-exo calibrate``, ``profile show`` and ``stimulus`` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bci.cli import main


@pytest.fixture(scope="module")
def recording(calibration_file) -> Path:
    return calibration_file


def test_calibrate_from_file_then_profile_show(recording, tmp_path, capsys):
    out = tmp_path / "prof"
    rc = main(["calibrate", "--from-file", str(recording), "--output", str(out),
               "--methods", "fbcca", "--windows", "1", "--tmin", "1", "--far-target", "2",
               "--commands", "13=walk,17=sit"])
    captured = capsys.readouterr()
    assert rc == 0
    lines = captured.out.strip().splitlines()
    assert lines[-1] == f"Profile saved to {out} (use it with: ssvep-exo run --profile {out})"
    assert any(ln.startswith("selected: fbcca 1 s") for ln in lines)
    assert any("calibration_accuracy_itr.png" in ln for ln in lines)
    rc = main(["profile", "show", str(out)])
    shown = capsys.readouterr().out
    assert rc == 0
    assert "13.0Hz -> walk, 17.0Hz -> sit" in shown and "fbcca" in shown
    assert "FAR target  2 per min" in shown
    rc = main(["profile", "show", str(out / "profile.json"), "--stream-channels", "Oz,O1",
               "--stream-sfreq", "256"])
    err = capsys.readouterr().err
    assert rc == 2 and "lacks the profile's channel(s)" in err


def test_profile_show_invalid_is_one_line(tmp_path, capsys, recording):
    rc = main(["profile", "show", str(tmp_path / "missing")])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("ssvep-exo profile: error: No profile at")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "profile.json").write_text(json.dumps({"format": "ssvep-exo-profile",
                                                  "schema_version": 0}))
    rc = main(["profile", "show", str(bad)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "schema version 0" in err


def test_calibrate_arguments(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["calibrate", "--output", str(tmp_path)])  # no source
    with pytest.raises(SystemExit):
        main(["calibrate", "--from-file", "x.fif", "--output", str(tmp_path),
              "--commands", "walk"])
    assert "expected FREQ=COMMAND pairs" in capsys.readouterr().err
    rc = main(["calibrate", "--from-file", str(tmp_path / "none.fif"), "--output",
               str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "none.fif" in err


def test_stimulus_cli(capsys, unique_name):
    pytest.importorskip("pygame")
    rc = main(["stimulus", "--freqs", "13,31", "--refresh-rate", "60", "--duration", "0.2"])
    err = capsys.readouterr().err
    assert rc == 2 and "below 30.0 Hz (Nyquist)" in err and err.count("\n") == 1
    rc = main(["stimulus", "--freqs", "13,17", "--labels", "walk,stop", "--refresh-rate", "60",
               "--duration", "0.3", "--marker-name", unique_name])
    assert rc == 0 and "refresh rate 60.00 Hz" in capsys.readouterr().out
    rc = main(["stimulus", "--freqs", "13,17", "--labels", "walk", "--refresh-rate", "60"])
    assert rc == 2 and "one label per frequency" in capsys.readouterr().err
