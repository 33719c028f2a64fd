"""Bad input a new user gave the command line: each is one line on stderr, exit status 2, no
traceback, and nothing written half-way.

Every case here once ended in a traceback (or, for ``evaluate``, in a table of ``n/a`` with exit
status 0). Each command runs in a subprocess, as a user runs it, so the stderr checked is the
real one.
"""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bci.app.config import SessionConfig
from bci.cli.demo import DEMO_CONFIG, calibrate_demo_user
from bci.recording import SessionRecorder
from bci.sources.synthetic import synthesize_raw
from calibration.cues import CueSequence
from calibration.profile import json_digest

EXE = [sys.executable, "-m", "bci"]


def _run(args: list, timeout: float = 120.0, unset: tuple = ()) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    for name in ("BCI_RAISE_THREAD_ERRORS", *unset):
        env.pop(name, None)
    return subprocess.run(EXE + [str(a) for a in args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def _one_line_error(r: subprocess.CompletedProcess, command: str, pattern: str) -> str:
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"ssvep-exo {command}: error: "), lines[0]
    assert re.search(pattern, lines[0]), lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def recording(calibration_file) -> Path:
    return calibration_file


def _xdf(path: Path, schedule: str) -> Path:
    """Record a synthetic schedule to XDF the way a session does (EEG, then the cues)."""
    raw = synthesize_raw(schedule, seed=3)
    sfreq = raw.info["sfreq"]
    rec = SessionRecorder(path, ch_names=list(raw.ch_names), sfreq=sfreq, flush_s=0.0).start()
    t0 = 100.0
    data = raw.get_data().T
    cues = [(float(a["onset"]), str(a["description"])) for a in raw.annotations]
    for k in range(0, len(data), 256):
        chunk = data[k:k + 256]
        rec.push_eeg(chunk, t0 + (k + np.arange(len(chunk))) / sfreq)
        while cues and cues[0][0] * sfreq < k + len(chunk):  # each cue as it happens
            onset, label = cues.pop(0)
            rec.push_marker(t0 + onset + 1e-3, label)  # 1 ms after a sample: unique stamp
    rec.close()
    return path


# ---------------------------------------------------------------------- command maps


def test_calibrate_refuses_an_illegal_menu_before_any_work(recording, tmp_path):
    out = tmp_path / "prof"
    menus = tmp_path / "menus.toml"
    menus.write_text('[menu.sitting]\n13 = "walk"\n', encoding="utf-8")
    r = _run(["calibrate", "--from-file", recording, "--output", out, "--menus", menus])
    _one_line_error(r, "calibrate", r"sitting: 13.0Hz -> walk is not legal while sitting "
                                    r"\(legal: stand, stop\)")
    assert not out.exists()


def test_calibrate_refuses_a_frequency_the_recordings_do_not_have(recording, tmp_path):
    out = tmp_path / "prof"
    menus = tmp_path / "menus.toml"
    menus.write_text('[decoder]\nfreqs = [14, 17]\n[menu.sitting]\n14 = "stand"\n',
                     encoding="utf-8")
    r = _run(["calibrate", "--from-file", recording, "--output", out, "--menus", menus])
    _one_line_error(r, "calibrate", r"The menus name 14.0Hz, but the targets are "
                                    r"13.0Hz, 17.0Hz")
    assert not out.exists()


def test_profile_menu_with_an_unknown_command_is_refused_by_show_and_run(tmp_path, unique_name):
    prof = calibrate_demo_user(tmp_path / "prof", SessionConfig(DEMO_CONFIG))
    doc = json.loads(prof.read_text())
    doc["menus"] = {"SITTING": {"13.0Hz": "fly"}}
    doc["json_sha256"] = json_digest(doc)  # a deliberate edit, re-signed: validation decides
    prof.write_text(json.dumps(doc))
    r = _run(["profile", "show", prof.parent])
    _one_line_error(r, "profile", r"sitting: 13.0Hz -> 'fly' is not a command")
    out = tmp_path / "sessions"
    r = _run(["run", "--profile", prof.parent, "--simulator", "--stream", unique_name,
              "--output", out, "--no-live-view", "--duration", "5"])
    _one_line_error(r, "run", r"profile .*sitting: 13.0Hz -> 'fly' is not a command")
    assert not out.exists() or not any(out.iterdir())  # no half-written session folder


def test_profile_whose_sfreq_disagrees_with_its_decoder_is_refused(tmp_path):
    prof = calibrate_demo_user(tmp_path / "prof", SessionConfig(DEMO_CONFIG))
    doc = json.loads(prof.read_text())
    doc["sfreq"] = 512.0
    doc["json_sha256"] = json_digest(doc)  # a deliberate edit, re-signed: validation decides
    prof.write_text(json.dumps(doc))
    r = _run(["profile", "show", prof.parent])
    _one_line_error(r, "profile", r"'sfreq' is 512 Hz but its decoder was fitted at 256 Hz")


# ---------------------------------------------------------------------- damaged files


@pytest.mark.parametrize("stamp, why", [(102.001, r"marker '13.0Hz' has no valid time stamp"),
                                        (102.0, r"the EEG stream has invalid time stamps")],
                         ids=["cue", "eeg"])
def test_damaged_xdf_is_one_line_in_evaluate_replay_and_calibrate(tmp_path, stamp, why):
    """A time stamp damaged to NaN made MNE's annotations raise (found by fuzzing)."""
    path = _xdf(tmp_path / "rec.xdf", "rest:2,13:3,17:3,13:3,17:3,rest:2")
    blob = bytearray(path.read_bytes())
    at = blob.find(struct.pack("<d", stamp))  # the first 13.0Hz cue, or the sample then
    assert at > 0
    blob[at:at + 8] = struct.pack("<d", float("nan"))
    damaged = tmp_path / "damaged.xdf"
    damaged.write_bytes(bytes(blob))
    pattern = r"damaged.xdf: the file looks truncated or corrupted \(" + why
    _one_line_error(_run(["evaluate", damaged, "--no-progress"]), "evaluate", pattern)
    if stamp == 102.0:
        return  # the reader is shared: the other commands are checked with the cue case
    _one_line_error(_run(["replay", damaged, "--duration", "1"]), "replay", pattern)
    out = tmp_path / "prof"
    _one_line_error(_run(["calibrate", "--from-file", damaged, "--output", out]), "calibrate",
                    pattern)
    assert not out.exists()


# ---------------------------------------------------------------------- evaluate


@pytest.mark.realdata
def test_evaluate_windows_and_offsets_must_fit_the_trials(kalunga_session, tmp_path):
    out = tmp_path / "r.json"
    common = [kalunga_session, "--no-progress", "--json", out]
    for args in (["--windows", "100"], ["--windows", "10"], ["--windows", "1,5"]):
        r = _run(["evaluate", *common, *args])
        line = _one_line_error(r, "evaluate", r"too long for these trials: cues are 6.5\d s "
                                              r"apart and windows start 2 s after the cue")
        assert "use windows of at most 4.5" in line
    _one_line_error(_run(["evaluate", *common, "--tmin", "-5"]), "evaluate",
                    r"--tmin must be >= 0 s \(windows start after the cue\), got -5")
    assert not out.exists()


def test_evaluate_a_session_recording_says_why_nothing_can_be_evaluated(tmp_path):
    """The demo's own recording.xdf has one trial per target; a truncated one even fewer."""
    path = _xdf(tmp_path / "recording.xdf", "rest:4,13:5,rest:4,17:5,rest:4,21:5,rest:4")
    r = _run(["evaluate", path, "--no-progress"])
    _one_line_error(r, "evaluate", r"Nothing to evaluate: within-session cross-validation "
                                   r"needs at least 2 trials of each of 2 or more stimulus "
                                   r"frequencies; recording: 1 session\(s\), trials 13.0Hz: 1, "
                                   r"17.0Hz: 1, 21.0Hz: 1, rest: 4")
    assert "n/a" not in r.stdout


def test_truncated_xdf_is_one_line_in_evaluate_replay_and_calibrate(tmp_path):
    """A recording cut in half (a copy that stopped): pyxdf skipped the cut chunk, so the
    commands printed a warning line, then went on with half a file (evaluate and calibrate
    to an error about what was left, replay to exit status 0). Now one line says which file
    is cut where, before anything is done with it."""
    path = _xdf(tmp_path / "recording.xdf", "rest:2,13:3,17:3,13:3,17:3,rest:2")
    truncated = tmp_path / "truncated.xdf"
    blob = path.read_bytes()
    truncated.write_bytes(blob[:len(blob) // 2])
    pattern = (rf"Could not read \S*truncated.xdf: the file is truncated \(it ends at byte "
               rf"{len(blob) // 2:,}, [\d,]+ bytes before the end of its last chunk\)\. "
               r"Re-copy it")
    _one_line_error(_run(["evaluate", truncated, "--no-progress"]), "evaluate", pattern)
    _one_line_error(_run(["replay", truncated, "--duration", "1"]), "replay", pattern)
    out = tmp_path / "prof"
    _one_line_error(_run(["calibrate", "--from-file", truncated, "--output", out]),
                    "calibrate", pattern)
    assert not out.exists()


# ---------------------------------------------------------------------- calibration, stimulus


def test_calibration_without_rest_is_refused_unless_accepted(tmp_path):
    seq = CueSequence.balanced([13, 17], 3, include_rest=False, trial_s=3.0, lead_s=0.0, seed=4)
    norest = tmp_path / "norest_raw.fif"
    synthesize_raw(",".join(f"{lab}:{d:g}" for lab, d in seq.schedule().segments), seed=8,
                   snr=0.8).save(norest, verbose="error")
    out = tmp_path / "prof"
    common = ["calibrate", "--from-file", norest, "--output", out, "--methods", "fbcca",
              "--windows", "1", "--tmin", "1"]
    _one_line_error(_run(common), "calibrate", r"no rest \(no-control\) trials, so no threshold "
                                               r"can be chosen .* --allow-no-rest")
    assert not out.exists()
    r = _run(common + ["--allow-no-rest"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("Warning: no rest trials") == 1 and "no rest" not in r.stderr
    assert r.stdout.strip().splitlines()[-1].startswith(f"Profile saved to {out}")
    # live: refused before looking for a stream
    _one_line_error(_run(["calibrate", "--stream", "nothing-here", "--output", out,
                          "--no-rest"]), "calibrate", r"--no-rest .* add --allow-no-rest")


@pytest.mark.parametrize("args, pattern", [
    (["--cued", "2", "--trial-s", "0.4"],
     r"--trial-s must be >= 0.5 s \(the stimulation of each trial, after its --cue-s cue\), "
     r"got 0.4\.$"),
    (["--cued", "1"], r"--cued must be >= 2 trials per class .*, or 0 \(free flicker"),
    (["--cued", "2", "--cue-s", "-1"], r"--cue-s must be >= 0 s \(the cue before each trial\)"),
    (["--cued", "2", "--rest-s", "nan"], r"--rest-s must be a finite number >= 0 s"),
    (["--cued", "2", "--seed", "-1"], r"--seed must be >= 0, got -1\.$"),
    (["--duration", "0"], r"--duration must be > 0 s \(the free-running flicker\), got 0\.$"),
    (["--refresh-rate", "0"], r"--refresh-rate must be > 0 Hz, got 0\.$"),
    (["--freqs", "13,13"], r"--freqs must not repeat a frequency, got 13, 13\.$"),
    (["--phases", "nan,0,0"], r"--phases must be finite numbers"),
], ids=["trial-s", "cued", "cue-s", "rest-s", "seed", "duration", "refresh-rate", "freqs",
        "phases"])
def test_stimulus_timing_and_neighbouring_options_are_one_line(args, pattern):
    """Each of these ended in a ValueError traceback (--trial-s 0.4: the cue sequence's
    0.5 s floor; the window opened first). They are refused before any window or board
    opens, so no display is needed here."""
    _one_line_error(_run(["stimulus", *args], unset=("SDL_VIDEODRIVER",)), "stimulus",
                    pattern)


def test_live_calibration_trial_options_are_checked_before_the_stream_is_looked_for(tmp_path):
    out = tmp_path / "prof"
    common = ["calibrate", "--stream", "no-such-stream-anywhere", "--output", out]
    _one_line_error(_run(common + ["--trial-s", "0.4"]), "calibrate",
                    r"--trial-s must be >= 0.5 s")
    _one_line_error(_run(common + ["--trials", "1"]), "calibrate",
                    r"--trials must be >= 2 trials per class")
    # the default windows (1, 1.5, 2 s) do not fit 1 s trials: said before, not after, the
    # minutes of recording
    _one_line_error(_run(common + ["--trial-s", "1"]), "calibrate",
                    r"No window fits 1 s trials starting 0.25 s after the cue")
    assert not out.exists()


@pytest.mark.skipif(bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")),
                    reason="a display is available here")
def test_stimulus_without_a_display_says_so():
    pytest.importorskip("pygame")
    for extra in ([], ["--refresh-rate", "60"]):  # the suite asks for SDL's dummy driver: unset
        r = _run(["stimulus", "--freqs", "13,17", "--duration", "0.3", *extra],
                 unset=("SDL_VIDEODRIVER",))
        _one_line_error(r, "stimulus", r"No display is available \(SDL found none")
        assert "XDG_RUNTIME_DIR" not in r.stderr + r.stdout
