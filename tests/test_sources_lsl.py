"""SyntheticEEG and RecordingPlayer over real LSL outlets, read with EEGStream/MarkerStream."""

from __future__ import annotations

import time

import numpy as np
import pylsl
import pytest

from bci.acquisition import EEGStream, MarkerStream
from bci.acquisition._metadata import channel_labels, channel_units
from bci.sources import RecordingPlayer, SyntheticEEG, synthesize_raw
from bci.sources.replay import annotation_samples


def _wait(pred, timeout=30.0):
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            return False
        time.sleep(0.01)
    return True


class _Collector:
    """Keep every chunk an EEGStream receives."""

    def __init__(self):
        self.chunks, self.ts = [], []

    def __call__(self, chunk, ts):
        self.chunks.append(chunk.copy())
        self.ts.append(ts.copy())

    def data(self):
        return np.concatenate(self.chunks).T, np.concatenate(self.ts)


def test_synthetic_stream_matches_offline_and_markers_match_data(unique_name):
    sched = "rest:1,13:1.5,rest:0.5,17:1"
    src = SyntheticEEG(sched, name=unique_name, speed=4.0, seed=7).open()
    with EEGStream(unique_name) as eeg, MarkerStream(f"{unique_name}-markers") as mk:
        info = eeg.info
        assert channel_labels(info) == list(src.ch_names)
        assert set(channel_units(info)) == {"microvolts"}
        assert info.desc().child("acquisition").child_value("manufacturer").startswith(
            "ssvep-exo")
        assert info.channel_format() == pylsl.cf_float32
        got = _Collector()
        eeg.add_listener(got)
        t0 = time.monotonic()
        src.start()
        assert src.wait(60)
        elapsed = time.monotonic() - t0
        assert _wait(lambda: eeg.n_samples_received == 4 * 256 and mk.n_received == 4)
        markers = mk.pull()
    src.close()
    assert elapsed > 0.7, elapsed  # 4 s of signal at speed 4: paced, not pushed at once
    data, ts = got.data()
    offline = synthesize_raw(sched, seed=7).get_data()
    np.testing.assert_allclose(data, offline, rtol=1e-5, atol=1e-10)  # float32 µV -> V
    np.testing.assert_allclose(np.diff(ts), 1 / (256 * 4), atol=1e-5)
    assert [lab for _, lab in markers] == ["rest", "13.0Hz", "rest", "17.0Hz"]
    onsets = [int(np.argmin(np.abs(ts - t))) for t, _ in markers]
    np.testing.assert_array_equal(onsets, [0, 256, 640, 768])  # the segments' first samples


def test_synthetic_close_and_reopen_same_source_id(unique_name):
    src = SyntheticEEG("rest:1,13:1", name=unique_name, source_id=unique_name + "-id",
                       loop=True, speed=2.0)
    with src, EEGStream(source_id=unique_name + "-id") as eeg:
        assert _wait(lambda: eeg.n_buffered >= 64)
        src.close()  # the headset vanishes
        assert _wait(lambda: eeg.lost)
        src.start()  # and comes back
        assert _wait(lambda: eeg.n_reconnections == 1)
        assert _wait(lambda: eeg.n_buffered >= 64)
        assert eeg.latest_window(64).health.ok


def test_injected_faults_reach_the_health_report(unique_name):
    with SyntheticEEG("rest:2,13:2", name=unique_name, loop=True, speed=2.0) as src, \
            EEGStream(unique_name) as eeg:
        assert _wait(lambda: eeg.n_buffered >= 128)
        n0 = eeg.n_samples_received
        src.inject("drop", 0.25)
        src.inject("nan", 0.5, channels=["O1"])
        src.inject("clip", 0.5, channels=["Oz"])
        src.inject("flat", 1.0, channels=["PO8"])
        assert _wait(lambda: eeg.n_samples_received >= n0 + 300)
        h = eeg.latest_window(eeg.n_buffered).health  # everything since connecting
        assert h.lost_samples == 64
        assert h.nan_channels == ("O1",)
        # PO8's held value reads as a rail too when it happens to be the window's extreme
        # (constant at the extreme is what clipping looks like); either way it is bad signal
        assert "Oz" in h.clipped_channels and set(h.clipped_channels) <= {"Oz", "PO8"}
        assert _wait(lambda: eeg.n_samples_received >= n0 + 256)
        po8 = eeg.latest_window(eeg.n_buffered).data[eeg.ch_names.index("PO8")]
        same = np.flatnonzero(np.diff(po8) != 0)
        assert np.diff(same).max() >= 256 - 64  # one value for the whole fault (not per chunk)
        with pytest.raises(ValueError, match="Allowed values are"):
            src.inject("smoke", 1.0)
        with pytest.raises(ValueError, match="Unknown channel"):
            src.inject("nan", 1.0, channels=["Cz"])


