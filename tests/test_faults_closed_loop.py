"""Fault injection through the real closed loop while the exoskeleton walks.

Each test runs a real :class:`bci.app.closed_loop.ClosedLoopSession` (synthetic EEG on real
LSL outlets -> EEGStream -> OnlineLoop -> SafetySupervisor -> ExoskeletonDriver) against a real
simulated controller served on a TCP port of this process, so the controller's state and the
commands it executed are observed directly. The schedule makes the simulated user stand up,
select WALK (10 steps of 1 s) and then look at nothing (rest): once walking, nothing in the
EEG asks for motion, so any later motion command would be a stale one.

The measured time from the fault to the acknowledged STOP is printed (``-s`` shows it) and
recorded as a test property; docs/safety.md lists the figures.
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

# stand (21 Hz), walk (13 Hz), then nothing: the walk of 10 x 1 s steps outlasts the 13 Hz cue
SCHEDULE = "rest:0.5,21:2.5,13:2.5,rest:120"
STOP_BOUND_S = 1.5  # generous bound on a loaded 2-core machine; measured figures are ~0.1-0.7


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

    def wait_walking(self, timeout: float = 30.0) -> float:
        """Wait until the controller walks; return the monotonic time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.error is None, self.error
            assert self.thread.is_alive(), self.out.getvalue()
            if self.session.driver is not None and not self._listening:
                self.session.driver.add_listener(self._on_driver)
                self._listening = True
            if self.sim.snapshot().state == "WALKING":
                return time.monotonic()
            time.sleep(0.01)
        raise AssertionError("the exoskeleton never walked:\n" + self.out.getvalue())

    @property
    def source(self):
        return self.session.source_player

    def wait_rest_cue(self, timeout: float = 10.0) -> None:
        """Wait until the simulated user looks at nothing (the walk goes on)."""
        deadline = time.monotonic() + timeout
        while self.source.label_at(self.source.n_pushed) != "rest":
            assert time.monotonic() < deadline, "the schedule never reached rest"
            time.sleep(0.02)
        time.sleep(0.3)
        assert self.sim.snapshot().state == "WALKING"

    def wait_halted(self, t0: float, timeout: float = 5.0) -> tuple[float, float | None]:
        """Wait until the controller stops walking; return (halt delay, STOP ACK delay)."""
        deadline = time.monotonic() + timeout
        while self.sim.snapshot().state == "WALKING":
            assert time.monotonic() < deadline, "the exoskeleton kept walking"
            time.sleep(0.002)
        halted = time.monotonic() - t0
        time.sleep(0.2)  # let the ACK reach the listener
        acks = [t - t0 for t, ev, verb in self.replies if ev == "ack" and verb == "STOP"
                and t >= t0]
        return halted, (acks[0] if acks else None)

    def executed_after(self, t0: float) -> list[str]:
        return [verb for t, verb, _ in self.sim.executed() if t >= t0]

    def finish(self, timeout: float = 30.0):
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
    rig.wait_walking()
    rig.wait_rest_cue()
    t0 = time.monotonic()
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
    assert not rig.sim.model.halts  # the host stopped it, not the controller's watchdog
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
    rig.wait_walking()
    rig.wait_rest_cue()
    t0 = time.monotonic()
    rig.source.close()  # the headset's outlet disappears
    halted, ack = rig.wait_halted(t0)
    _report(record_property, "eeg_outlet_vanishes", halted, ack)
    assert ack is not None and ack < STOP_BOUND_S
    assert rig.sim.snapshot().state == "STOPPED"
    assert not rig.sim.model.halts  # stopped by the host's STOP, not by the watchdog
    time.sleep(1.0)  # blind: decisions go on, all "stalled"
    n_blind = rig.session.loop.counts.get("stalled", 0)
    assert n_blind >= 5
    rig.source.start()  # the headset comes back (same source id)
    deadline = time.monotonic() + 15
    while rig.session.stream.n_reconnections < 1 or rig.session.stream.blind:
        assert time.monotonic() < deadline, "the stream was not re-acquired"
        time.sleep(0.05)
    t_back = time.monotonic()
    n_ok = rig.session.loop.n_steps
    time.sleep(3.0)
    assert rig.session.loop.n_steps - n_ok >= 15  # decoding again
    assert rig.executed_after(t0) == ["STOP"]  # no motion by itself after re-acquisition
    assert rig.sim.snapshot().state == "STOPPED"
    result = rig.finish()
    assert result.exit_code == 0
    log = rig.log()
    assert any(e["event"] == "supervisor.stream_stalled" for e in log)
    assert any("stalled" in r for r in _stops(log))
    back = time.time() - (time.monotonic() - t_back)
    recent = [e["reason"] for e in log if e["event"] == "decision" and e["wall_time"] > back]
    # blind until one full window (1.5 s) of the returned stream is buffered, then decoding
    assert recent[-10:] and "stalled" not in recent[-10:], recent


