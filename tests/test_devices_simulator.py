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


def run(model: ControllerModel, *frames: tuple, t: float = 0.0, conn: int = 0) -> list[Frame]:
    """Feed frames (seq, verb, *args) at time t; return the decoded replies (no TEL)."""
    parser = FrameParser()
    out = []
    for seq, verb, *args in frames:
        for raw in model.handle(Frame(seq, verb, tuple(str(a) for a in args)), t, conn):
            out += parser.feed(raw)
    return [f for f in out if f.verb != "TEL"]


def naks(replies: list[Frame]) -> list[str]:
    return [f.args[1] for f in replies if f.verb == "NAK"]


def session(m: ControllerModel, t: float = 0.0, conn: int = 0) -> None:
    assert naks(run(m, (1, "HELLO", 2, "N0NCE"), t=t, conn=conn)) == []


def test_legal_sequence_and_pose():
    m = ControllerModel(step_s=0.5, turn_rate=90.0, step_length=0.5, watchdog_s=100.0)
    assert run(m, (1, "HELLO", 2, "abc123"))[0].args == ("1", "2", "EXOSIM", "abc123")
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
        ([], (9, "SIT"), "ILLEGAL_STATE"),  # already sitting
        ([], (9, "WALK", 11), "OUT_OF_RANGE"),  # arguments are checked before the state
        ([(2, "STAND")], (9, "STAND"), "ILLEGAL_STATE"),  # already standing
        ([(2, "STAND")], (9, "WALK", 11), "OUT_OF_RANGE"),
        ([(2, "STAND")], (9, "WALK", 0), "OUT_OF_RANGE"),
        ([(2, "STAND")], (9, "WALK", "03"), "BAD_ARGS"),  # no leading zero
        ([(2, "STAND")], (9, "WALK", "+3"), "BAD_ARGS"),
        ([(2, "STAND")], (9, "TURN", "L", 91), "OUT_OF_RANGE"),
        ([(2, "STAND")], (9, "TURN", "X", 10), "BAD_ARGS"),
        ([(2, "STAND")], (9, "WALK"), "BAD_ARGS"),
        ([(2, "STAND")], (9, "STOP", 1), "BAD_ARGS"),
        ([(2, "STAND")], (9, "RESET"), "ILLEGAL_STATE"),  # nothing to reset
        ([(2, "STAND"), (3, "WALK", 3)], (9, "SIT"), "BUSY"),
        ([(2, "STAND"), (3, "WALK", 3)], (9, "WALK", 1), "BUSY"),
        ([(2, "STAND"), (3, "WALK", 3)], (9, "RESET"), "ILLEGAL_STATE"),  # not mid-walk
        ([(2, "STAND"), (3, "WALK", 3), (4, "STOP")], (9, "STAND"), "ILLEGAL_STATE"),
        ([(2, "ESTOP")], (9, "STAND"), "ESTOP_LATCHED"),
        ([], (9, "JUMP"), "UNKNOWN_VERB"),
        ([], (9, "HELLO", 1), "BAD_VERSION"),
        ([], (9, "HELLO", 2), "BAD_ARGS"),
        ([], (9, "HELLO", 2, "no-dash"), "BAD_ARGS"),
    ],
)
def test_illegal_commands_are_refused_with_reason(setup, frame, reason):
    m = ControllerModel()
    session(m)
    run(m, *setup)
    state = m.state
    assert naks(run(m, frame)) == [reason]
    assert m.state == state


def test_estop_latches_until_reset_and_stop_is_always_accepted():
    m = ControllerModel()
    session(m)
    run(m, (1, "STAND"), (2, "WALK", 5), (3, "ESTOP"))
    assert m.state == "ESTOP" and m.fault == "ESTOP"
    assert naks(run(m, (4, "WALK", 1), (5, "STAND"), (6, "SIT"))) == ["ESTOP_LATCHED"] * 3
    assert naks(run(m, (7, "STOP"))) == []
    assert m.state == "ESTOP"
    session(m)  # a new session does not clear the latch
    assert m.state == "ESTOP"
    run(m, (8, "RESET"))
    assert m.state == "STOPPED" and m.fault == "NONE"
    assert naks(run(m, (9, "WALK", 1))) == []