def test_source_argument_checks(unique_name):
    with pytest.raises(ValueError, match="'speed' must be in"):
        SyntheticEEG("13:1", name=unique_name, speed=0)
    with pytest.raises(ValueError, match="Cannot read a stimulus frequency"):
        SyntheticEEG("blue:1", name=unique_name)
    src = SyntheticEEG("13:1", name=unique_name, speed=4).start()
    with pytest.raises(RuntimeError, match="already running"):
        src.start()
    src.close()
    with pytest.raises(TypeError, match="'recording' must be a path or an mne.io.Raw"):
        RecordingPlayer(3)


@pytest.mark.realdata
def test_replay_kalunga_fast_delivers_all_samples_and_cues(kalunga_session, unique_name):
    from bci.datasets import load_recording

    raw = load_recording(kalunga_session)
    speed = 40.0
    player = RecordingPlayer(kalunga_session, name=unique_name, speed=speed, chunk_s=0.25)
    assert player.ch_names == tuple(raw.ch_names)
    cues = [(s, d) for s, d in player.cues if d == "rest" or d.endswith("Hz")]
    assert len(cues) == 32
    player.open()
    with EEGStream(unique_name, buffer_s=10.0) as eeg, \
            MarkerStream(f"{unique_name}-markers") as mk:
        got = _Collector()
        eeg.add_listener(got)
        t0 = time.monotonic()
        player.start()
        assert player.wait(raw.n_times / raw.info["sfreq"] / speed + 20)
        wall = time.monotonic() - t0
        assert _wait(lambda: eeg.n_samples_received == raw.n_times)
        assert _wait(lambda: mk.n_received == len(player.cues))
        markers = mk.pull()
    player.close()
    data, ts = got.data()
    assert data.shape == (len(raw.ch_names), raw.n_times)
    np.testing.assert_allclose(data, raw.get_data(), rtol=1e-5, atol=1e-9)
    labels = [m for _, m in markers if m == "rest" or m.endswith("Hz")]
    assert labels == [d for _, d in cues]
    # each cue's timestamp is its onset sample's timestamp
    at = [int(np.argmin(np.abs(ts - t))) for t, _ in markers]
    np.testing.assert_array_equal(at, [s for s, _ in player.cues])
    duration = raw.n_times / raw.info["sfreq"]
    print(f"replayed {duration:.1f} s at {speed:g}x in {wall:.2f} s "
          f"(effective {duration / wall:.1f}x)")


def test_replay_raw_with_annotations_loops(unique_name):
    raw = synthesize_raw("rest:1,21:1", seed=2)
    np.testing.assert_array_equal(annotation_samples(raw), [0, 256])
    raw.annotations.append(0.5, 0.0, '{"outcome": "13.0Hz"}')  # a recorded decision
    assert [d for _, d in RecordingPlayer(raw, name=unique_name).cues] == ["rest", "21.0Hz"]
    assert len(RecordingPlayer(raw, name=unique_name, markers="all").cues) == 3
    player = RecordingPlayer(raw, name=unique_name, speed=8.0, loop=True).open()
    with MarkerStream(f"{unique_name}-markers") as mk:
        player.start()
        assert _wait(lambda: mk.n_received >= 5)
        assert [m for _, m in mk.pull()][:5] == ["rest", "21.0Hz", "rest", "21.0Hz", "rest"]
        assert not player.finished.is_set()
    player.close()


def test_timestamp_jump_reported_as_lost_samples(unique_name):
    with SyntheticEEG("rest:2", name=unique_name, loop=True, speed=2.0) as src, \
            EEGStream(unique_name) as eeg:
        assert _wait(lambda: eeg.n_buffered >= 64)
        n0 = eeg.n_samples_received
        src.inject("jump", 0.5)  # half a second of signal time
        assert _wait(lambda: eeg.n_samples_received >= n0 + 64)
        h = eeg.latest_window(eeg.n_buffered).health
        assert h.lost_samples == 128 and not h.stalled
