"""bci.datasets on LSL XDF recordings written by a small, spec-following XDF writer."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from bci.datasets import cue_table, epoch, find_recordings, load_recording
from bci.errors import DatasetError
from bci.recording.xdf import _chunk, _varlen

SFREQ = 256.0
CH = ["Oz", "O1", "O2", "POz"]


# ------------------------------------------------- XDF 1.0 files with hand-made chunks
# Chunk framing from the recorder (its own tests load its files with pyxdf); what goes in the
# chunks is written out here, so each test controls clocks, units, types and channel labels.
def _stream_header(sid, name, typ, n_ch, srate, fmt, channels=None):
    desc = ""
    if channels:
        desc = "<desc><channels>" + "".join(
            f"<channel><label>{c}</label><unit>{u}</unit><type>{t}</type></channel>"
            for c, u, t in channels
        ) + "</channels></desc>"  # fmt: skip
    xml = (
        f'<?xml version="1.0"?><info><name>{name}</name><type>{typ}</type>'
        f"<channel_count>{n_ch}</channel_count><nominal_srate>{srate}</nominal_srate>"
        f"<channel_format>{fmt}</channel_format><source_id>{name}-src</source_id>"
        f"<created_at>100.0</created_at>{desc}</info>"
    )
    return _chunk(2, struct.pack("<I", sid) + xml.encode())


def _numeric_samples(sid, stamps, values):
    body = b"".join(
        struct.pack("<Bd", 8, t) + np.asarray(v, "<f4").tobytes() for t, v in zip(stamps, values)
    )
    return _chunk(3, struct.pack("<I", sid) + _varlen(len(stamps)) + body)


def _string_samples(sid, stamps, strings):
    body = b""
    for t, s in zip(stamps, strings):
        raw = s.encode()
        body += struct.pack("<Bd", 8, t) + _varlen(len(raw)) + raw
    return _chunk(3, struct.pack("<I", sid) + _varlen(len(stamps)) + body)


def _clock_offset(sid, collected, offset):
    return _chunk(4, struct.pack("<Idd", sid, collected, offset))


def _footer(sid, first, last, count, offsets):
    offs = "".join(f"<offset><time>{t}</time><value>{v}</value></offset>" for t, v in offsets)
    xml = (
        f'<?xml version="1.0"?><info><first_timestamp>{first}</first_timestamp>'
        f"<last_timestamp>{last}</last_timestamp><sample_count>{count}</sample_count>"
        f"<clock_offsets>{offs}</clock_offsets></info>"
    )
    return _chunk(6, struct.pack("<I", sid) + xml.encode())


def write_xdf(path: Path, eeg: np.ndarray, t0: float, markers, *, marker_clock_offset=0.0,
              unit="microvolts", eeg_type="EEG", labels=True) -> None:  # fmt: skip
    """EEG (n_samples, n_channels) in ``unit`` from ``t0``; markers [(true_time, str)].

    The marker stream runs on another clock: its stamps are ``true_time - offset`` and its
    clock-offset chunks say ``offset``, so only clock synchronisation restores true times.
    """
    n = len(eeg)
    stamps = t0 + np.arange(n) / SFREQ
    chans = [(c, unit, "EEG") for c in CH] if labels else None
    out = b"XDF:" + _chunk(1, b'<?xml version="1.0"?><info><version>1.0</version></info>')
    out += _stream_header(1, "TestEEG", eeg_type, eeg.shape[1], SFREQ, "float32", chans)
    out += _stream_header(2, "TestMarkers", "Markers", 1, 0, "string")
    half = n // 2
    out += _numeric_samples(1, stamps[:half], eeg[:half])
    mt = [t - marker_clock_offset for t, _ in markers]
    out += _string_samples(2, mt, [s for _, s in markers])
    out += _numeric_samples(1, stamps[half:], eeg[half:])
    offsets = [(t0 + k * 5.0, marker_clock_offset) for k in range(int(n / SFREQ / 5) + 1)]
    for t, v in offsets:
        out += _clock_offset(1, t, 0.0)
        out += _clock_offset(2, t - v, v)
    out += _footer(1, stamps[0], stamps[-1], n, [(t, 0.0) for t, _ in offsets])
    out += _footer(2, mt[0], mt[-1], len(mt), [(t - v, v) for t, v in offsets])
    path.write_bytes(out)


def _session(rng, seconds=40.0):
    n = int(seconds * SFREQ)
    t = np.arange(n) / SFREQ
    eeg = rng.standard_normal((n, len(CH))) * 5.0  # microvolts
    schedule = [(4.0, "rest"), (10.0, "13.0Hz"), (16.0, "17.0Hz"), (22.0, "21.0Hz"),
                (28.0, "13.0Hz")]  # fmt: skip
    for onset, lab in schedule:
        if lab != "rest":
            f = float(lab[:-2])
            seg = (t >= onset) & (t < onset + 6.0)
            eeg[seg] += 20.0 * np.sin(2 * np.pi * f * t[seg])[:, None]
    return eeg, schedule


def test_xdf_eeg_and_markers_aligned(tmp_path, rng):
    eeg, schedule = _session(rng)
    t0 = 1000.0
    markers = [(t0 + on, lab) for on, lab in schedule] + [(t0 + 12.5, "trial_start")]
    markers.sort()
    folder = tmp_path / "subject05"
    folder.mkdir()
    path = folder / "session.xdf"
    write_xdf(path, eeg, t0, markers, marker_clock_offset=0.25)
    raw = load_recording(path)
    assert raw.ch_names == CH
    assert raw.info["sfreq"] == SFREQ
    assert raw.info["subject_info"]["his_id"] == "subject05"
    np.testing.assert_allclose(raw.get_data(), eeg.T.astype("f4") * 1e-6, rtol=1e-5)
    onsets, labels = cue_table(raw)
    assert list(labels) == [lab for _, lab in schedule]
    # clock offsets applied: cues land on the EEG time base within one sample
    np.testing.assert_allclose(onsets, [on for on, _ in schedule], atol=1.0 / SFREQ)
    # a marker that is not a label stays as an annotation but is not a cue
    assert "trial_start" in list(raw.annotations.description)
    X, y, _ = epoch(raw, tmin=1.0, window_s=2.0, classes=["13.0Hz", "17.0Hz", "21.0Hz"])
    assert X.shape == (4, 4, 512)
    spec = np.abs(np.fft.rfft(X, axis=-1)).mean(axis=1)
    freqs = np.fft.rfftfreq(512, 1 / SFREQ)
    assert [freqs[np.argmax(s[20:]) + 20] for s in spec] == [13.0, 17.0, 21.0, 13.0]
    assert find_recordings(tmp_path) == {"subject05": [path]}


def test_xdf_units_and_missing_labels(tmp_path, rng):
    eeg, schedule = _session(rng, 30.0)
    markers = [(on, lab) for on, lab in schedule if on < 25]
    p_mv = tmp_path / "mv.xdf"
    write_xdf(p_mv, eeg, 0.0, markers, unit="millivolts")
    np.testing.assert_allclose(
        load_recording(p_mv).get_data(), eeg.T.astype("f4") * 1e-3, rtol=1e-5
    )
    p_nolabels = tmp_path / "nolabels.xdf"
    write_xdf(p_nolabels, eeg, 0.0, markers, labels=False)
    raw = load_recording(p_nolabels)
    assert raw.ch_names == ["EEG001", "EEG002", "EEG003", "EEG004"]
    np.testing.assert_allclose(raw.get_data(), eeg.T.astype("f4") * 1e-6, rtol=1e-5)


def test_xdf_fiff_unit_codes_and_unitless_volts_refused(tmp_path, rng):
    eeg, schedule = _session(rng, 30.0)  # microvolts
    markers = [(on, lab) for on, lab in schedule if on < 25]
    p_code = tmp_path / "code.xdf"  # mne-lsl's FIFF unit code: "0" is volts
    write_xdf(p_code, eeg * 1e-6, 0.0, markers, unit="0")
    np.testing.assert_allclose(load_recording(p_code).get_data(),
                               (eeg * 1e-6).T.astype("f4"), rtol=1e-5)
    p_bare = tmp_path / "bare.xdf"  # volts, no unit: microvolts would be 10^6 off
    write_xdf(p_bare, eeg * 1e-6, 0.0, markers, unit="")
    with pytest.raises(DatasetError, match=r"declare no voltage unit and their median "
                       r"standard deviation is [0-9.e-]+ µV if they are microvolts.*look like "
                       r"volts"):
        load_recording(p_bare)


def test_xdf_stream_choice_and_errors(tmp_path, rng):
    eeg, schedule = _session(rng, 30.0)
    markers = [(on, lab) for on, lab in schedule if on < 25]
    path = tmp_path / "exg.xdf"
    write_xdf(path, eeg, 0.0, markers, eeg_type="ExG")
    with pytest.raises(
        DatasetError,
        match=r"no stream of type 'EEG'; streams in the file: 'TestEEG' \(type 'ExG'\)",
    ):
        load_recording(path)
    assert load_recording(path, stream="TestEEG").ch_names == CH
    with pytest.raises(DatasetError, match=r"no EEG stream named 'Other'; streams in the file"):
        load_recording(path, stream="Other")
    nocue = tmp_path / "nocue.xdf"
    write_xdf(nocue, eeg, 0.0, [(1.0, "start"), (20.0, "stop")])
    with pytest.raises(
        DatasetError, match=r"no cue annotations found \(annotations present: 'start', 'stop'\)"
    ):
        load_recording(nocue)
    cut = tmp_path / "cut.xdf"
    cut.write_bytes(path.read_bytes()[:300])
    with pytest.raises(DatasetError, match=r"cut.xdf: the file is truncated \(it ends at byte "
                                           r"300, \d+ bytes before the end of its last chunk"):
        load_recording(cut)


def test_xdf_cut_inside_a_chunk_is_refused_unless_salvaged(tmp_path, rng, caplog):
    """pyxdf skips a damaged chunk and reads on; the file then loaded as if whole, a warning
    aside. Refused now, saying where it ends; ``salvage=True`` keeps the old reading."""
    import logging

    eeg, schedule = _session(rng, 30.0)
    path = tmp_path / "whole.xdf"
    write_xdf(path, eeg, 0.0, [(on, lab) for on, lab in schedule if on < 25])
    blob = path.read_bytes()
    whole = load_recording(path)
    cut = tmp_path / "cut.xdf"
    # inside the second of the two EEG chunks, which hold nearly all of the file (the clock
    # offsets and footers after it are lost too)
    at = len(blob) * 3 // 4
    cut.write_bytes(blob[:at])
    with pytest.raises(DatasetError, match=rf"Could not read .*cut.xdf: the file is truncated "
                                           rf"\(it ends at byte {at:,}, [\d,]+ bytes before "
                                           r"the end of its last chunk\)\. Re-copy it; if the "
                                           r"recorder stopped while writing, the chunks before "
                                           r"the cut load with bci.datasets.load_recording\(path, "
                                           r"salvage=True\)\.$"):
        load_recording(cut)
    bci_logger = logging.getLogger("bci")
    bci_logger.addHandler(caplog.handler)  # the package logger does not propagate
    try:
        with caplog.at_level(logging.WARNING, logger="bci"):
            part = load_recording(cut, salvage=True)
    finally:
        bci_logger.removeHandler(caplog.handler)
    assert "cut.xdf: the file is truncated or damaged (pyxdf: found likely XDF file " \
           "corruption" in caplog.text
    assert 0 < part.n_times < whole.n_times  # the first EEG chunk, not the cut one
    np.testing.assert_allclose(part.get_data(), whole.get_data()[:, :part.n_times])
