"""On-screen stimulus: luminance maths, headless rendering read-back, LSL marker timing."""

from __future__ import annotations

import time

import numpy as np
import pytest

from calibration._luminance import (
    check_renderable,
    gray_levels,
    luminance,
    refresh_from_intervals,
)
from calibration.errors import CalibrationError
from calibration.stimulus import STIM_OFF, STIM_ON, Stimulus, Target

pytest.importorskip("pygame")
pylsl = pytest.importorskip("pylsl")

TARGETS = [Target(13.0, 0.0, "walk"), Target(17.0, np.pi / 2, "sit"), Target(21.0, 1.0, "stop")]


def test_luminance_formula_and_non_divisor_frequency():
    k = np.arange(600)
    lum = luminance(17.0, 0.3, k, 60.0)
    np.testing.assert_allclose(lum, 0.5 * (1 + np.sin(2 * np.pi * 17.0 * k / 60.0 + 0.3)))
    assert lum.min() >= 0 and lum.max() <= 1
    # 17 Hz does not divide 60 Hz, yet the sampled sequence has its spectral peak at 17 Hz.
    spec = np.abs(np.fft.rfft(lum - lum.mean()))
    freqs = np.fft.rfftfreq(k.size, d=1 / 60.0)
    assert freqs[np.argmax(spec)] == pytest.approx(17.0, abs=0.1)
    g = gray_levels(17.0, 0.3, k, 60.0)
    assert g.dtype.kind == "i" and g.min() >= 0 and g.max() <= 255
    np.testing.assert_array_equal(g, np.rint(255 * lum))


def test_nyquist_refused_with_clear_message():
    check_renderable([13, 17, 29.9], 60.0)
    with pytest.raises(CalibrationError, match=r"below 30\.0 Hz \(Nyquist\).*cannot render 30 Hz"):
        check_renderable([13, 30], 60.0)
    with pytest.raises(CalibrationError, match="below 30.0 Hz"):
        Stimulus([Target(13), Target(31)], refresh_rate=60.0, marker_name=None)
    with pytest.raises(CalibrationError, match="Invalid display refresh rate"):
        check_renderable([13], 0.0)


def test_refresh_from_intervals_is_median():
    iv = [1 / 60] * 50 + [0.1, 0.2]  # two dropped frames do not move the median
    assert refresh_from_intervals(iv) == pytest.approx(60.0)
    with pytest.raises(CalibrationError, match="no frame intervals"):
        refresh_from_intervals([])


def test_bad_arguments():
    with pytest.raises(TypeError, match="non-empty sequence of Target"):
        Stimulus([13.0])
    with pytest.raises(ValueError, match="Duplicate target"):
        Stimulus([Target(13), Target(13.0)])
    with pytest.raises(ValueError, match="'refresh_rate' must be a positive"):
        Stimulus([Target(13)], refresh_rate=-1)
    stim = Stimulus([Target(13)], refresh_rate=60, marker_name=None)
    with pytest.raises(RuntimeError, match="call open"):
        stim.flicker(0.1)


def test_rendered_luminance_matches_formula():
    with Stimulus(TARGETS, refresh_rate=60.0, marker_name=None, record_luminance=True) as stim:
        stim.flicker(0.5)
    # every frame is rendered or, on a loaded machine, dropped to keep to the clock
    assert len(stim.luminance_log) + stim.dropped_frames == 30
    read = np.array([v for _, v in stim.luminance_log])
    frames = np.array([k for k, _ in stim.luminance_log])
    assert frames[0] == 0 and np.all(np.diff(frames) >= 1) and frames[-1] <= 29
    expected = np.stack([gray_levels(t.freq, t.phase, frames, 60.0) for t in TARGETS], axis=1)
    np.testing.assert_array_equal(read, expected)
    # The three tiles really differ (different frequencies/phases are rendered).
    assert not np.array_equal(read[:, 0], read[:, 1])


def test_cued_tile_is_highlighted():
    with Stimulus(TARGETS, refresh_rate=60.0, marker_name=None) as stim:
        stim.show_static(0.05, highlight=1)
        scr = stim._screen
        border = [stim._rects[i].inflate(16, 16).topleft for i in range(3)]
        colours = [tuple(scr.get_at((x + 2, y + 2)))[:3] for x, y in border]
    assert colours[1] == (255, 200, 0)
    assert colours[0] == (0, 0, 0) and colours[2] == (0, 0, 0)