def test_fault_halts_and_needs_reset():
    m = ControllerModel()
    session(m)
    run(m, (1, "STAND"), (2, "WALK", 5))
    m.inject_fault("MOTOR", 0.1)
    assert m.state == "FAULT" and m.fault == "MOTOR"
    assert naks(run(m, (3, "WALK", 1), t=0.1)) == ["FAULT"]
    run(m, (4, "RESET"), t=0.1)
    assert m.state == "STOPPED"


def test_low_battery_stays_reported_after_estop_and_reset():
    m = ControllerModel(battery=4.9)
    session(m)
    assert m.fault == "LOW_BATTERY"  # reported in any state, not only on a halt
    run(m, (1, "STAND"))
    assert naks(run(m, (2, "WALK", 1))) == ["LOW_BATTERY"]
    run(m, (3, "ESTOP"))
    assert m.fault == "ESTOP"
    run(m, (4, "RESET"))
    assert m.state == "STOPPED" and m.fault == "LOW_BATTERY"
    assert naks(run(m, (5, "SIT"))) == []  # the user can still sit down


def test_watchdog_halts_ends_the_session_and_reports_it():
    m = ControllerModel(watchdog_s=0.5)
    session(m, t=10.0)
    run(m, (2, "STAND"), (3, "WALK", 10), t=10.0)
    run(m, (4, "STATUS"), (5, "STATUS"), t=10.45)  # not a heartbeat: does not feed it
    m.tick(10.49)
    assert m.state == "WALKING"
    m.tick(10.51)
    assert m.state == "STOPPED" and m.fault == "WATCHDOG" and m.watchdog_trips == 1
    assert m.session is None
    assert m.halts[0].reason == "WATCHDOG" and m.halts[0].silence_s == pytest.approx(0.51)
    tel = m.telemetry(10.52)
    assert tel.fault == "WATCHDOG" and tel.since_ms == 10  # reported with the halt's age
    assert naks(run(m, (6, "HB"), (7, "WALK", 1), t=10.6)) == ["NO_SESSION"] * 2
    session(m, t=10.7)  # a new session clears the report; motion does NOT resume
    m.tick(11.0)
    assert m.fault == "NONE" and m.state == "STOPPED"


def test_heartbeats_keep_the_session_alive():
    m = ControllerModel(watchdog_s=0.5)
    session(m, t=0.0)
    for i in range(1, 30):
        run(m, (100 + i, "HB"), t=i * 0.1)
    m.tick(3.0)
    assert m.session is not None and m.watchdog_trips == 0


def test_stop_and_estop_are_executed_whatever_their_sequence_number():
    m = ControllerModel(watchdog_s=100.0)
    session(m)
    run(m, (2, "STAND"), (33333, "STOP"), (4, "WALK", 5))
    assert m.state == "WALKING"
    assert naks(run(m, (33333, "STOP"))) == []  # the same frame again: executed again
    assert m.state == "STOPPED"
    run(m, (5, "ESTOP"), (6, "RESET"))
    run(m, (5, "ESTOP"))
    assert m.state == "ESTOP"
    assert [v for _, v, _ in m.executed].count("STOP") == 2


def test_retransmission_is_acked_again_but_not_executed_twice():
    m = ControllerModel()
    first = run(m, (1, "HELLO", 2, "N"), (2, "STAND"), (3, "WALK", 2))
    again = run(m, (3, "WALK", 2))
    assert again[0].verb == "ACK" and again[0].args == first[-1].args
    assert again[0].seq != first[-1].seq  # a new controller sequence number
    assert [v for _, v, _ in m.executed] == ["STAND", "WALK"]
    assert m.duplicates == 1
    # a HELLO opens a new session (halting the walk): the same seq is a new command then
    run(m, (1, "HELLO", 2, "M"))
    assert m.state == "STOPPED"
    run(m, (3, "WALK", 2))
    assert [v for _, v, _ in m.executed] == ["STAND", "WALK", "WALK"]


