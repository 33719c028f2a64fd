"""Live calibration end to end over LSL against the synthetic source; signal check."""

from __future__ import annotations

import time

import numpy as np
import pytest

from bci.acquisition import EEGStream
from bci.datasets import load_recording
from bci.sources.synthetic import SyntheticEEG, synthesize_raw
from calibration.cues import CueSequence
from calibration.errors import CalibrationError
from calibration.live import calibrate_live
from calibration.profile import SubjectProfile
from calibration.signal_check import check_signal


def _first_sample_time(src: SyntheticEEG, timeout: float = 10.0) -> float:
    deadline = time.monotonic() + timeout
    while not src.markers_sent and time.monotonic() < deadline:
        time.sleep(0.01)
    assert src.markers_sent, "the synthetic source published nothing"
    return src.markers_sent[0][0]  # the lead-in segment starts at the first sample


@pytest.mark.slow
def test_live_calibration_end_to_end(unique_name, tmp_path):
    seq = CueSequence.balanced([13, 17], 2, trial_s=4.0, lead_s=5.0, seed=1)  # 8 s of rest: 4 blocks
    src = SyntheticEEG(seq.schedule(tail_s=3.0), name=unique_name, snr=1.0, seed=5)
    lines: list[str] = []
    with src:
        t0 = _first_sample_time(src)
        prof, rep = calibrate_live(name=unique_name, sequence=seq, start_at=t0,
                                   output=tmp_path, methods=["fbcca"], windows=[1.0, 2.0],
                                   step_s=0.2, progress=lines.append)
    assert lines[0].startswith("Signal check passed")
    assert sum(ln.startswith("trial ") for ln in lines) == 6
    # the recording is a file bci.datasets loads, with the cues in order
    raw = load_recording(tmp_path / "calibration.xdf")
    assert [a["description"] for a in raw.annotations] == list(seq.labels)
    onsets = raw.annotations.onset
    np.testing.assert_allclose(np.diff(onsets), seq.period_s, atol=0.02)
    # model selection ran and the profile was written
    assert (tmp_path / "profile.json").is_file()
    assert rep.selected["accuracy"] >= 0.8 and prof.window_s == 1.0  # 2 s does not fit
    assert prof.labels == ["13.0Hz", "17.0Hz", "rest"]
    assert prof.source_recordings == [str(tmp_path / "calibration.xdf")]
    # the profile decodes a fresh synthetic stream
    loaded = SubjectProfile.load(tmp_path)
    dec = loaded.build_decoder()
    fresh = f"{unique_name}-fresh"
    with SyntheticEEG("13:3,17:3,rest:2", name=fresh, snr=1.0, seed=77) as src2, \
            EEGStream(name=fresh) as stream:
        loaded.check_compatible(stream.ch_names, stream.sfreq)
        got = []
        for k in range(2):
            src_t0 = _first_sample_time(src2)
            target = src_t0 + 3.0 * k + 2.6
            while stream.latest_window(loaded.n_samples) is None or \
                    stream.latest_window(loaded.n_samples).t_end < target:
                time.sleep(0.05)
            win = stream.latest_window(loaded.n_samples)
            idx = loaded.channel_indices(stream.ch_names)
            got.append(str(dec.predict(win.data[idx][None])[0]))
    assert got == ["13.0Hz", "17.0Hz"]


def test_signal_check_names_the_electrode_to_fix(unique_name, tmp_path):
    with SyntheticEEG("rest:60", name=unique_name, seed=1) as src:
        src.inject("clip", 60.0, ["O1"])  # saturated amplifier channel: a constant
        with pytest.raises(CalibrationError, match=r"Signal check failed for O1: Electrode O1: "
                                                   r"flat signal"):
            calibrate_live(name=unique_name, freqs=[13, 17], n_per_class=2, trial_s=2.0,
                           output=tmp_path, check_s=1.0)  # trials the windows fit
    assert not (tmp_path / "calibration.xdf").exists()


def test_check_signal_flat_noisy_line():
    raw = synthesize_raw("rest:6,13:6", seed=2)
    data = raw.get_data()
    ok = check_signal(data, 256.0, raw.ch_names)
    assert ok.ok and ok.message().startswith("Signal check passed")
    bad = data.copy()
    bad[1] = 3e-3  # flat (constant offset)
    t = np.arange(bad.shape[1]) / 256.0
    bad[2] += 30e-6 * np.sin(2 * np.pi * 50 * t)
    bad[3] *= 30
    chk = check_signal(bad, 256.0, raw.ch_names)
    assert chk.bad_channels == ("O1", "O2", "PO3")
    probs = {c.name: c.problems for c in chk.channels}
    assert probs["O1"] == ("flat",) and probs["O2"] == ("line noise",)
    assert probs["PO3"] == ("noisy",)
    msg = chk.message()
    assert "Electrode O1: flat signal" in msg and "Electrode PO3: noisy" in msg
    assert "50 Hz line noise" in msg
    assert "O2" in chk.table() and "line noise" in chk.table()
    with pytest.raises(CalibrationError, match="Signal check failed for O1, O2, PO3"):
        chk.raise_if_bad()
    sixty = check_signal(bad, 256.0, raw.ch_names, line_freq=60.0)
    assert "O2" not in sixty.bad_channels
    bad[4, 10:20] = np.nan
    assert check_signal(bad, 256.0, raw.ch_names).channels[4].problems == ("no data",)
    assert "Electrode POz: no valid data" in check_signal(bad, 256.0, raw.ch_names).message()
    with pytest.raises(ValueError, match="at least 1 s of data"):
        check_signal(data[:, :100], 256.0, raw.ch_names)