@pytest.mark.slow
def test_eeg_outlet_freezes_while_walking(rig_factory, record_property):
    """The outlet stays but stops sending: the stall timeout (0.5 s) detects it."""
    rig = rig_factory()
    rig.wait_walking()
    rig.wait_rest_cue()
    t0 = time.monotonic()
    rig.source.stop()  # outlet kept, no more samples
    halted, ack = rig.wait_halted(t0)
    _report(record_property, "eeg_outlet_freezes", halted, ack)
    assert ack is not None and ack < STOP_BOUND_S
    rig.source.start()
    time.sleep(3.0)
    assert rig.executed_after(t0) == ["STOP"]
    assert rig.finish().exit_code == 0


@pytest.mark.parametrize("kind, seconds, channels, reason", [
    ("nan", 2.0, ["O1"], "bad signal: NaN"),
    ("clip", 2.0, ["Oz", "O2"], "bad signal: clipped"),
    # the injector holds each 1/16 s chunk at its first value: a staircase, seen as clipping
    pytest.param("flat", 2.0, None, "bad signal:", marks=pytest.mark.slow),
    # 1 s of samples never sent: no sample for longer than the stall timeout (0.5 s), or the
    # newest window older than the loop's max lag (0.5 s), whichever is seen first
    pytest.param("drop", 1.0, None, r"EEG stream stalled|decoder [\d.]+ s behind",
                 marks=pytest.mark.slow),
])
def test_bad_signal_while_walking_stops_and_inhibits(rig_factory, record_property, kind,
                                                     seconds, channels, reason):
    rig = rig_factory()
    rig.wait_walking()
    rig.wait_rest_cue()
    t0 = time.monotonic()
    rig.source.inject(kind, seconds, channels=channels)
    halted, ack = rig.wait_halted(t0)
    _report(record_property, f"eeg_{kind}", halted, ack)
    assert ack is not None and ack < STOP_BOUND_S
    time.sleep(seconds + 1.5)  # the fault passes, the signal is good again
    assert rig.executed_after(t0) == ["STOP"]
    result = rig.finish()
    assert result.exit_code == 0
    log = rig.log()
    stops = _stops(log)
    assert re.match(reason, stops[0]), stops
    health = [h["ok"] for h in log if h["event"] == "supervisor.health"]
    if reason.startswith("bad signal"):
        assert health[:2] == [False, True]  # inhibited, then lifted by a healthy window
    else:
        assert any(e["event"] in ("supervisor.stream_stalled", "supervisor.decoder_lag")
                   for e in log)


