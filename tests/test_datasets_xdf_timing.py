"""Cues of an XDF recording land on the EEG sample they were stamped at.

A session replayed or simulated faster than real time is stamped at sfreq*speed on the LSL
clock; a cue must still fall on its sample, not at ``ts - first_ts`` seconds of data.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

from bci.datasets import cue_table, load_recording
from bci.recording import SessionRecorder

SFREQ = 256.0
CH = ["Oz", "O1", "O2"]


@pytest.mark.parametrize("speed", [1.0, 4.0])
def test_cues_on_their_samples_at_any_speed(tmp_path, speed, caplog):
    path = tmp_path / "fast.xdf"
    n = int(12 * SFREQ)
    t0 = 1000.0
    stamps = t0 + np.arange(n) / (SFREQ * speed)
    data = np.random.default_rng(0).standard_normal((n, len(CH))) * 1e-5
    cue_samples = {"rest": 0, "13.0Hz": 1024, "17.0Hz": 2048}
    rec = SessionRecorder(path, ch_names=CH, sfreq=SFREQ).start()
    for i in range(0, n, 64):
        rec.push_eeg(data[i : i + 64], stamps[i : i + 64])
    for label, idx in cue_samples.items():
        rec.push_marker(float(stamps[idx]), label)
    rec.push_decision({"timestamp": float(stamps[100]), "outcome": None})
    rec.close()

    bci_logger = logging.getLogger("bci")
    bci_logger.addHandler(caplog.handler)  # the package logger does not propagate
    try:
        with caplog.at_level(logging.INFO, logger="bci"):
            raw = load_recording(path)
    finally:
        bci_logger.removeHandler(caplog.handler)
    # pyxdf remarks that the stamps run at sfreq*speed: a remark on an intact file, never
    # "truncated or damaged" (it was, before pyxdf's errors and warnings were told apart)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    if speed != 1.0:
        assert "fast.xdf: pyxdf: Stream 1: Calculated effective sampling rate" in caplog.text
    onsets, labels = cue_table(raw)
    got = dict(zip(labels, onsets))
    assert set(got) == set(cue_samples)
    for label, idx in cue_samples.items():
        assert got[label] == pytest.approx(idx / SFREQ, abs=1.5 / SFREQ), label
    # decisions are not cues and do not clutter the annotations
    assert not any(str(d).startswith("{") for d in raw.annotations.description)
