"""The real driver against the simulated controller over a pseudo-terminal and socket://."""

from __future__ import annotations

import re
import socket
import threading
import time

import pytest
import serial

from devices.errors import CommandRejected, CommandTimeout, LinkLostError, PortError
from devices.exoskeleton import ExoskeletonDriver
from devices.protocol import encode_frame
from devices.simulator import ExoSimulator

MOTION = {"WALK", "TURN", "STAND", "SIT"}


def wait_for(pred, timeout=3.0, step=0.005):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return bool(pred())


@pytest.fixture(params=["tcp", "pty"])
def sim(request, tmp_path):
    kw = {"link": str(tmp_path / "exo")} if request.param == "pty" else {}
    with ExoSimulator(transport=request.param, speed=4.0, **kw) as s:
        yield s


class Events:
    def __init__(self, driver):
        self.items: list[tuple[float, str, dict]] = []
        driver.add_listener(self)

    def __call__(self, event, data):
        if event != "telemetry":
            self.items.append((time.monotonic(), event, data))

    def first(self, name):
        return next((t for t, e, _ in self.items if e == name), None)


def test_legal_sequence(sim):
    # the verbs and their replies are tested here, not the link's timing (the watchdog and
    # dead-link tests below): a loaded machine must not end the session halfway
    sim.model.watchdog_s = 2.0
    with ExoskeletonDriver(sim.url, link_timeout=1.5) as exo:
        assert exo.controller_info == ("2", "EXOSIM") and len(exo.session_nonce) == 8
        exo.stand()
        exo.walk(2)
        assert exo.last_reply.ok and exo.last_reply.verb == "WALK"
        tel = exo.wait_telemetry(lambda t: t.state == "STANDING" and t.steps == 2, 5.0)
        assert tel is not None and tel.x == pytest.approx(1.0)
        exo.turn("L", 30)
        assert exo.wait_telemetry(lambda t: t.state == "STANDING" and t.heading > 29, 5.0)
        exo.sit()
        assert exo.status().state == "SITTING"
    assert [v for _, v, _ in sim.executed()] == ["STAND", "WALK", "TURN", "SIT", "STOP"]
    assert exo.link_state == "closed" and exo.heartbeats_sent > 0


def test_illegal_commands_are_refused_with_reason(sim):
    with ExoskeletonDriver(sim.url) as exo:
        with pytest.raises(CommandRejected, match=r"refused WALK: ILLEGAL_STATE \(the command "
                           r"is not legal in the current posture\)") as info:
            exo.walk(3)
        assert info.value.reason == "ILLEGAL_STATE"
        assert exo.last_reply is not None and not exo.last_reply.ok
        exo.stand()
        exo.walk(3)
        with pytest.raises(CommandRejected, match="BUSY") as info:
            exo.sit()
        exo.estop()
        with pytest.raises(CommandRejected, match="ESTOP_LATCHED"):
            exo.stand()
        exo.stop()  # always accepted
        exo.reset()
        exo.walk(1)


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda e: e.walk(11), ValueError, r"'steps' must be in \[1, 10\]"),
        (lambda e: e.turn("X", 10), ValueError, "'direction' must be 'L' or 'R'"),
        (lambda e: e.turn("L", 120), ValueError, r"'deg' must be in \[1, 90\]"),
        (lambda e: e.send("JUMP"), CommandRejected, "UNKNOWN_VERB"),
        (lambda e: e.execute("walk"), TypeError, "'command' must be a Command"),
    ],
)
def test_argument_errors(call, exc, match):
    with ExoSimulator() as s, ExoskeletonDriver(s.url) as exo:
        with pytest.raises(exc, match=match):
            call(exo)