def test_timestamp_jump_is_a_defined_outcome(rig_factory, record_property):
    """Timestamps leap 5 s ahead: windows spanning the leap report the lost samples in the
    log, decoding goes on, and nothing moves on account of it."""
    rig = rig_factory()
    rig.wait_walking()
    rig.wait_rest_cue()
    t0 = time.monotonic()
    rig.source.inject("jump", 5.0)
    time.sleep(3.0)
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
    rig.wait_walking()
    rig.wait_rest_cue()
    decoder = InjectedDecoder(rig.session.loop.decoder)
    rig.session.loop.decoder = decoder
    t0 = time.monotonic()
    decoder.mode = mode
    halted, ack = rig.wait_halted(t0)
    _report(record_property, f"decoder_{mode}", halted, ack)
    assert ack is not None and ack < STOP_BOUND_S + (0.8 if mode == "slow" else 0.0)
    time.sleep(1.0)
    decoder.mode = ""  # the decoder recovers: decoding goes on, nothing moves by itself
    time.sleep(1.5)
    assert rig.executed_after(t0) == ["STOP"]
    result = rig.finish()
    assert result.exit_code == 0
    log = rig.log()
    assert any(e["event"] == "decision" and e["reason"] == reason for e in log)
    if mode == "raise":
        assert any("injected decoder failure" in e.get("error", "") for e in log)
    assert any(stop in s for s in _stops(log)), _stops(log)
    assert log[-1]["event"] != "decision" or log[-1]["reason"] != reason  # recovered


# ---------------------------------------------------------------------- the serial link


def test_serial_link_cut_while_walking(rig_factory, record_property):
    """The cable is cut (TCP connection dropped): the driver reports it and reconnects; the
    controller halts (its watchdog, or the STOP the driver sends on reconnection, whichever
    comes first); no stale motion is replayed after reconnection."""
    rig = rig_factory()
    rig.wait_walking()
    rig.wait_rest_cue()
    t0 = time.monotonic()
    rig.sim.cut_link()
    halted, _ = rig.wait_halted(t0)
    how = (f"{rig.sim.model.halts[0].reason} {rig.sim.model.halts[0].silence_s:.3f} s after "
           "the last heartbeat" if rig.sim.model.halts else "STOP sent by the driver")
    record_property("link_cut_halt_s", round(halted, 3))
    print(f"\n[fault] serial link cut: controller halted after {halted:.3f} s ({how})")
    assert halted < STOP_BOUND_S
    deadline = time.monotonic() + 10
    while not (rig.session.driver.link_ok and rig.sim.client_connected):
        assert time.monotonic() < deadline, "the driver did not reconnect"
        time.sleep(0.02)
    time.sleep(1.5)
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
    rig.wait_walking()
    driver = rig.session.driver
    drops0 = sum(driver.parser.drops.values())
    t0 = time.monotonic()
    tel = encode_frame(9, "TEL", "STANDING", "IDLE", 0, "0.000", "0.000", "0.0", "99.0", "NONE")
    junk = [b"\x00\xff\xfe garbage \x13\n", tel[:-6] + b"\n",  # truncated: no CRC
            tel[:10] + b"X" + tel[11:],  # corrupted: bad CRC
            encode_frame(3, "ACK", 1),  # replayed ACK of a command long answered
            b"$" * 300 + b"\n"]  # overlong line
    for chunk in junk * 3:
        rig.sim._link.write(chunk)
        time.sleep(0.02)
    time.sleep(0.5)
    assert sum(driver.parser.drops.values()) - drops0 >= 9
    assert rig.sim.snapshot().state == "WALKING"  # noise is not a reason to stop a step
    assert driver.link_ok and rig.executed_after(t0) == []
    assert driver.telemetry.state == "WALKING"
    assert rig.finish().exit_code == 0


def test_controller_fault_while_walking_stops_and_refuses(rig_factory, record_property):
    rig = rig_factory()
    rig.wait_walking()
    t0 = time.monotonic()
    rig.sim.inject_fault("MOTOR")
    deadline = time.monotonic() + 3
    while not any(e["event"] == "supervisor.device_fault" for e in rig.log()):
        assert time.monotonic() < deadline, "the supervisor never saw the fault"
        time.sleep(0.02)
    seen = time.monotonic() - t0
    record_property("device_fault_seen_s", round(seen, 3))
    print(f"\n[fault] controller fault: reported to the supervisor after {seen:.3f} s")
    assert rig.sim.snapshot().state == "FAULT"
    assert rig.finish().exit_code == 0
    log = rig.log()
    assert any("device fault MOTOR" in s for s in _stops(log))
