"""Fault injection through the real closed loop while the exoskeleton walks.

Each test runs a real :class:`bci.app.closed_loop.ClosedLoopSession` (synthetic EEG on real
LSL outlets -> EEGStream -> OnlineLoop -> SafetySupervisor -> ExoskeletonDriver) against a real
simulated controller served on a TCP port of this process, so the controller's state and the
commands it executed are observed directly. The simulated user looks at nothing (rest) all
along; the rig selects STAND and WALK (10 steps of 1 s) through the session's safety
supervisor, as a decoded selection would, so any later motion command would be a stale one.

The tests assert what must hold whatever the machine's load (they run beside CPU-bound
jobs): the controller halts, a STOP is executed and nothing but STOP after the fault, the
fault is reported for what it is, nothing resumes by itself. Under load the supervisor may
also stop for decoder lag or a stalled stream before it sees the injected fault; both are
stops it must make. How fast the STOP comes is a figure, not a test: the time from the fault
to the acknowledged STOP is printed (``-s``) and recorded as a test property, and
``scripts/bench_faults.py`` runs this file, collects those figures and checks their bound.
"""

from __future__ import annotations

import io
import re
import threading
import time
from pathlib import Path

import pytest

from bci.app.closed_loop import ClosedLoopSession
from bci.app.config import SessionConfig
from bci.cli.demo import DEMO_CONFIG, calibrate_demo_user
from bci.online import read_session_log
from devices.simulator import ExoSimulator

SCHEDULE = "rest:300"  # the user looks at nothing; the rig starts the walk
WAIT_S = 30.0  # how long a condition may take on a loaded machine before the test fails
# a reason the supervisor may stop for on a loaded machine, before it sees the fault
LOAD_STOP = r"decoder [\d.]+ s behind|EEG stream stalled"


