"""The simulated controller: state machine, watchdog, e-stop latch, duplicates, hostile input."""

from __future__ import annotations

import socket
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.protocol import Frame, FrameParser, encode_frame
from devices.simulator import ControllerModel, ExoSimulator

PROPS = settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def run(model: ControllerModel, *frames: tuple, t: float = 0.0) -> list[Frame]:
    """Feed frames (seq, verb, *args) at time t; return the decoded replies."""
    parser = FrameParser()
    out = []
    for seq, verb, *args in frames:
        for raw in model.handle(Frame(seq, verb, tuple(str(a) for a in args)), t):
            out += parser.feed(raw)
    return [f for f in out if f.verb != "TEL"]


def naks(replies: list[Frame]) -> list[str]:
    return [f.args[1] for f in replies if f.verb == "NAK"]


def test_legal_sequence_and_pose():
    m = ControllerModel(step_s=0.5, turn_rate=90.0, step_length=0.5)
    assert run(m, (1, "HELLO", 1))[0].args == ("1", "1", "EXOSIM")
    run(m, (2, "STAND"), (3, "WALK", 2))
    assert m.state == "WALKING"
    m.tick(0.0)
    m.tick(1.01)
    assert m.state == "STANDING" and m.steps == 2 and m.x == pytest.approx(1.0)
    run(m, (4, "TURN", "L", 90), t=1.01)
    m.tick(2.02)
    assert m.state == "STANDING" and m.heading == pytest.approx(90.0)
    run(m, (5, "WALK", 1), t=2.02)
    m.tick(2.6)
    assert m.y == pytest.approx(0.5) and m.x == pytest.approx(1.0)
    run(m, (6, "SIT"), t=2.6)
    assert m.state == "SITTING"


@pytest.mark.parametrize(
    "setup, frame, reason",
    [
        ([], (9, "WALK", 2), "ILLEGAL_STATE"),
        ([], (9, "TURN", "L", 30), "ILLEGAL_STATE"),
        ([(2, "STAND")], (9, "WALK", 11), "OUT_OF_RANGE"),
        ([(2, "STAND")], (9, "WALK", 0), "OUT_OF_RANGE"),
        ([(2, "STAND")], (9, "TURN", "L", 91), "OUT_OF_RANGE"),
        ([(2, "STAND")], (9, "TURN", "X", 10), "BAD_ARGS"),
        ([(2, "STAND")], (9, "WALK"), "BAD_ARGS"),
        ([(2, "STAND"), (3, "WALK", 3)], (9, "SIT"), "BUSY"),
        ([(2, "STAND"), (3, "WALK", 3)], (9, "WALK", 1), "BUSY"),
        ([(2, "ESTOP")], (9, "STAND"), "ESTOP_LATCHED"),
        ([], (9, "JUMP"), "UNKNOWN_VERB"),
        ([], (9, "HELLO", 2), "BAD_VERSION"),
    ],
)
def test_illegal_commands_are_refused_with_reason(setup, frame, reason):
    m = ControllerModel()
    run(m, *setup)
    state = m.state
    assert naks(run(m, frame)) == [reason]
    assert m.state == state


def test_estop_latches_until_reset_and_stop_is_always_accepted():
    m = ControllerModel()
    run(m, (1, "STAND"), (2, "WALK", 5), (3, "ESTOP"))
    assert m.state == "ESTOP" and m.fault == "ESTOP"
    assert naks(run(m, (4, "WALK", 1), (5, "STAND"), (6, "SIT"))) == ["ESTOP_LATCHED"] * 3
    assert naks(run(m, (7, "STOP"))) == []
    assert m.state == "ESTOP"
    run(m, (8, "RESET"))
    assert m.state == "STOPPED" and m.fault == "NONE"
    assert naks(run(m, (9, "WALK", 1))) == []


def test_fault_halts_and_needs_reset():
    m = ControllerModel()
    run(m, (1, "STAND"), (2, "WALK", 5))
    m.inject_fault("MOTOR", 0.1)
    assert m.state == "FAULT" and m.fault == "MOTOR"
    assert naks(run(m, (3, "WALK", 1), t=0.1)) == ["FAULT"]
    run(m, (4, "RESET"), t=0.1)
    assert m.state == "STOPPED"