def test_watchdog_halts_when_heartbeats_stop(sim, record_property):
    """Heartbeats stop -> the controller halts by itself, the session ends, WATCHDOG is
    reported at once; other frames (STATUS) never feed the watchdog."""
    port = serial.serial_for_url(sim.url, timeout=0.05)
    try:
        for i, (verb, args) in enumerate([("HELLO", (2, "N1")), ("STAND", ()), ("WALK", (10,))],
                                         1):
            port.write(encode_frame(i, verb, *args))
        assert wait_for(lambda: sim.snapshot().state == "WALKING")
        for i in range(4, 8):  # a few heartbeats, then only STATUS: a host that cannot hear
            port.write(encode_frame(i, "HB"))
            time.sleep(0.05)
        seq = 100
        while sim.snapshot().state == "WALKING" and seq < 200:
            port.write(encode_frame(seq, "STATUS"))
            seq += 1
            time.sleep(0.05)
        assert sim.snapshot().state == "STOPPED"
        halt = sim.model.halts[0]
        assert halt.reason == "WATCHDOG" and halt.state_before == "WALKING"
        assert halt.time - sim.model.last_hb == pytest.approx(halt.silence_s)
        assert halt.silence_s >= 0.5  # never before the watchdog time (no upper bound here)
        record_property("watchdog_halt_s", round(halt.silence_s, 4))
        assert sim.snapshot().fault == "WATCHDOG" and sim.model.session is None
        port.write(encode_frame(300, "WALK", 1))  # the session is gone: nothing moves
        assert wait_for(lambda: b"NAK,300,NO_SESSION" in port.read(4096), 2.0)
        assert [v for _, v, _ in sim.executed()] == ["STAND", "WALK"]
    finally:
        port.close()


def test_link_cut_while_walking_reconnects_without_stale_motion(sim):
    exo = ExoskeletonDriver(sim.url)
    ev = Events(exo)
    with exo:
        exo.stand()
        exo.walk(10)
        assert exo.wait_telemetry(lambda t: t.state == "WALKING", 3.0)
        t_cut = time.monotonic()
        sim.cut_link()
        assert wait_for(lambda: ev.first("link_lost") is not None, 2.0), ev.items
        assert wait_for(lambda: ev.first("link_up") is not None, 5.0), ev.items
        assert exo.link_ok and exo.reconnects == 1
        # the exoskeleton ends stopped (STOP after reconnection, or the watchdog)
        assert wait_for(lambda: sim.snapshot().state == "STOPPED", 2.0)
        after = [v for t, v, _ in sim.executed() if t >= t_cut]
        assert after and not set(after) & MOTION, after
        exo.walk(1)  # the new link works
    lost = [d for _, e, d in ev.items if e == "link_lost"][0]
    assert lost["reason"]


@pytest.mark.parametrize("transport", ["tcp", "pty"])
def test_simulator_stopped_while_walking_then_back(tmp_path, transport):
    """The controller disappears (port vanishes); the driver reports, waits, reconnects."""
    kw = {"link": str(tmp_path / f"exo-{transport}")} if transport == "pty" else {}
    first = ExoSimulator(transport=transport, speed=4.0, **kw).start()
    exo = ExoskeletonDriver(first.url, reconnect_max_s=0.4)
    ev = Events(exo)
    with exo:
        exo.stand()
        exo.walk(10)
        assert exo.wait_telemetry(lambda t: t.state == "WALKING", 3.0)
        first.stop()
        assert wait_for(lambda: exo.link_state == "lost", 2.0)
        with pytest.raises(LinkLostError, match=r"is down .*WALK was not sent"):
            exo.walk(1)
        time.sleep(0.5)  # a few failed reconnection attempts
        assert exo.link_state == "lost"
        port = first.port if transport == "tcp" else 0
        second = ExoSimulator(transport=transport, port=port, speed=4.0, **kw).start()
        try:
            assert wait_for(lambda: exo.link_ok, 5.0), exo.link_reason
            assert wait_for(lambda: [v for _, v, _ in second.executed()] == ["STOP"], 2.0)
            assert second.snapshot().state == "SITTING"  # nothing replayed
            exo.stand()
        finally:
            exo.close()
            second.stop()
    assert [e for _, e, _ in ev.items if e.startswith("link")] == ["link_lost", "link_up"]


def test_dead_link_detected_when_telemetry_stops():
    """A controller that hangs (no telemetry, socket still open) is declared dead."""
    with ExoSimulator() as sim:
        exo = ExoskeletonDriver(sim.url, link_timeout=0.4)
        ev = Events(exo)
        with exo:
            t0 = time.monotonic()
            with sim.lock:  # freezes the controller's loop
                assert wait_for(lambda: ev.first("link_lost") is not None, 2.0)
            assert ev.first("link_lost") - t0 > 0.3  # not before the dead-link time
            reason = [d for _, e, d in ev.items if e == "link_lost"][0]["reason"]
            assert "nothing heard from the controller" in reason
            assert wait_for(lambda: exo.link_ok, 5.0)