def _until(cond, what: str, timeout: float = WAIT_S, poll: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"{what} (waited {timeout:g} s)"
        time.sleep(poll)


@pytest.fixture(scope="module")
def profile(tmp_path_factory) -> Path:
    """The demo user's calibration profile (FBCCA with a rest class)."""
    return calibrate_demo_user(tmp_path_factory.mktemp("profile") / "profile",
                               SessionConfig(DEMO_CONFIG))


class Rig:
    """A closed-loop session in a thread, driving a TCP simulator owned by the test."""

    def __init__(self, tmp_path: Path, profile: Path, name: str, **overrides) -> None:
        self.sim = ExoSimulator(transport="tcp", step_s=1.0).start()
        settings = {
            "session.live_view": False, "session.output": str(tmp_path / "out"),
            "source.schedule": SCHEDULE, "source.stream_name": name,
            "source.source_id": name + "-id", "decoder.profile": str(profile),
            "device.port": self.sim.url, "device.walk_steps": 10,
            "device.confirm_posture_changes": False, "lsl.decisions_stream": name + "-dec",
        }
        settings.update(overrides)
        self.cfg = SessionConfig(DEMO_CONFIG).with_overrides(settings)
        self.out = io.StringIO()
        self.session = ClosedLoopSession(self.cfg, out=self.out, install_signal_handlers=False)
        self.result = None
        self.error: BaseException | None = None
        self.replies: list[tuple[float, str, str]] = []  # (monotonic, ack|nak, verb)
        self._listening = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.result = self.session.run()
        except BaseException as exc:  # noqa: BLE001 - re-raised by finish()
            self.error = exc

    def _on_driver(self, event: str, data: dict) -> None:
        if event in ("ack", "nak"):
            self.replies.append((time.monotonic(), event, data.get("verb")))

    def wait_walking(self, timeout: float = 60.0) -> float:
        """Select STAND, then WALK, through the supervisor until the controller walks.

        Waits first until the session decodes (its EEG stream, loop and driver are up). A
        selection can be refused while motion is inhibited (a stream that stalled on a
        loaded machine); the rig selects again, as a user would. Returns the monotonic time.
        """
        _until(lambda: self.error is None and getattr(self.session, "loop", None) is not None
               and self.session.loop.n_steps >= 10, "the session never decoded", timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.error is None, self.error
            assert self.thread.is_alive(), self.out.getvalue()
            sup, driver = self.supervisor, self.session.driver
            if driver is not None and not self._listening:
                driver.add_listener(self._on_driver)
                self._listening = True
            state = self.sim.snapshot().state
            if state == "WALKING":
                return time.monotonic()
            if sup is not None and driver is not None and driver.link_ok:
                # the supervisor takes the command the menus give (bci.app.menus.select)
                sup.on_selection("walk" if state == "STANDING" else "stand")
            time.sleep(0.2)
        raise AssertionError("the exoskeleton never walked:\n" + self.out.getvalue())

    @property
    def source(self):
        return self.session.source_player

    @property
    def supervisor(self):
        return None if self.session.device is None else self.session.device.supervisor

    def wait_halted(self, t0: float, timeout: float = WAIT_S) -> tuple[float, float | None]:
        """Wait until the controller stops walking; return (halt delay, STOP ACK delay)."""
        _until(lambda: self.sim.snapshot().state != "WALKING", "the exoskeleton kept walking",
               timeout, poll=0.005)
        halted = time.monotonic() - t0
        _until(lambda: any(ev == "ack" and verb == "STOP" and t >= t0
                           for t, ev, verb in self.replies), "no STOP was acknowledged")
        acks = [t - t0 for t, ev, verb in self.replies if ev == "ack" and verb == "STOP"
                and t >= t0]
        return halted, acks[0]

    def executed_after(self, t0: float) -> list[str]:
        return [verb for t, verb, _ in self.sim.executed() if t >= t0]

    def assert_stopped_only(self, t0: float) -> None:
        """A STOP was executed after ``t0``, and nothing but STOP."""
        cmds = self.executed_after(t0)
        assert cmds and set(cmds) == {"STOP"}, cmds

    def finish(self, timeout: float = 60.0):
        self.session.request_stop("test over")
        self.thread.join(timeout)
        self.sim.stop()
        assert not self.thread.is_alive(), "the session did not end"
        if self.error is not None:
            raise self.error
        return self.result

    def log(self) -> list[dict]:
        return read_session_log(self.session.folder / "session.jsonl")

    def close(self) -> None:
        if self.thread.is_alive():
            self.session.request_stop("cleanup")
            self.thread.join(30)
        self.sim.stop()


@pytest.fixture
def rig_factory(tmp_path, profile, unique_name):
    rigs = []

    def make(**overrides) -> Rig:
        rig = Rig(tmp_path / f"r{len(rigs)}", profile, f"{unique_name}-{len(rigs)}",
                  **overrides)
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        rig.close()


def _report(record_property, name: str, halted: float, ack: float | None) -> None:
    record_property(f"{name}_halt_s", round(halted, 3))
    record_property(f"{name}_stop_ack_s", None if ack is None else round(ack, 3))
    print(f"\n[fault] {name}: controller halted after {halted:.3f} s, STOP ACK after "
          f"{'-' if ack is None else f'{ack:.3f}'} s")


def _stops(log: list[dict]) -> list[str]:
    return [e.get("reason", "") for e in log if e["event"] == "supervisor.stop"]


# ---------------------------------------------------------------------- the EEG stream


def test_eeg_stream_stops_for_good_the_session_says_so_and_ends_by_itself(rig_factory,
                                                                         record_property):
    """The headset goes away mid-walk and does not come back: the console says so while the
    session still runs, the exoskeleton is stopped, and after source.max_stall_s the session
    ends by itself with its own exit status and complete files."""
    rig = rig_factory(**{"source.max_stall_s": 3.0})
    t0 = rig.wait_walking()
    rig.source.close()  # the headset's outlet disappears for good
    while "EEG stream stalled: no data for" not in rig.out.getvalue():
        assert rig.thread.is_alive(), "the session ended before saying the stream stalled"
        time.sleep(0.01)
    said = time.monotonic() - t0
    assert rig.thread.is_alive()  # said while the session runs, before max_stall_s
    rig.wait_halted(t0)
    rig.thread.join(30)  # the session ends by itself
    assert not rig.thread.is_alive(), "the session did not end by itself"
    ended = time.monotonic() - t0
    record_property("stall_said_s", round(said, 3))
    record_property("stall_session_end_s", round(ended, 3))
    print(f"\n[fault] EEG gone for good: said after {said:.3f} s, session ended after "
          f"{ended:.1f} s (source.max_stall_s = 3)")
    assert rig.error is None, rig.error
    result = rig.result
    assert result.exit_code == 3 and result.stopped_by == "source stalled"
    out = rig.out.getvalue()
    assert out.index("EEG stream stalled") < out.index("(source.max_stall_s = 3): ending the "
                                                       "session.")
    assert rig.executed_after(t0) and set(rig.executed_after(t0)) == {"STOP"}
    assert rig.sim.snapshot().state == "STOPPED"
    # (the host stops it; the controller's watchdog may also trip on a loaded machine)
    log = rig.log()
    events = [e["event"] for e in log]
    assert events.index("source_stalled") < events.index("source_lost") < \
        events.index("final_stop")
    (lost,) = [e for e in log if e["event"] == "source_lost"]
    assert lost["silent_s"] >= 3.0  # not before the configured time
    assert result.summary["stalls"]["count"] == 1
    assert result.summary["stalls"]["longest_s"] >= 3.0
    assert result.summary["stopped_by"] == "source stalled"
    report = rig.session.report()
    assert "The input stalled 1 time(s)" in report and "summary.json" in report


def test_eeg_outlet_vanishes_then_returns_without_resuming_motion(rig_factory,
                                                                   record_property):
    rig = rig_factory()
    t0 = rig.wait_walking()
    rig.source.close()  # the headset's outlet disappears
    halted, ack = rig.wait_halted(t0)
    _report(record_property, "eeg_outlet_vanishes", halted, ack)
    assert rig.sim.snapshot().state == "STOPPED"
    # blind: decisions go on, all "stalled"
    _until(lambda: rig.session.loop.counts.get("stalled", 0) >= 5, "no stalled decisions")
    rig.source.start()  # the headset comes back (same source id)
    _until(lambda: rig.session.stream.n_reconnections >= 1 and not rig.session.stream.blind,
           "the stream was not re-acquired")
    t_back = time.time()
    _until(lambda: any(e["event"] == "decision" and e["wall_time"] > t_back
                       and e["reason"] != "stalled" for e in rig.log()),
           "decoding did not resume")  # blind until one full window (1.5 s) is buffered
    time.sleep(1.0)  # room for a motion command that should not come
    rig.assert_stopped_only(t0)  # no motion by itself after re-acquisition
    assert rig.sim.snapshot().state == "STOPPED"
    result = rig.finish()
    assert result.exit_code == 0
    log = rig.log()
    assert any(e["event"] == "supervisor.stream_stalled" for e in log)
    assert any(re.match(f"EEG stream stalled|{LOAD_STOP}", r) for r in _stops(log))


@pytest.mark.slow
def test_eeg_outlet_freezes_while_walking(rig_factory, record_property):
    """The outlet stays but stops sending: the stall timeout detects it."""
    rig = rig_factory()
    t0 = rig.wait_walking()
    rig.source.stop()  # outlet kept, no more samples
    halted, ack = rig.wait_halted(t0)
    _report(record_property, "eeg_outlet_freezes", halted, ack)
    rig.source.start()
    n = rig.session.loop.n_steps
    _until(lambda: rig.session.loop.n_steps >= n + 20, "decoding did not go on")
    rig.assert_stopped_only(t0)
    assert rig.finish().exit_code == 0
    assert any(e["event"] == "supervisor.stream_stalled" for e in rig.log())


@pytest.mark.parametrize("kind, seconds, channels, reason", [
    ("nan", 2.0, ["O1"], "bad signal: NaN"),
    ("clip", 2.0, ["Oz", "O2"], "bad signal: clipped"),
    # the injector holds each 1/16 s chunk at its first value: a staircase, seen as flat
    # channels or as clipping
    pytest.param("flat", 2.0, None, "bad signal: (flat|clipped)", marks=pytest.mark.slow),
    # 1 s of samples never sent: no sample for longer than the stall timeout (0.4 s), or the
    # newest window older than the loop's max lag (0.5 s), whichever is seen first
    pytest.param("drop", 1.0, None, r"EEG stream stalled|decoder [\d.]+ s behind",
                 marks=pytest.mark.slow),
])
def test_bad_signal_while_walking_stops_and_inhibits(rig_factory, record_property, kind,
                                                     seconds, channels, reason):
    rig = rig_factory()
    t0 = rig.wait_walking()
    rig.source.inject(kind, seconds, channels=channels)
    halted, ack = rig.wait_halted(t0)
    _report(record_property, f"eeg_{kind}", halted, ack)
    bad_signal = reason.startswith("bad signal")
    # the fault is seen; a bad signal inhibits motion until a healthy window lifts it
    _until((lambda: _inhibited_then_lifted(rig.log())) if bad_signal else
           (lambda: any(e["event"] in ("supervisor.stream_stalled", "supervisor.decoder_lag")
                        for e in rig.log())), "the fault was not seen (or not lifted)")
    time.sleep(1.0)  # room for a motion command that should not come
    rig.assert_stopped_only(t0)
    result = rig.finish()
    assert result.exit_code == 0
    log = rig.log()
    stops = _stops(log)
    # the first STOP is for the fault (or for lag / a stall a loaded machine caused first)
    assert re.match(f"{reason}|{LOAD_STOP}", stops[0]), stops
    if bad_signal:
        first_bad = next(h for h in log if h["event"] == "supervisor.health" and not h["ok"])
        assert re.match(reason.removeprefix("bad signal: "), first_bad["reason"]), first_bad


def _inhibited_then_lifted(log: list[dict]) -> bool:
    ok = [h["ok"] for h in log if h["event"] == "supervisor.health"]
    return False in ok and True in ok[ok.index(False):]


def test_timestamp_jump_is_a_defined_outcome(rig_factory):
    """Timestamps leap 5 s ahead: windows spanning the leap report the lost samples in the
    log, decoding goes on, and nothing moves on account of it."""
    rig = rig_factory()
    t0 = rig.wait_walking()
    n = rig.session.loop.n_steps
    rig.source.inject("jump", 5.0)
    _until(lambda: any(e["event"] == "decision" and e["health"]["lost_samples"] >= 5 * 256 - 1
                       for e in rig.log()), "the leap was not reported")
    _until(lambda: rig.session.loop.n_steps >= n + 30, "decoding did not go on")
    assert set(rig.executed_after(t0)) <= {"STOP"}  # at most a stop (a 17 Hz false selection)
    assert rig.thread.is_alive()
    result = rig.finish()
    assert result.exit_code == 0
    log = rig.log()
    lost = [e["health"]["lost_samples"] for e in log if e["event"] == "decision"]
    assert max(lost) >= 5 * 256 - 1  # the leap is reported window by window
    assert not any(e["event"] == "command" and e.get("result") == "executed"
                   and e.get("command") not in ("stop", "stand", "walk") for e in log)


# ---------------------------------------------------------------------- the decoder


class InjectedDecoder:
    """Wraps the session's fitted decoder; ``mode`` makes it raise or run slow."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.classes_ = inner.classes_
        self.mode = ""

    def decision_function(self, X):
        if self.mode == "raise":
            raise RuntimeError("injected decoder failure")
        if self.mode == "slow":
            time.sleep(0.8)  # longer than the loop's max lag (0.5 s)
        return self.inner.decision_function(X)


@pytest.mark.parametrize("mode, reason, stop", [
    ("raise", "decoder_error", "decoder failed"),
    ("slow", "behind", "decoder"),
])
def test_decoder_failing_or_behind_stops_motion(rig_factory, record_property, mode, reason,
                                                stop):
    rig = rig_factory()
    t0 = rig.wait_walking()
    decoder = InjectedDecoder(rig.session.loop.decoder)
    rig.session.loop.decoder = decoder
    decoder.mode = mode
    halted, ack = rig.wait_halted(t0)
    _report(record_property, f"decoder_{mode}", halted, ack)
    _until(lambda: rig.session.loop.counts.get(reason, 0) >= 2, f"no {reason} decisions")
    decoder.mode = ""  # the decoder recovers: decoding goes on, nothing moves by itself
    t_back = time.time()
    _until(lambda: any(e["event"] == "decision" and e["wall_time"] > t_back
                       and e["reason"] not in ("decoder_error", "behind", "stalled")
                       for e in rig.log()), "decoding did not recover")
    time.sleep(1.0)  # room for a motion command that should not come
    rig.assert_stopped_only(t0)
    result = rig.finish()
    assert result.exit_code == 0
    log = rig.log()
    assert any(e["event"] == "decision" and e["reason"] == reason for e in log)
    if mode == "raise":
        assert any("injected decoder failure" in e.get("error", "") for e in log)
    assert any(stop in s or re.match(LOAD_STOP, s) for s in _stops(log)), _stops(log)


# ---------------------------------------------------------------------- the serial link


def test_serial_link_cut_while_walking(rig_factory, record_property):
    """The cable is cut (TCP connection dropped): the driver reports it and reconnects; the
    controller halts (its watchdog, or the STOP the driver sends on reconnection, whichever
    comes first); no stale motion is replayed after reconnection."""
    rig = rig_factory()
    t0 = rig.wait_walking()
    rig.sim.cut_link()
    _until(lambda: rig.sim.snapshot().state != "WALKING", "the exoskeleton kept walking",
           poll=0.005)
    halted = time.monotonic() - t0
    how = (f"{rig.sim.model.halts[0].reason} {rig.sim.model.halts[0].silence_s:.3f} s after "
           "the last heartbeat" if rig.sim.model.halts else "STOP sent by the driver")
    record_property("link_cut_halt_s", round(halted, 3))
    print(f"\n[fault] serial link cut: controller halted after {halted:.3f} s ({how})")
    _until(lambda: rig.session.driver.link_ok and rig.sim.client_connected,
           "the driver did not reconnect")
    t_up = time.monotonic()
    _until(lambda: rig.session.driver.telemetry is not None
           and rig.session.driver.telemetry.received > t_up, "no telemetry after reconnection")
    time.sleep(1.0)  # room for a stale WALK that should not come
    assert set(rig.executed_after(t0)) <= {"STOP"}  # no stale WALK after reconnection
    assert rig.sim.snapshot().state == "STOPPED"
    result = rig.finish()
    assert result.exit_code == 0
    events = [e["event"] for e in rig.log()]
    assert "supervisor.link_lost" in events and "supervisor.link_up" in events


def test_garbage_truncated_and_replayed_frames_from_the_controller(rig_factory):
    """Noise, a truncated frame, a replayed ACK and a corrupted telemetry frame arrive on
    the line while walking: they are dropped and counted, the session goes on."""
    from devices.protocol import encode_frame

    rig = rig_factory()
    t0 = rig.wait_walking()
    driver = rig.session.driver
    drops0 = sum(driver.parser.drops.values())
    tel = encode_frame(9, "TEL", "STANDING", "IDLE", 0, "0.000", "0.000", "0.0", "99.0", "NONE")
    junk = [b"\x00\xff\xfe garbage \x13\n", tel[:-6] + b"\n",  # truncated: no CRC
            tel[:10] + b"X" + tel[11:],  # corrupted: bad CRC
            encode_frame(3, "ACK", 1),  # replayed ACK of a command long answered
            b"$" * 300 + b"\n"]  # overlong line
    for chunk in junk * 3:
        rig.sim._link.write(chunk)
        time.sleep(0.02)
    _until(lambda: sum(driver.parser.drops.values()) - drops0 >= 9, "the junk was not dropped")
    assert driver.link_ok
    assert driver.telemetry.state != "STANDING"  # the forged telemetry frame was not taken
    # noise is not a reason to stop: no motion command, and any STOP is for load, not link
    assert set(rig.executed_after(t0)) <= {"STOP"}
    result = rig.finish()
    assert result.exit_code == 0
    log = rig.log()
    assert not any(e["event"] == "supervisor.link_lost" for e in log)
    assert all(re.match(f"{LOAD_STOP}|session ending", s) for s in _stops(log)), _stops(log)


def test_controller_fault_while_walking_stops_and_refuses(rig_factory, record_property):
    rig = rig_factory()
    t0 = rig.wait_walking()
    rig.sim.inject_fault("MOTOR")
    _until(lambda: any(e["event"] == "supervisor.device_fault" for e in rig.log()),
           "the supervisor never saw the fault")
    seen = time.monotonic() - t0
    record_property("device_fault_seen_s", round(seen, 3))
    print(f"\n[fault] controller fault: reported to the supervisor after {seen:.3f} s")
    assert rig.sim.snapshot().state == "FAULT"
    # motion is refused while the controller is in FAULT
    out = rig.supervisor.on_selection("walk")
    assert out.status == "refused" and "FAULT" in out.reason, out
    assert rig.finish().exit_code == 0
    log = rig.log()
    assert any("device fault MOTOR" in s for s in _stops(log))