def test_motion_needs_the_session_of_its_connection():
    m = ControllerModel(watchdog_s=100.0)
    assert naks(run(m, (1, "STAND"), (2, "HB"), (3, "RESET"))) == ["NO_SESSION"] * 3
    assert naks(run(m, (4, "STATUS"), (5, "STOP"))) == []  # allowed without a session
    m.connect(1, 0.0)
    m.connect(2, 0.0)
    session(m, conn=1)
    run(m, (2, "STAND"), (3, "WALK", 5), conn=1)
    # the second connection can neither open a session, feed the watchdog nor drive
    assert naks(run(m, (1, "HELLO", 2, "B"), (2, "HB"), (3, "WALK", 1), (4, "RESET"),
                    conn=2)) == ["NOT_OWNER"] * 4
    assert m.state == "WALKING" and m.session.owner == 1
    assert naks(run(m, (5, "STOP"), conn=2)) == []  # but it can always stop it
    assert m.state == "STOPPED"
    run(m, (4, "WALK", 5), conn=1)
    m.disconnect(1, 0.1)  # the owner goes: the session ends, the walk is halted
    assert m.session is None and m.state == "STOPPED"
    assert m.halts[-1].reason == "SESSION_END"
    session(m, conn=2)  # now the other connection may open one
    assert m.session.owner == 2


def test_a_new_hello_halts_first():
    m = ControllerModel(watchdog_s=100.0)
    session(m)
    run(m, (2, "STAND"), (3, "WALK", 5))
    assert m.state == "WALKING"
    session(m)
    assert m.state == "STOPPED" and m.halts[-1].reason == "SESSION_END"


def test_changes_are_reported_at_once_with_their_age():
    m = ControllerModel(watchdog_s=100.0, step_s=0.5)
    session(m)
    m.take_report(0.0)
    run(m, (2, "STAND"))
    rep = FrameParser().feed(m.take_report(0.0))[0]
    assert rep.args[0] == "STANDING" and rep.args[-1] == "0"
    assert m.take_report(0.0) is None  # once
    run(m, (3, "WALK", 1), t=1.0)
    m.take_report(1.0)
    m.tick(1.51)  # the step ends: the controller changed state by itself
    rep = FrameParser().feed(m.take_report(1.51))[0]
    assert rep.args[0] == "STANDING" and int(rep.args[-1]) == 0
    late = ControllerModel(watchdog_s=100.0, step_s=0.5, faults=["late_telemetry"])
    session(late)
    run(late, (2, "STAND"), (3, "WALK", 1), t=1.0)
    assert late.take_report(1.0) is not None  # commands are still reported
    late.tick(1.51)
    assert late.take_report(1.51) is None  # but not the controller's own change


@pytest.mark.parametrize("fault", ["dedup_stop", "newest_client_wins", "watchdog_any_frame",
                                   "hello_keeps_motion", "motion_without_session",
                                   "reset_anywhere"])
def test_each_injected_fault_breaks_its_property(fault):
    m = ControllerModel(watchdog_s=0.5, faults=[fault])
    m.connect(1, 0.0)
    session(m, conn=1)
    run(m, (2, "STAND"), (7, "STOP"), (3, "WALK", 5), conn=1)
    if fault == "dedup_stop":
        run(m, (7, "STOP"), conn=1)
    elif fault == "newest_client_wins":
        m.connect(2, 0.0)
        run(m, (8, "HB"), t=0.4, conn=2)
        m.tick(0.8)
    elif fault == "watchdog_any_frame":
        run(m, (8, "STATUS"), t=0.4, conn=1)
        m.tick(0.8)
    elif fault == "hello_keeps_motion":
        session(m, conn=1)
    elif fault == "motion_without_session":
        m.disconnect(1, 0.1)
        run(m, (9, "STAND"), (10, "WALK", 2), t=0.1, conn=0)
    elif fault == "reset_anywhere":
        assert naks(run(m, (9, "RESET"), conn=1)) == []
    assert m.state == "WALKING", fault  # the property it breaks would have stopped it
    with pytest.raises(ValueError, match="Unknown fault injection"):
        ControllerModel(faults=["nope"])


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
VALID = [encode_frame(1, "HELLO", 2, "N"), encode_frame(2, "STAND"), encode_frame(3, "WALK", 3),
         encode_frame(4, "TURN", "L", 30), encode_frame(5, "SIT"), encode_frame(6, "ESTOP")]
