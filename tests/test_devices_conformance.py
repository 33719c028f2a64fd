"""The conformance kit passes against the simulator and fails, naming the check, against a
simulator with each property broken on purpose (``ExoSimulator(faults=[...])``)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from devices.conformance import CHECKS, FAIL, PASS, SKIP, Limits, run_conformance
from devices.protocol import MOTION_VERBS
from devices.simulator import FAULTS, ExoSimulator

# Timing bounds are a property of the controller, measured by `make bench`; here the verdicts
# must not depend on how busy the machine is, so the time limits are wide.
WIDE = Limits(watchdog_report_s=3.0, tel_interval_s=1.0, reply_s=1.0)

# fault injected -> the check that must catch it
CAUGHT_BY = {
    "dedup_stop": "stop_always",
    "newest_client_wins": "second_client",
    "watchdog_any_frame": "one_way_link",
    "late_telemetry": "halt_report",
    "hello_keeps_motion": "new_session_halts",
    "motion_without_session": "session_required",
    "reset_anywhere": "transitions",
    "no_early_telemetry": "telemetry",
}


def received_verbs(sim) -> list[str]:
    """Wrap the controller's frame handler: the verbs of every host frame it gets."""
    verbs: list[str] = []
    handle = sim.model.handle

    def spy(frame, now, conn=0):
        verbs.append(frame.verb)
        return handle(frame, now, conn)

    sim.model.handle = spy
    return verbs


def test_every_fault_injection_has_a_check():
    assert set(CAUGHT_BY) == set(FAULTS)
    assert set(CAUGHT_BY.values()) <= set(CHECKS)


def test_the_kit_passes_against_the_simulator_on_stand():
    with ExoSimulator(speed=4.0) as sim:
        results = run_conformance(sim.url, on_stand=True, runs=3, limits=WIDE)
    by_name = {r.name: r for r in results}
    assert list(by_name) == list(CHECKS)
    assert [r.name for r in results if r.status != PASS] == [], results
    assert re.search(r"min \d+ / median \d+ / max \d+ ms over 3 runs",
                     by_name["watchdog"].figure)
    assert "read-only" in by_name["second_client"].figure
    assert sim.model.halts  # it did walk, and the watchdog halted it


def test_without_on_stand_no_motion_verb_is_ever_sent():
    with ExoSimulator() as sim:
        verbs = received_verbs(sim)
        results = run_conformance(sim.url, on_stand=False, runs=2, limits=WIDE)
    assert not set(verbs) & set(MOTION_VERBS), sorted(set(verbs))
    assert {"HELLO", "HB", "STATUS", "STOP", "ESTOP", "RESET"} <= set(verbs)
    status = {r.name: r.status for r in results}
    assert status["new_session_halts"] == SKIP
    assert [n for n, s in status.items() if s not in (PASS, SKIP)] == []


@pytest.mark.parametrize("fault", sorted(CAUGHT_BY))
def test_each_broken_simulator_fails_the_check_that_covers_it(fault):
    check = CAUGHT_BY[fault]
    runs = 8 if check == "halt_report" else 3  # a late report may by chance be early once
    with ExoSimulator(speed=4.0, faults=[fault]) as broken:
        results = run_conformance(broken.url, on_stand=True, runs=runs, limits=WIDE,
                                  checks=[check])
    failed = {r.name: r for r in results if r.status == FAIL}
    assert check in failed, results
    assert failed[check].detail  # says what went wrong
    with ExoSimulator(speed=4.0) as good:  # the same check passes on the real thing
        again = run_conformance(good.url, on_stand=True, runs=runs, limits=WIDE,
                                checks=[check])
    assert all(r.status == PASS for r in again), again


def test_second_client_on_a_pty_is_the_exclusive_open(tmp_path):
    with ExoSimulator(transport="pty", link=str(tmp_path / "exo")) as sim:
        (result,) = run_conformance(sim.url, runs=1, limits=WIDE, checks=["second_client"])
    assert result.status == PASS and "second exclusive open is refused" in result.figure


def test_unknown_check_and_bad_runs_are_errors():
    with pytest.raises(ValueError, match="Unknown check"):
        run_conformance("loop://", checks=["nope"])
    with pytest.raises(ValueError, match="'runs' must be at least 1"):
        run_conformance("loop://", runs=0)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bci", "conformance", *args],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_cli_exits_non_zero_naming_the_failed_safety_check():
    with ExoSimulator(faults=["dedup_stop"]) as broken:
        r = _cli(broken.url, "--check", "stop_always", "--check", "framing")
    assert r.returncode == 1, r.stderr
    assert re.search(r"^stop_always\s+yes\s+FAIL\s+an ESTOP repeating sequence number \d+ "
                     r"was answered but not executed", r.stdout, re.M), r.stdout
    assert re.search(r"^framing\s+yes\s+pass", r.stdout, re.M), r.stdout
    assert "conformance: SAFETY CHECK FAILED: stop_always" in r.stderr
    with ExoSimulator() as good:
        r = _cli(good.url, "--check", "stop_always", "--check", "second_client")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "conformance: all 2 checks run passed" in r.stdout
    assert "motion checks skipped (no --on-stand)" in r.stdout


def test_cli_without_a_controller_is_a_one_line_error():
    r = _cli("/dev/ttyNOPE9")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1].startswith(
        "ssvep-exo conformance: error: Serial port '/dev/ttyNOPE9' not found")
