"""``ssvep-exo simulate-eeg`` and ``ssvep-exo replay`` from the shell."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from bci.acquisition import EEGStream, MarkerStream
from bci.cli import main


def _cli(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "bci", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, **kw)


def test_simulate_eeg_publishes_stream_and_markers(unique_name):
    proc = _cli("simulate-eeg", "--schedule", "rest:1,13:2,17:2", "--name",
                unique_name, "--source-id", unique_name + "-sid")
    try:  # markers first: the 17 Hz cue comes 3 s after the start
        with MarkerStream(unique_name + "-markers", source_id=unique_name + "-sid-markers",
                          ).connect(timeout=30) as mk, \
                EEGStream(source_id=unique_name + "-sid", buffer_s=10).connect(timeout=30) as eeg:
            out, err = proc.communicate(timeout=60)
            t0 = time.monotonic()
            while mk.n_received < 2 and time.monotonic() - t0 < 30:
                time.sleep(0.01)
            assert eeg.ch_names[:3] == ("Oz", "O1", "O2")
            assert eeg.n_samples_received > 0
            labels = [m for _, m in mk.pull()]
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "Schedule (5 s): rest:1,13:2,17:2" in out
    assert f"Publishing LSL stream {unique_name!r}" in out
    assert "marker 13.0Hz" in out and "Done: 1280 samples and 3 markers published." in out
    assert set(labels) <= {"rest", "13.0Hz", "17.0Hz"} and "17.0Hz" in labels


def test_simulate_eeg_bad_schedule_is_one_line(capsys):
    assert main(["simulate-eeg", "--schedule", "rest:1,13"]) == 2
    err = capsys.readouterr().err
    assert "ssvep-exo simulate-eeg: error: Cannot read schedule segment '13'" in err
    assert "Traceback" not in err


def test_replay_missing_file_is_one_line(capsys, tmp_path):
    assert main(["replay", str(tmp_path / "nope.fif")]) == 2
    assert "ssvep-exo replay: error: Recording not found" in capsys.readouterr().err


@pytest.mark.realdata
def test_replay_kalunga_for_a_while(kalunga_session, unique_name):
    proc = _cli("replay", str(kalunga_session), "--speed", "20", "--duration", "1.5",
                "--name", unique_name)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "222.8 s, 32 markers" in out and "Stopped after 1.5 s" in out
    assert "marker rest" in out


def test_ctrl_c_closes_the_outlets(unique_name, capsys):
    import _thread
    import threading

    from bci.cli._source_run import run_source
    from bci.sources import SyntheticEEG

    src = SyntheticEEG("rest:60", name=unique_name, loop=True)
    done = threading.Event()

    def ctrl_c():  # once it publishes; again should a loaded machine lose the first one
        while not done.wait(0.5):
            if src.running and src.n_pushed > 0:
                _thread.interrupt_main()

    threading.Thread(target=ctrl_c, daemon=True).start()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_source(src, duration=None)
    finally:
        done.set()
    assert not src.is_open and not src.running
    assert "Interrupted: " in capsys.readouterr().out