@pytest.mark.slow
def test_live_calibration_with_stimulus(unique_name, tmp_path):
    """Cues from the on-screen stimulus (headless): cue, stim_on, stim_off are recorded."""
    pytest.importorskip("pygame")
    seq = CueSequence.balanced([13, 17], 3, trial_s=2.0, cue_s=0.3, lead_s=5.0, seed=3)
    src = SyntheticEEG(seq.schedule(tail_s=3.0), name=unique_name, snr=1.0, seed=9)
    with src:
        t0 = _first_sample_time(src)
        prof, rep = calibrate_live(name=unique_name, sequence=seq, start_at=t0, stimulus=True,
                                   refresh_rate=60.0, output=tmp_path, methods=["fbcca"],
                                   windows=[1.0], step_s=0.2,
                                   marker_name=f"{unique_name}-cues",
                                   menus={"SITTING": {"13.0Hz": "stand"}})
    raw = load_recording(tmp_path / "calibration.xdf")
    descs = [a["description"] for a in raw.annotations]
    cues = [d for d in descs if d in ("13.0Hz", "17.0Hz", "rest")]
    assert cues == list(seq.labels)
    assert descs.count("stim_on") == descs.count("stim_off") == len(seq.labels)
    on = raw.annotations.onset
    cue_on = on[[d in ("13.0Hz", "17.0Hz", "rest") for d in descs]]
    stim_on = on[[d == "stim_on" for d in descs]]
    # the cue is shown for 18 frames (0.3 s at 60 Hz; longer when a loaded machine drops
    # frames, never shorter), then the lights flicker until the trial's end
    gap = stim_on - cue_on
    assert np.all(gap >= 0.25), gap
    assert np.all(stim_on[:-1] < cue_on[1:]), (stim_on, cue_on)
    assert prof.menus == {"SITTING": {"13.0Hz": "stand"}}
    assert rep.selected["accuracy"] >= 0.6


def test_live_calibration_refuses_a_unitless_stream_in_volts(unique_name, tmp_path):
    """Volts taken for microvolts would pass as flat electrodes: the unit check says why."""
    import threading

    import pylsl

    from bci.errors import StreamError

    info = pylsl.StreamInfo(unique_name, "EEG", 3, 256.0, pylsl.cf_float32, unique_name)
    chans = info.desc().append_child("channels")
    for lab in ("O1", "Oz", "O2"):
        chans.append_child("channel").append_child_value("label", lab)
    outlet = pylsl.StreamOutlet(info)
    stop = threading.Event()

    def pace():
        rng = np.random.default_rng(0)
        while not stop.wait(1 / 16):
            outlet.push_chunk((rng.standard_normal((16, 3)) * 20e-6).astype(np.float32))

    th = threading.Thread(target=pace, daemon=True)
    th.start()
    try:
        with pytest.warns(RuntimeWarning, match="assuming microvolts"), \
                pytest.raises(StreamError, match="look like volts"):
            calibrate_live(name=unique_name, freqs=[13, 17], n_per_class=2, output=tmp_path,
                           check_s=1.0, methods=["fbcca"])
    finally:
        stop.set()
        th.join(2.0)
    assert not (tmp_path / "calibration.xdf").exists()  # nothing recorded


def test_live_calibration_records_realistic_no_control_by_default():
    from calibration.live import live_sequence

    seq = live_sequence([13, 17, 21], 8, trial_s=5.0, seed=4)
    rest = [t for lab, t in zip(seq.labels, seq.tasks) if lab == "rest"]
    # a 60 s fixation block (12 trials of 5 s) and 2 trials of each of four tasks
    assert rest.count("fixate") == 12
    assert {t: rest.count(t) for t in ("between", "around", "blink", "talk")} == {
        "between": 2, "around": 2, "blink": 2, "talk": 2}
    assert sum(lab != "rest" for lab in seq.labels) == 24
    # 100 s of no-control: 50 blocks of 2 s for the model of rest (a plain schedule: 8 trials)
    assert len(rest) * seq.trial_s == 100.0
    plain = live_sequence([13, 17, 21], 8, trial_s=5.0, no_control="rest", seed=4)
    assert plain.labels.count("rest") == 8 and plain.tasks is None
    assert "rest" not in live_sequence([13, 17], 2, include_rest=False).labels
    with pytest.raises(ValueError, match="'no_control' must be 'realistic' or 'rest'"):
        live_sequence([13, 17], 2, no_control="none")


def test_calibrate_cli_passes_the_no_control_schedule(monkeypatch, tmp_path):
    import bci.cli.calibrate as cli_calibrate
    from bci.cli import main as cli_main

    seen = {}

    def fake(**kw):  # the live session itself is tested above over real LSL
        seen.update(kw)
        raise SystemExit(0)

    monkeypatch.setattr(cli_calibrate, "calibrate_live", fake)
    with pytest.raises(SystemExit):
        cli_main(["calibrate", "--stream", "x", "--output", str(tmp_path)])
    assert seen["no_control"] == "realistic" and seen["rest_block_s"] == 60.0
    with pytest.raises(SystemExit):
        cli_main(["calibrate", "--stream", "x", "--output", str(tmp_path), "--no-control",
                  "rest", "--rest-block-s", "30"])
    assert seen["no_control"] == "rest" and seen["rest_block_s"] == 30.0