PARSED = FrameParser().feed(b"".join(VALID))


@PROPS
@given(st.binary(max_size=300), st.sampled_from(VALID), st.integers(0, 10_000))
def test_controller_never_acts_on_noise_or_corrupted_frames(noise, frame, flip):
    m = ControllerModel()
    m.handle(PARSED[0], 0.0)
    p = FrameParser()
    wire = bytearray(frame)
    bit = flip % ((len(wire) - 1) * 8)
    wire[bit // 8] ^= 1 << (bit % 8)
    for f in p.feed(noise.replace(b"$", b"#") + b"\n" + bytes(wire)):
        m.handle(f, 0.0)
    assert m.executed == [] and m.state == "SITTING" and m.sessions == 1


@PROPS
@given(st.lists(st.integers(1, len(VALID) - 2), min_size=1, max_size=12))  # ESTOP: see above
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
            s.sendall(encode_frame(9, "HELLO", 2, "N") + b"\x00\xff garbage $$$ \n"
                      + b"$" + b"7" * 1000 + b"\n"
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


def test_pty_telemetry_flows_as_soon_as_a_host_opens_the_port(tmp_path):
    """Telemetry before any HELLO and before the host wrote a byte (it only listens)."""
    import serial

    with ExoSimulator(transport="pty", link=str(tmp_path / "exo")) as sim:
        port = serial.serial_for_url(sim.url, timeout=0.05)
        try:
            got = FrameParser()
            frames = []
            deadline = time.monotonic() + 3
            while len([f for f in frames if f.verb == "TEL"]) < 2 and time.monotonic() < deadline:
                frames += got.feed(port.read(256))
            tels = [f for f in frames if f.verb == "TEL"]
            assert len(tels) >= 2 and len(tels[0].args) == 9
            assert sim.model.sessions == 0
        finally:
            port.close()


def test_a_second_tcp_client_is_read_only_and_a_fifth_is_refused():
    with ExoSimulator(watchdog_s=5.0) as sim:
        owner = socket.create_connection(("127.0.0.1", sim.port))
        others = [socket.create_connection(("127.0.0.1", sim.port)) for _ in range(4)]
        try:
            owner.sendall(encode_frame(1, "HELLO", 2, "A"))
            others[0].sendall(encode_frame(1, "HELLO", 2, "B") + encode_frame(2, "STOP"))
            p = FrameParser()
            frames = []
            deadline = time.monotonic() + 3
            others[0].settimeout(0.1)
            while not any(f.verb == "ACK" and f.args[0] == "2" for f in frames) \
                    and time.monotonic() < deadline:
                try:
                    frames += p.feed(others[0].recv(4096))
                except TimeoutError:
                    pass
            replies = [(f.verb, f.args[:2]) for f in frames if f.verb in ("ACK", "NAK")]
            assert replies == [("NAK", ("1", "NOT_OWNER")), ("ACK", ("2",))]
            assert any(f.verb == "TEL" for f in frames)  # observers get telemetry
            others[3].settimeout(2.0)
            assert others[3].recv(4096) == b""  # the fifth connection is closed at once
            assert sim.model.session.owner != 0 and sim.model.session.nonce == "A"
        finally:
            for s in [owner, *others]:
                s.close()