def test_close_sends_stop(sim):
    exo = ExoskeletonDriver(sim.url).open()
    exo.stand()
    exo.walk(10)
    exo.close()
    assert sim.executed()[-1][1] == "STOP"
    assert wait_for(lambda: sim.snapshot().state == "STOPPED", 1.0)
    with pytest.raises(LinkLostError, match="not open"):
        exo.stop()


def test_garbage_from_the_controller_is_dropped_counted_and_logged(sim, caplog):
    caplog.set_level("WARNING", logger="devices")
    with ExoskeletonDriver(sim.url) as exo:
        with sim.lock:
            sim._link.write(b"\x00\xffnoise$1,ACK,1*0000\n$" + b"9" * 400 + b"\n")
        exo.stand()
        assert exo.status().state == "STANDING"
        d = exo.parser.drops
        assert d["noise"] > 0 and d["bad_crc"] == 1 and d["overlong"] == 1
        assert wait_for(lambda: "discarded input from" in caplog.text, 2.0)


def test_missing_port():
    with pytest.raises(PortError, match=r"Serial port '/dev/ttyNOPE9' not found; list ports "
                       r"with `ssvep-exo devices`"):
        ExoskeletonDriver("/dev/ttyNOPE9").open()


def test_busy_port(tmp_path):
    with ExoSimulator(transport="pty") as sim, ExoskeletonDriver(sim.url):
        with pytest.raises(PortError, match=r"is busy \(in use by another program\)"):
            ExoskeletonDriver(sim.url).open()


def test_nothing_listening_and_bad_url():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(PortError, match="Nothing is listening at .*exo-sim --tcp PORT"):
        ExoskeletonDriver(f"socket://127.0.0.1:{port}").open()
    with pytest.raises(PortError, match="Cannot open 'nope://x'"):
        ExoskeletonDriver("nope://x").open()


def test_handshake_timeout_when_nothing_answers():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    conns = []
    t = threading.Thread(target=lambda: conns.append(srv.accept()), daemon=True)
    t.start()
    try:
        exo = ExoskeletonDriver(f"socket://127.0.0.1:{srv.getsockname()[1]}",
                                ack_timeout=0.1, retries=1)
        with pytest.raises(CommandTimeout, match=r"No answer to HELLO .* after 2 tries"):
            exo.open()
        assert exo.link_state == "closed"
    finally:
        srv.close()
        for c, _ in conns:
            c.close()


