"""The safety supervisor with the real driver against the simulated controller (socket://)."""

from __future__ import annotations

import time

import pytest

from bci.labels import normalize_label
from devices.commands import Command
from devices.exoskeleton import ExoskeletonDriver
from devices.safety import SafetySupervisor
from devices.simulator import ExoSimulator

MAPPING = {
    "13.0Hz": Command.WALK,
    "17.0Hz": Command.STAND,
    "15.0Hz": Command.SIT,
    "19.0Hz": Command.TURN_LEFT,
    "21.0Hz": "stop",
}

WAIT_S = 20.0  # generous: the suite may run on a loaded machine


def wait_for(pred, timeout=3.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.005)
    return bool(pred())


class Log(list):
    def __call__(self, event, data):
        self.append((event, data))

    def events(self):
        return [e for e, _ in self]


@pytest.fixture
def rig():
    with ExoSimulator(speed=4.0) as sim, ExoskeletonDriver(sim.url) as exo:
        exo.wait_telemetry(lambda t: True, WAIT_S)
        log = Log()
        sup = SafetySupervisor(exo, MAPPING, walk_steps=10, turn_deg=45, log=log,
                               label_key=normalize_label)
        yield sim, exo, sup, log


def stand_up(sup, exo):
    assert sup.on_selection("17.0Hz").status == "awaiting_confirmation"
    assert sup.on_selection("17.0Hz").forwarded
    assert exo.wait_telemetry(lambda t: t.state == "STANDING", WAIT_S)


def start_walking(sup, exo):
    stand_up(sup, exo)
    assert sup.on_selection("13.0Hz").forwarded
    assert exo.wait_telemetry(lambda t: t.state == "WALKING", WAIT_S)


def test_legal_transitions_and_confirmation(rig):
    sim, exo, sup, log = rig
    out = sup.on_selection("13.0Hz")
    assert out.status == "refused" and out.reason == "walk is not legal while sitting"
    stand_up(sup, exo)
    out = sup.on_selection("13.0Hz")
    assert out.forwarded and out.command is Command.WALK
    assert exo.wait_telemetry(lambda t: t.state == "WALKING", WAIT_S)
    out = sup.on_selection("19.0Hz")
    assert out.status == "refused" and "stop first" in out.reason
    assert sup.on_selection("21.0Hz").forwarded
    assert exo.wait_telemetry(lambda t: t.state == "STOPPED", WAIT_S)
    assert [v for _, v, a in sim.executed()] == ["STAND", "WALK", "STOP"]
    assert sim.executed()[1][2] == ("10",)
    # every selection, forward, refusal and ACK went to the log
    ev = log.events()
    assert ev.count("selection") == 6 and ev.count("forwarded") == 3
    assert ev.count("refused") == 2 and ev.count("awaiting_confirmation") == 1
    assert wait_for(lambda: log.events().count("ack") == 3, 1.0)


def test_rest_and_unmapped_labels_never_move(rig):
    sim, exo, sup, log = rig
    stand_up(sup, exo)
    assert sup.on_selection("rest").status == "ignored"
    assert sup.on_selection(None).status == "ignored"
    out = sup.on_selection("30.0Hz")
    assert out.status == "refused" and out.reason == "label '30.0Hz' is not mapped"
    assert sup.on_selection(13).forwarded  # numeric labels name the same target
    assert [v for _, v, _ in sim.executed()] == ["STAND", "WALK"]


def test_confirmation_is_reset_by_another_target_and_expires(rig):
    sim, exo, sup, log = rig
    assert sup.on_selection("17.0Hz").status == "awaiting_confirmation"
    assert sup.on_selection("13.0Hz").status == "refused"  # another target in between
    assert sup.on_selection("17.0Hz").status == "awaiting_confirmation"
    assert sup.on_selection("rest").status == "ignored"  # rest in between is allowed
    assert sup.on_selection("17.0Hz").forwarded
    sup.confirm_window_s = 0.1
    assert sup.on_selection("15.0Hz").status == "awaiting_confirmation"
    time.sleep(0.2)
    assert sup.on_selection("15.0Hz").status == "awaiting_confirmation"
    assert sup.on_selection("21.0Hz").forwarded  # STOP cancels the pending SIT
    assert sup.on_selection("15.0Hz").status == "awaiting_confirmation"


