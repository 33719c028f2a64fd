"""The stimulus on a board's LEDs: the screen stimulus's markers, from the board's events."""

from __future__ import annotations

import time

import numpy as np
import pylsl
import pytest

from bci.app.led_stimulus import BoardClock, LedStimulus
from bci.cli import main
from calibration.stimulus import STIM_OFF, STIM_ON, Target
from devices.errors import DeviceError
from devices.leds import LedEvent
from devices.simulator import ExoSimulator

TARGETS = [Target(13.0, 0.0, "walk"), Target(17.0, np.pi / 2, "stop")]


def pull_markers(inlet, n: int, timeout: float = 10.0) -> tuple[list[str], list[float]]:
    got, stamps = [], []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        samples, ts = inlet.pull_chunk(timeout=0.2)
        got += [s[0] for s in samples]
        stamps += list(ts)
    return got, stamps


def test_trials_publish_cue_and_stimulation_markers_from_the_board_events(unique_name):
    said: list[str] = []
    with ExoSimulator(transport="tcp") as sim:
        with LedStimulus(TARGETS, sim.url, marker_name=unique_name, say=said.append) as stim:
            found = pylsl.resolve_byprop("source_id", unique_name, timeout=10)
            assert found, "marker outlet not found"
            inlet = pylsl.StreamInlet(found[0])
            inlet.open_stream(timeout=10)
            time.sleep(0.3)
            trials = [stim.run_trial(lab, cue_s=0.05, stim_s=0.3, rest_s=0.0)
                      for lab in ("13.0Hz", "rest")]
            with pytest.raises(ValueError, match="Unknown cue"):
                stim.run_trial("19.0Hz")
            got, stamps = pull_markers(inlet, 6)
        log = list(sim.model.leds.log)
        freqs, phases = sim.model.leds.freq[:2], sim.model.leds.phase[:2]
    assert got == ["13.0Hz", STIM_ON, STIM_OFF, "rest", STIM_ON, STIM_OFF]
    np.testing.assert_allclose(stamps, [t for _, t in stim.flip_log], atol=1e-6)
    for tr in trials:
        # stim_off is stim_on plus the run's length by the board's clock: exactly 0.3 s
        assert tr["t_off"] - tr["t_on"] == pytest.approx(0.3, abs=1e-6)
        assert tr["t_cue"] <= tr["t_on"]
    assert [(e.mask, e.on) for e in log] == [(3, True), (3, False)] * 2
    assert freqs == [13.0, 17.0] and phases == [0.0, 90.0]  # the targets' phases, in degrees
    assert said[0].startswith("cue: look at light 1 (walk)") and "rest" in said[1]
    assert sim.model.leds.on == 0  # dark after close()


def test_a_board_without_the_extension_is_reported():
    # the simulator answers STOP but ignores nothing: make it drop LEDEV, as a board that
    # starts its lights but never reports them would
    with ExoSimulator(transport="tcp") as sim:
        sim.model.take_led_events = lambda: []
        with LedStimulus(TARGETS, sim.url, marker_name=None, say=lambda s: None,
                         event_timeout=0.3) as stim:
            with pytest.raises(DeviceError, match="did not report its lights starting"):
                stim.flicker(0.2)


def test_at_most_five_lights():
    with pytest.raises(ValueError, match="5 lights"):
        LedStimulus([Target(f) for f in (11, 13, 15, 17, 19, 21)], "loop://")


def test_stimulus_command_with_leds(unique_name, capsys):
    with ExoSimulator(transport="tcp") as sim:
        code = main(["stimulus", "--leds", sim.url, "--freqs", "13,17", "--cued", "2",
                     "--trial-s", "0.5", "--cue-s", "0", "--rest-s", "0",
                     "--marker-name", unique_name, "--seed", "1"])
        runs = [e for e in sim.model.leds.log if e.on]
    out = capsys.readouterr().out
    assert code == 0
    assert "lights 1..2 of" in out and out.count("trial ") == 6  # 2 x (13, 17, rest)
    assert len(runs) == 6
    code = main(["stimulus", "--leds", "loop://", "--freqs", "11,13,15,17,19,21"])
    assert code == 2
    assert "5 lights" in capsys.readouterr().err


def test_board_clock_takes_the_fastest_event_and_unwraps_the_counter():
    rng = np.random.default_rng(3)
    clock = BoardClock(window_s=60.0)
    offset = 1000.0  # host monotonic time of the board's t_us = 0
    board_t = np.sort(rng.uniform(0.0, 30.0, 40))
    delays = 0.002 + rng.exponential(0.01, 40)  # at least 2 ms on the link
    got = [clock.host_time(LedEvent(1, True, round(t * 1e6), offset + t + d))
           for t, d in zip(board_t, delays)]
    err = np.array(got) - (offset + board_t)
    assert np.all(err <= delays + 1e-6)  # never later than receipt
    # after the first few events, within a few ms of the true time, however late each came
    assert np.all(np.abs(err[10:]) < 0.006) and np.mean(np.abs(err[10:])) < np.mean(delays)
    # a step of the offset (the board's clock fell 70 ms behind): followed after 4 events
    t0 = board_t[-1]
    later = [clock.host_time(LedEvent(1, True, round((t0 + k) * 1e6), offset + 0.070 + t0 + k
                                      + 0.003)) for k in range(1, 7)]
    err = np.array(later) - (offset + 0.070 + t0 + np.arange(1, 7))
    assert np.all(np.abs(err[3:]) < 0.0035)
    # the 32-bit microsecond counter wraps
    wrap = BoardClock()
    t1 = wrap.host_time(LedEvent(1, True, (1 << 32) - 1000, 50.0))
    t2 = wrap.host_time(LedEvent(1, False, 1000, 50.002))
    assert t2 - t1 == pytest.approx(0.002, abs=1e-9)