def test_exosim_url_starts_an_in_process_simulator():
    from devices.urlhandler.protocol_exosim import simulator_for, stop_all

    url = "exosim://test-driver?speed=8"
    try:
        with ExoskeletonDriver(url) as exo:
            exo.stand()
            exo.walk(1)
            assert exo.wait_telemetry(lambda t: t.steps == 1, 3.0)
        assert simulator_for(url).snapshot().steps == 1
        with pytest.raises(PortError, match="unknown option 'bogus'"):
            ExoskeletonDriver("exosim://x?bogus=1").open()
    finally:
        stop_all()


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"url": ""}, TypeError, "'url' must be a non-empty str"),
        ({"url": "loop://", "ack_timeout": 0}, ValueError, r"'ack_timeout' must be in \(0"),
        ({"url": "loop://", "retries": 1.5}, TypeError, "'retries' must be an int"),
    ],
)
def test_driver_parameters(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        ExoskeletonDriver(**kwargs)


def test_command_in_flight_when_the_link_drops_is_never_replayed(sim):
    """WALK is on the wire, unanswered, when the cable is cut: the caller gets LinkLostError
    and the reconnected controller never receives that WALK."""
    exo = ExoskeletonDriver(sim.url, ack_timeout=0.3, retries=2)
    with exo:
        exo.stand()
        result = {}

        def walk():
            try:
                exo.walk(3)
                result["ok"] = True
            except LinkLostError as exc:
                result["exc"] = exc

        with sim.lock:  # the controller is frozen: the WALK frame is not read
            t = threading.Thread(target=walk)
            t.start()
            time.sleep(0.1)
            t_cut = time.monotonic()
            sim.cut_link()  # unread bytes die with the old connection
        t.join(3.0)
        assert "exc" in result, result
        assert re.search("lost while waiting for the ACK of WALK; it will not be retransmitted",
                         str(result["exc"]))
        assert wait_for(lambda: exo.link_ok and exo.reconnects == 1, 5.0)
        time.sleep(0.3)
        assert [v for tt, v, _ in sim.executed() if tt >= t_cut] == ["STOP"]
        assert sim.snapshot().state == "STANDING"


def test_retransmissions_are_acked_but_executed_once(sim):
    """The controller is too slow for the ACK timeout: the driver retransmits the same frame;
    the controller executes it once and answers every copy."""
    sim.model.watchdog_s = 5.0  # the stall below must not end the session on a busy machine
    with ExoskeletonDriver(sim.url, ack_timeout=0.1, retries=5, link_timeout=3.0) as exo:
        exo.stand()
        result = {}
        with sim.lock:  # controller stalls for 0.35 s: 3-4 copies of WALK pile up
            t = threading.Thread(target=lambda: result.setdefault("r", exo.walk(2)))
            t.start()
            time.sleep(0.35)
        t.join(3.0)
        assert result["r"].ok
        assert wait_for(lambda: sim.model.duplicates >= 2, 2.0)  # the copies are answered
        assert [v for _, v, _ in sim.executed()] == ["STAND", "WALK"]
        assert exo.wait_telemetry(lambda t: t.state == "STANDING" and t.steps == 2, 5.0)


class HostFrames:
    """Records, on the controller side, every host frame (time, verb) it receives."""

    def __init__(self, sim):
        self.items: list[tuple[float, str]] = []
        self._handle = sim.model.handle
        sim.model.handle = self

    def __call__(self, frame, now, conn=0):
        self.items.append((now, frame.verb))
        return self._handle(frame, now, conn)

    def verbs_after(self, t):
        return [v for tt, v in self.items if tt > t]


def test_one_way_link_controller_stops_transmitting_halts_it(sim, record_property):
    """The controller still receives but sends nothing: the driver stops its heartbeats after
    the dead-link time and sends STOP; the walk ends and never resumes."""
    exo = ExoskeletonDriver(sim.url, reconnect_max_s=0.2)
    ev = Events(exo)
    frames = HostFrames(sim)
    with exo:
        exo.stand()
        exo.walk(10)
        assert exo.wait_telemetry(lambda t: t.state == "WALKING", 3.0)
        t_mute = time.monotonic()
        sim.one_way(transmitting=False)
        assert wait_for(lambda: sim.snapshot().state not in ("WALKING", "TURNING"), 5.0)
        assert wait_for(lambda: ev.first("link_lost") is not None, 2.0)
        after = frames.verbs_after(t_mute)
        # heartbeats went on only until the driver noticed the silence; then STOP
        assert "STOP" in after, after
        stop_i = after.index("STOP")
        assert "HB" not in after[stop_i:], after
        assert not set(after) & MOTION, after
        steps = sim.snapshot().steps
        time.sleep(0.5)
        assert sim.snapshot().steps == steps and sim.snapshot().state == "STOPPED"
        sim.one_way()  # the link heals: the driver reconnects, nothing is replayed
        assert wait_for(lambda: exo.link_ok and exo.reconnects >= 1, 5.0)
        assert not set(frames.verbs_after(t_mute)) & MOTION
    reason = [d for _, e, d in ev.items if e == "link_lost"][0]["reason"]
    assert "nothing heard from the controller" in reason


def test_one_way_link_controller_stops_receiving_halts_by_watchdog(sim):
    """The host's frames no longer arrive: the watchdog halts the walk and ends the session;
    when the link heals the driver learns it (NAK NO_SESSION), opens a new session and sends
    STOP; nothing moves again by itself."""
    exo = ExoskeletonDriver(sim.url)
    ev = Events(exo)
    with exo:
        exo.stand()
        exo.walk(10)
        assert exo.wait_telemetry(lambda t: t.state == "WALKING", 3.0)
        sim.one_way(receiving=False)
        tel = exo.wait_telemetry(lambda t: t.fault == "WATCHDOG", 5.0)
        assert tel is not None and tel.state == "STOPPED"
        assert sim.model.halts and sim.model.halts[0].reason == "WATCHDOG"
        t_heal = time.monotonic()
        sim.one_way()
        assert wait_for(lambda: exo.reconnects >= 1 and exo.link_ok, 5.0), ev.items
        lost = [d["reason"] for _, e, d in ev.items if e == "link_lost"]
        assert any("NO_SESSION" in r for r in lost), lost
        # the STOP sent when the loss was noticed, and the one after the new HELLO
        assert {v for t, v, _ in sim.executed() if t > t_heal} == {"STOP"}
        assert sim.snapshot().state == "STOPPED"


def test_close_is_bounded_when_the_controller_does_not_answer(sim, record_property):
    """close() with a controller that neither answers nor reads: it returns, STOP was
    attempted, and the port is released (it can be opened again at once)."""
    exo = ExoskeletonDriver(sim.url).open()
    exo.stand()
    sim.one_way(transmitting=False, receiving=False)
    t0 = time.monotonic()
    exo.close()
    took = time.monotonic() - t0
    record_property("close_unresponsive_s", round(took, 3))
    print(f"close() with an unresponsive controller took {took * 1000:.0f} ms")
    assert exo.link_state == "closed"
    sim.one_way()
    with ExoskeletonDriver(sim.url) as again:  # released: a new session at once
        assert again.status().state == "STANDING"


def test_a_nak_no_session_makes_the_driver_open_a_new_session(sim):
    """The controller forgets the session (here: its watchdog, while the host is frozen):
    the next command is refused NO_SESSION, and the driver reconnects with a new session."""
    exo = ExoskeletonDriver(sim.url, link_timeout=5.0)
    ev = Events(exo)
    with exo:
        nonce = exo.session_nonce
        with sim.lock:
            sim.model.session = None  # as after a watchdog expiry
        with pytest.raises(CommandRejected, match="NO_SESSION"):
            exo.stand()
        assert wait_for(lambda: exo.link_ok and exo.reconnects == 1, 5.0), ev.items
        assert exo.session_nonce != nonce and sim.model.session.nonce == exo.session_nonce
        exo.stand()


def test_tiocexcl_keeps_other_programs_off_the_pty(tmp_path):
    """Beyond the advisory lock, the kernel refuses any other open of the port (TIOCEXCL);
    after close() the port opens again."""
    import os

    with ExoSimulator(transport="pty") as sim:
        path = os.path.realpath(sim.url)
        with ExoskeletonDriver(sim.url):
            if os.geteuid() == 0:  # root bypasses TIOCEXCL: try as an ordinary user
                os.chmod(path, 0o666)
                pid = os.fork()
                if pid == 0:  # pragma: no cover - child
                    code = 1
                    try:
                        os.setgid(65534)
                        os.setuid(65534)
                        os.close(os.open(path, os.O_RDWR | os.O_NOCTTY))
                    except OSError as exc:
                        code = 0 if exc.errno == 16 else 2  # EBUSY
                    os._exit(code)
                assert os.waitpid(pid, 0)[1] == 0  # EBUSY for the other program
            else:
                with pytest.raises(OSError) as info:
                    os.close(os.open(path, os.O_RDWR | os.O_NOCTTY))
                assert info.value.errno == 16
        with ExoskeletonDriver(sim.url) as exo:  # released by close()
            assert exo.link_ok


def test_heartbeats_run_on_their_own_thread_at_a_raised_priority(sim):
    with ExoskeletonDriver(sim.url) as exo:
        assert wait_for(lambda: exo.heartbeats_sent >= 3, 2.0)
        hb = exo._heartbeat
        assert hb.name == "exo-heartbeat" and hb.is_alive()
        assert hb.priority and exo.heartbeat_priority == hb.priority  # what the OS granted
    assert not hb.is_alive()
    with ExoskeletonDriver(sim.url, raise_priority=False) as exo:
        assert wait_for(lambda: exo.heartbeats_sent >= 1, 2.0)
        assert exo._heartbeat.priority == "default"


def test_a_second_host_cannot_take_over_a_tcp_controller():
    """While one driver's session lives, a second driver is refused with a clear error, and
    the first one's walk goes on under its own control."""
    from devices.errors import DeviceError

    with ExoSimulator(speed=2.0) as sim, ExoskeletonDriver(sim.url) as first:
        first.stand()
        first.walk(10)
        with pytest.raises(DeviceError, match="Another host owns the session of the "
                           "controller"):
            ExoskeletonDriver(sim.url, reconnect=False).open()
        assert sim.snapshot().state == "WALKING" and first.link_ok
        first.stop()
        assert wait_for(lambda: sim.snapshot().state == "STOPPED", 2.0)
