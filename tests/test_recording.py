"""XDF recording: round trip through pyxdf and bci.datasets, truncation, write errors, live."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import pyxdf

from bci.recording import SessionRecorder, XDFWriter

CH = ["Oz", "O1", "O2"]


def _streams(path):
    streams, header = pyxdf.load_xdf(str(path), synchronize_clocks=False,
                                     dejitter_timestamps=False)
    return {s["info"]["name"][0]: s for s in streams}, header


def _record(path, rng, n_chunks=5, chunk=128, **kw):
    rec = SessionRecorder(path, ch_names=CH, sfreq=256.0, flush_s=0.0, **kw).start()
    xs, tss = [], []
    for k in range(n_chunks):
        x = rng.standard_normal((chunk, 3)) * 1e-5
        ts = 50.0 + (k * chunk + np.arange(chunk)) / 256
        rec.push_eeg(x, ts)
        xs.append(x)
        tss.append(ts)
        time.sleep(0.02)  # separate chunks in the file
    rec.push_marker(50.5, "13.0Hz")
    rec.push_marker(52.0, "rest")
    rec.push_decision({"timestamp": 51.0, "outcome": "13.0Hz"})
    return rec, np.concatenate(xs), np.concatenate(tss)


def test_round_trip_pyxdf_and_load_recording(tmp_path, rng):
    path = tmp_path / "s.xdf"
    rec, x, ts = _record(path, rng)
    rec.close()
    rec.close()  # idempotent
    assert rec.ok and rec.counts == {"eeg": 640, "markers": 2, "decisions": 1}
    streams, header = _streams(path)
    assert header["info"]["version"] == ["1.0"]
    eeg = streams["EEG"]
    np.testing.assert_allclose(eeg["time_series"], x * 1e6, rtol=1e-6)  # float32 µV
    np.testing.assert_allclose(eeg["time_stamps"], ts)
    chans = eeg["info"]["desc"][0]["channels"][0]["channel"]
    assert [c["label"][0] for c in chans] == CH
    assert {c["unit"][0] for c in chans} == {"microvolts"}
    assert eeg["info"]["nominal_srate"] == ["256.0"]
    assert streams["EEG-markers"]["time_series"] == [["13.0Hz"], ["rest"]]
    assert streams["ssvep-decisions"]["time_series"][0][0].startswith('{"timestamp":51.0')
    assert eeg["footer"]["info"]["sample_count"] == ["640"]
    from bci.datasets import load_recording

    raw = load_recording(path)
    assert raw.ch_names == CH and raw.info["sfreq"] == 256.0
    np.testing.assert_allclose(raw.get_data(), x.T, rtol=1e-5, atol=1e-12)
    cues = [(round(o, 3), d) for o, d in zip(raw.annotations.onset, raw.annotations.description)
            if d in ("13.0Hz", "rest")]
    assert cues == [(0.5, "13.0Hz"), (2.0, "rest")]


def test_truncated_file_reads_up_to_last_complete_chunk(tmp_path, rng):
    path = tmp_path / "s.xdf"
    rec, x, _ = _record(path, rng, n_chunks=6)
    rec.close()
    blob = path.read_bytes()
    cut = tmp_path / "cut.xdf"
    # drop the footers and half of the last chunks: earlier chunks must survive
    cut.write_bytes(blob[: int(len(blob) * 0.8)])
    streams, _ = _streams(cut)
    n = len(streams["EEG"]["time_stamps"])
    assert 128 <= n < 768 and n % 128 == 0
    np.testing.assert_allclose(streams["EEG"]["time_series"], x[:n] * 1e6, rtol=1e-6)
    from bci.datasets import load_recording
    from bci.errors import DatasetError

    with pytest.raises(DatasetError, match=r"cut.xdf: the file is truncated \(it ends at "):
        load_recording(cut)  # by default: said, not read as if whole
    try:
        raw = load_recording(cut, salvage=True)
    except DatasetError as exc:  # no cue left in the truncated part is a clear error
        assert "cue" in str(exc).lower() or "marker" in str(exc).lower()
    else:
        assert raw.n_times == n


def _kill_script(path: Path) -> str:
    return f"""
import numpy as np, os, signal, time
from bci.recording import SessionRecorder
rec = SessionRecorder({str(path)!r}, ch_names=["Oz", "O1"], sfreq=256.0, flush_s=0.0,
                      fsync=True).start()