def test_markers_timestamped_at_flips(unique_name):
    with Stimulus(TARGETS, refresh_rate=60.0, marker_name=unique_name) as stim:
        found = pylsl.resolve_byprop("source_id", unique_name, timeout=10)
        assert found, "marker outlet not found"
        inlet = pylsl.StreamInlet(found[0])
        inlet.open_stream(timeout=10)
        time.sleep(0.3)
        times = stim.run_sequence(["17.0Hz", "rest"], cue_s=0.2, stim_s=0.5, rest_s=0.1)
        with pytest.raises(ValueError, match="Unknown cue '19.0Hz'"):
            stim.run_trial("19.0Hz")
        got, stamps = [], []
        deadline = time.monotonic() + 10
        while len(got) < 6 and time.monotonic() < deadline:
            samples, ts = inlet.pull_chunk(timeout=0.5)
            got += [s[0] for s in samples]
            stamps += list(ts)
    assert got == ["17.0Hz", STIM_ON, STIM_OFF, "rest", STIM_ON, STIM_OFF]
    flips = [t for _, t in stim.flip_log]
    np.testing.assert_allclose(stamps, flips, atol=1e-6)  # the LSL stamps are the flip times
    assert [m for m, _ in stim.flip_log] == got
    # each phase lasts as asked; a flip a loaded machine delays moves one end by that delay
    # (the frame clock keeps the phases on schedule), hence the margins
    for tr in times:
        assert 0.1 <= tr["t_on"] - tr["t_cue"] < 0.2 + 0.5
        assert 0.35 <= tr["t_off"] - tr["t_on"] < 0.5 + 0.5


def test_falling_behind_drops_frames_and_keeps_the_trial_length():
    """A program that cannot draw at the refresh rate still ends the trial on time."""
    import time

    with Stimulus(TARGETS, refresh_rate=60.0, marker_name=None, record_luminance=True) as stim:
        slow = lambda k: time.sleep(0.05)  # noqa: E731 - a frame takes 3 refresh periods
        t_on, t_off = stim.flicker(1.0, on_frame=slow)
    assert stim.dropped_frames >= 30  # about 2 of every 3 frames cannot be shown
    assert len(stim.luminance_log) + stim.dropped_frames == 60
    assert 0.75 <= t_off - t_on < 2.0  # about 1 s, not 3 s
    frames = np.array([k for k, _ in stim.luminance_log])
    read = np.array([v for _, v in stim.luminance_log])
    expected = np.stack([gray_levels(t.freq, t.phase, frames, 60.0) for t in TARGETS], axis=1)
    np.testing.assert_array_equal(read, expected)  # the frames shown are the right ones


def test_no_control_task_is_shown_and_marked():
    """A 'blink' rest trial writes its instruction instead of the fixation cross and marks
    the task with the cue."""
    with Stimulus(TARGETS, refresh_rate=60.0, marker_name=None) as stim:
        stim.run_trial("rest", task="blink", cue_s=0.05, stim_s=0.05, rest_s=0.0)
        with pytest.raises(ValueError, match="only rest trials have a task"):
            stim.run_trial("13.0Hz", task="blink")
        with pytest.raises(ValueError, match="only rest trials have a task"):
            stim.run_trial("rest", task="dance")
    markers = [m for m, _ in stim.flip_log]
    assert markers[:4] == ["rest", "task:blink", STIM_ON, STIM_OFF]
    assert stim.flip_log[0][1] == stim.flip_log[1][1]  # same flip


def test_instruction_drawn_during_no_control_flicker():
    """The instruction is on screen while the tiles flicker, and gone without one."""
    with Stimulus(TARGETS, refresh_rate=60.0, marker_name=None) as stim:
        seen = []

        def grab(_k):
            scr = stim._screen
            cx = scr.get_width() // 2
            seen.append(any(tuple(scr.get_at((x, y)))[:3] == (255, 200, 0)
                            for x in range(cx - 150, cx + 150, 2) for y in range(14, 40, 2)))
        stim.flicker(0.05, instruction="Say something aloud", on_frame=grab)
        stim.flicker(0.05, on_frame=grab)
    assert seen[0] and not seen[-1]