def test_no_confirmation_when_disabled():
    with ExoSimulator(speed=4.0) as sim, ExoskeletonDriver(sim.url) as exo:
        exo.wait_telemetry(lambda t: True, WAIT_S)
        sup = SafetySupervisor(exo, MAPPING, confirm_posture_changes=False)
        assert sup.on_selection("17.0Hz").forwarded


def test_bad_health_stops_and_inhibits_until_good(rig):
    sim, exo, sup, log = rig
    start_walking(sup, exo)
    out = sup.on_health(False, "3 flat channels")
    assert out is not None and out.forwarded and out.command is Command.STOP
    assert exo.wait_telemetry(lambda t: t.state == "STOPPED", WAIT_S)
    out = sup.on_selection("13.0Hz")
    assert out.status == "refused" and out.reason == "motion inhibited: signal: 3 flat channels"
    assert sup.on_health(False, "still flat") is None  # not moving: nothing to stop
    sup.on_health(True)
    assert sup.inhibited == {}
    assert sup.on_selection("13.0Hz").forwarded
    assert ("health", {"ok": False, "reason": "3 flat channels"}) in log


def test_stream_stall_and_decoder_lag_stop_motion(rig):
    sim, exo, sup, log = rig
    start_walking(sup, exo)
    assert sup.on_stream_stalled().forwarded
    assert wait_for(lambda: sim.snapshot().state == "STOPPED", 1.0)
    assert "stream" in sup.inhibited
    assert sup.on_selection("13.0Hz").reason.startswith("motion inhibited: stream")
    sup.on_health(True)
    assert sup.on_selection("13.0Hz").forwarded
    assert exo.wait_telemetry(lambda t: t.state == "WALKING", WAIT_S)
    out = sup.on_decoder_lag(1.5)
    assert out.forwarded and out.reason == "decoder 1.50 s behind"
    assert wait_for(lambda: sim.snapshot().state == "STOPPED", 1.0)
    assert sup.inhibited == {}  # lag does not inhibit
    assert {"stream_stalled", "decoder_lag", "stop"} <= set(log.events())


def test_device_fault_stops_and_refuses(rig):
    sim, exo, sup, log = rig
    start_walking(sup, exo)
    sim.inject_fault("MOTOR")
    assert wait_for(lambda: "device_fault" in log.events(), 2.0)
    assert wait_for(lambda: sim.executed()[-1][1] == "STOP", 2.0)
    assert exo.wait_telemetry(lambda t: t.state == "FAULT", WAIT_S)
    out = sup.on_selection("13.0Hz")
    assert out.status == "refused" and out.reason == "exoskeleton in FAULT (fault MOTOR): reset needed"


def test_controller_nak_is_logged_as_rejected(rig):
    sim, exo, sup, log = rig
    stand_up(sup, exo)
    with sim.lock:
        sim.model.battery = 1.0
    out = sup.on_selection("13.0Hz")
    assert out.status == "rejected" and out.reason == "LOW_BATTERY"
    assert wait_for(lambda: "nak" in log.events(), 1.0)
    assert [d for e, d in log if e == "nak"][0]["reason"] == "LOW_BATTERY"


def test_link_loss_is_logged_and_stop_still_attempted(rig):
    sim, exo, sup, log = rig
    start_walking(sup, exo)
    n_before = len(sim.executed())
    sim.stop()
    assert wait_for(lambda: "link_lost" in log.events(), 2.0)
    out = sup.on_selection("21.0Hz")  # STOP is always tried, and fails plainly
    assert out.status == "failed" and "is down" in out.reason
    assert sup.on_selection("13.0Hz").reason == "link to the exoskeleton is down"
    assert len(sim.executed()) == n_before


@pytest.mark.parametrize(
    "mapping, kwargs, match",
    [
        ({"rest": Command.WALK}, {}, "no-control label 'rest' cannot map to 'walk'"),
        ({"13.0Hz": "fly"}, {}, "unknown command 'fly'; use one of stand, sit"),
        ({}, {}, "'mapping' must be a non-empty dict"),
        ({"13.0Hz": "walk"}, {"walk_steps": 20}, r"'walk_steps' must be in \[1, 10\]"),
        ({"13.0Hz": "walk"}, {"turn_deg": 0}, r"'turn_deg' must be in \[1, 90\]"),
    ],
)
def test_mapping_errors(mapping, kwargs, match):
    class _Driver:
        def add_listener(self, fn):
            pass

    with pytest.raises(ValueError, match=match):
        SafetySupervisor(_Driver(), mapping, **kwargs)