def test_watchdog_halts_to_stopped_and_reports_it():
    m = ControllerModel(watchdog_s=0.5)
    run(m, (1, "STAND"), (2, "WALK", 10), t=10.0)
    m.tick(10.45)
    assert m.state == "WALKING"
    m.tick(10.51)
    assert m.state == "STOPPED" and m.fault == "WATCHDOG" and m.watchdog_trips == 1
    assert m.halts[0].reason == "WATCHDOG" and m.halts[0].silence_s == pytest.approx(0.51)
    run(m, (3, "HB"), t=10.6)  # heartbeats back: fault clears, motion does NOT resume
    m.tick(11.0)
    assert m.fault == "NONE" and m.state == "STOPPED"


def test_retransmission_is_acked_again_but_not_executed_twice():
    m = ControllerModel()
    first = run(m, (1, "HELLO", 1), (2, "STAND"), (3, "WALK", 2))
    again = run(m, (3, "WALK", 2))
    assert again == [first[-1]]  # the identical ACK
    assert [v for _, v, _ in m.executed] == ["STAND", "WALK"]
    assert m.duplicates == 1
    # a HELLO opens a new host session: the same seq is a new command then
    run(m, (4, "STOP"), (1, "HELLO", 1), (3, "WALK", 2))
    assert [v for _, v, _ in m.executed] == ["STAND", "WALK", "STOP", "WALK"]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"transport": "serial"}, "Invalid value for the 'transport' parameter"),
        ({"step_s": 0}, r"'step_s' must be in \(0"),
        ({"telemetry_hz": -1}, r"'telemetry_hz' must be in"),
    ],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ExoSimulator(**kwargs)


def test_url_before_start_raises():
    with pytest.raises(RuntimeError, match="not started"):
        ExoSimulator().url  # noqa: B018


def test_tcp_listens_on_localhost_by_default_and_port_in_use_is_reported():
    from devices.errors import PortError

    with ExoSimulator() as sim:
        assert sim.url.startswith("socket://127.0.0.1:")
        assert sim._link._srv.getsockname()[0] == "127.0.0.1"
        with pytest.raises(PortError, match=r"Cannot listen on 127.0.0.1:\d+ .*--tcp PORT"):
            ExoSimulator(port=sim.port).start()


# ---------------------------------------------------------------- hostile input
VALID = [encode_frame(1, "HELLO", 1), encode_frame(2, "STAND"), encode_frame(3, "WALK", 3),
         encode_frame(4, "TURN", "L", 30), encode_frame(5, "SIT"), encode_frame(6, "ESTOP")]
PARSED = FrameParser().feed(b"".join(VALID))


@PROPS
@given(st.binary(max_size=300), st.sampled_from(VALID), st.integers(0, 10_000))
def test_controller_never_acts_on_noise_or_corrupted_frames(noise, frame, flip):
    m = ControllerModel()
    p = FrameParser()
    wire = bytearray(frame)
    bit = flip % ((len(wire) - 1) * 8)
    wire[bit // 8] ^= 1 << (bit % 8)
    for f in p.feed(noise.replace(b"$", b"#") + b"\n" + bytes(wire)):
        m.handle(f, 0.0)
    assert m.executed == [] and m.state == "SITTING"


@PROPS
@given(st.lists(st.integers(1, len(VALID) - 1), min_size=1, max_size=12))
def test_replayed_frames_are_never_executed_twice(order):
    def execute(indices):
        m = ControllerModel()
        m.handle(PARSED[0], 0.0)
        for i in indices:
            m.handle(PARSED[i], 0.0)
        return [v for _, v, _ in m.executed]

    first_only = list(dict.fromkeys(order))  # each frame once, in first-seen order
    assert execute(order) == execute(first_only)


def test_garbage_on_the_tcp_line_is_counted_logged_and_survived(caplog):
    caplog.set_level("WARNING", logger="devices")
    with ExoSimulator(speed=10.0) as sim:
        with socket.create_connection(("127.0.0.1", sim.port)) as s:
            s.sendall(b"\x00\xff garbage $$$ \n" + b"$" + b"7" * 1000 + b"\n"
                      + encode_frame(1, "STAND")[:-3] + b"XY\n" + encode_frame(2, "STAND"))
            deadline = time.monotonic() + 3
            while sim.snapshot().state != "STANDING" and time.monotonic() < deadline:
                time.sleep(0.01)
        assert sim.snapshot().state == "STANDING"
        assert [v for _, v, _ in sim.executed()] == ["STAND"]
        drops = sim.parser.drops
        assert drops["noise"] > 0 and drops["overlong"] == 1 and drops["malformed"] >= 1
        deadline = time.monotonic() + 2
        while "exo-sim: discarded input" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.01)
        assert "exo-sim: discarded input" in caplog.text