rec.push_marker(10.0, "17.0Hz")
for k in range(8):
    rec.push_eeg(np.full((64, 2), k, float) * 1e-6, 10.0 + (k * 64 + np.arange(64)) / 256)
    time.sleep(0.05)
deadline = time.monotonic() + 60
while rec.counts["eeg"] < 512 and time.monotonic() < deadline:  # written, flushed, synced
    time.sleep(0.01)
print("written", flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_sigkill_leaves_a_readable_file(tmp_path):
    path = tmp_path / "killed.xdf"
    proc = subprocess.run([sys.executable, "-c", _kill_script(path)], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == -9 and "written" in proc.stdout
    streams, _ = _streams(path)
    eeg = streams["EEG"]
    assert len(eeg["time_stamps"]) == 512
    assert "footer" not in eeg or not eeg["footer"]  # it never closed
    np.testing.assert_allclose(eeg["time_series"][-1], [7, 7])
    from bci.datasets import load_recording

    raw = load_recording(path)
    assert raw.n_times == 512 and list(raw.annotations.description) == ["17.0Hz"]


def test_write_error_is_reported_and_session_goes_on(tmp_path, rng):
    errors = []
    rec = SessionRecorder(tmp_path / "e.xdf", ch_names=CH, sfreq=256.0, flush_s=0.0,
                          on_error=errors.append).start()
    rec.push_eeg(rng.standard_normal((10, 3)), np.arange(10) / 256)
    deadline = time.monotonic() + 30
    while rec.counts["eeg"] < 10 and time.monotonic() < deadline:
        time.sleep(0.01)

    def full(data):
        raise OSError(28, "No space left on device")

    rec._writer._f.write = full  # the disk fills up
    for k in range(5):
        rec.push_eeg(rng.standard_normal((10, 3)), (10 + k * 10 + np.arange(10)) / 256)
        rec.push_marker(1.0, "rest")
    time.sleep(0.3)
    rec.close()  # does not raise
    assert not rec.ok and len(errors) == 1
    assert "No space left" in str(rec.error)
    assert rec.counts["eeg"] == 10


def test_unwritable_path_is_reported(tmp_path):
    errors = []
    rec = SessionRecorder(tmp_path / "missing-dir" / "x.xdf", ch_names=CH, sfreq=256.0,
                          on_error=errors.append).start()
    rec.push_marker(1.0, "rest")
    rec.close()
    assert isinstance(rec.error, FileNotFoundError) and errors == [rec.error]


def test_recorder_arguments(tmp_path):
    with pytest.raises(ValueError, match="Give either 'stream' or both 'ch_names' and 'sfreq'"):
        SessionRecorder("x.xdf")
    rec = SessionRecorder(tmp_path / "a.xdf", ch_names=CH, sfreq=256.0).start()
    with pytest.raises(ValueError, match=r"shape \(n_samples, 3\)"):
        rec.push_eeg(np.zeros((3, 10)), np.zeros(10))
    rec.close()
    with pytest.raises(ValueError, match="Unsupported XDF channel format"):
        w = XDFWriter(os.devnull)
        w.add_stream(1, "<info/>", "float16", 1)


def test_records_a_live_stream(tmp_path, unique_name):
    from bci.acquisition import EEGStream
    from bci.sources import SyntheticEEG, synthesize_raw

    path = tmp_path / "live.xdf"
    src = SyntheticEEG("rest:1,13:1", name=unique_name, speed=4.0, seed=3).open()
    with EEGStream(unique_name) as eeg:
        with SessionRecorder(path, stream=eeg) as rec:
            src.start()
            assert src.wait(60)
            t0 = time.monotonic()
            while eeg.n_samples_received < 512 and time.monotonic() - t0 < 30:
                time.sleep(0.01)
            for t, label in src.markers_sent:
                rec.push_marker(t, label)
            time.sleep(0.3)
    src.close()
    streams, _ = _streams(path)
    eeg_s = streams[unique_name]
    assert len(eeg_s["time_stamps"]) == 512
    offline = synthesize_raw("rest:1,13:1", seed=3).get_data()
    np.testing.assert_allclose(np.asarray(eeg_s["time_series"]).T * 1e-6, offline, rtol=1e-4,
                               atol=1e-10)
    assert [m[0] for m in streams[f"{unique_name}-markers"]["time_series"]] == ["rest", "13.0Hz"]
