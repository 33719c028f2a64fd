"""The host process (`ssvep-exo run`) killed outright while the exoskeleton walks.

The controller is a simulator served on TCP by the test process, so it outlives the host:
the test observes its watchdog halt and measures the time from SIGKILL to the halt. The
session log and the XDF recording the killed host leaves behind must load back.
(SIGINT/SIGTERM and the host-side view of SIGKILL with its own simulator are in
tests/test_cli_run.py; the driver-only SIGKILL is in tests/test_devices_cli.py.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bci.app.config import SessionConfig
from bci.cli.demo import DEMO_CONFIG, calibrate_demo_user
from bci.datasets import load_recording
from bci.online import read_session_log
from devices.simulator import ExoSimulator

# stand (21 Hz) then walk (13 Hz), offered three times in case a loaded machine makes the
# loop miss a selection, then nothing
SCHEDULE = "rest:0.5," + "21:2.5,13:2.5," * 3 + "rest:120"


@pytest.fixture(scope="module")
def profile(tmp_path_factory) -> Path:
    return calibrate_demo_user(tmp_path_factory.mktemp("profile") / "profile",
                               SessionConfig(DEMO_CONFIG))


def _config(tmp_path: Path) -> Path:
    demo = (Path(__file__).resolve().parents[1] / "configs" / "demo.toml").read_text()
    text = (demo.replace("walk_steps = 8", "walk_steps = 10")
            .replace("confirm_posture_changes = true", "confirm_posture_changes = false"))
    assert "walk_steps = 10" in text and "confirm_posture_changes = false" in text
    p = tmp_path / "kill.toml"
    p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.slow
def test_host_sigkilled_while_walking_controller_halts_files_load(tmp_path, profile,
                                                                  unique_name,
                                                                  record_property):
    out = tmp_path / "out"
    with ExoSimulator(transport="tcp", step_s=1.0) as sim:
        env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg")
        proc = subprocess.Popen(
            [sys.executable, "-m", "bci", "run", "--config", str(_config(tmp_path)),
             "--profile", str(profile), "--schedule", SCHEDULE, "--stream", unique_name,
             "--decisions-stream", unique_name + "-dec", "--port", sim.url,
             "--output", str(out), "--no-live-view"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        try:
            deadline = time.monotonic() + 90
            while sim.snapshot().state != "WALKING":
                assert proc.poll() is None, proc.communicate()[1]
                assert time.monotonic() < deadline, "the exoskeleton never walked"
                time.sleep(0.01)
            # the log line of the executed WALK is flushed before the kill
            while not any(e["event"] == "command" and e.get("command") == "walk"
                          and e.get("result") == "executed"
                          for f in out.glob("*/session.jsonl") for e in read_session_log(f)):
                assert time.monotonic() < deadline, "the executed WALK was never logged"
                time.sleep(0.05)
            t_kill = time.monotonic()
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
            deadline = time.monotonic() + 30
            while not sim.model.halts:
                assert time.monotonic() < deadline, "the controller kept walking"
                time.sleep(0.005)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        halt = sim.model.halts[0]
        after = halt.time - t_kill
        record_property("sigkill_watchdog_halt_s", round(after, 3))
        print(f"\n[fault] host SIGKILLed: controller halt ({halt.reason}) {after:.3f} s after "
              f"the kill ({halt.silence_s:.3f} s after the last heartbeat)")
        # TCP: the kernel closes the dead host's connection, which ends its session (protocol
        # v2) before the watchdog would
        assert halt.reason in ("SESSION_END", "WATCHDOG") and halt.state_before == "WALKING"
        # the time is checked against its bound by scripts/bench_faults.py, not here
        assert sim.snapshot().state == "STOPPED"
        assert [v for t, v, _ in sim.executed() if t > t_kill] == []
    assert proc.returncode == -signal.SIGKILL
    (folder,) = [p for p in out.iterdir() if p.is_dir()]
    log = read_session_log(folder / "session.jsonl")  # every complete line loads
    assert log[0]["event"] == "session_start"
    walk = [e for e in log if e["event"] == "command" and e.get("command") == "walk"]
    executed = next(e for e in walk if e["result"] == "executed")
    # the walk came out of the decoded stream: decisions were logged before it
    assert any(e["event"] == "decision" for e in log[:log.index(executed)])
    assert not (folder / "summary.json").exists()  # never finished: nothing pretends it did
    # each chunk is written whole, so the file nearly always ends at a chunk boundary; a
    # kill in the middle of a write would cut the last chunk, which salvage skips
    raw = load_recording(folder / "recording.xdf", salvage=True)
    assert raw.info["sfreq"] == 256.0 and len(raw.ch_names) == 8
    assert raw.n_times > 4 * 256  # the EEG up to the last flushed chunk
    assert "13.0Hz" in set(raw.annotations.description)
