"""bci.datasets on the real Kalunga2016 recordings."""

from __future__ import annotations

import logging

import mne
import numpy as np
import pytest
from scipy.signal import welch

from bci.datasets import (
    cue_freqs,
    cue_table,
    epoch,
    find_recordings,
    load_recording,
    subject_of,
    to_epochs,
)

pytestmark = pytest.mark.realdata

DUP = "record-[2012.07.11-15.33.08]_raw.fif"


@pytest.fixture(scope="module")
def found(kalunga_root):
    return find_recordings(kalunga_root)


@pytest.fixture(scope="module")
def all_raws(found):
    return {s: [load_recording(p) for p in paths] for s, paths in found.items()}


def test_find_recordings_groups_subjects_and_drops_duplicate(kalunga_root, found, caplog):
    assert list(found) == [f"subject{i:02d}" for i in range(1, 9)]
    assert all(len(v) >= 2 for v in found.values())
    assert all(v == sorted(v) for v in found.values())
    # subject07's copy of subject03's session is dropped, subject03 keeps it.
    assert DUP not in [p.name for p in found["subject07"]]
    assert DUP in [p.name for p in found["subject03"]]
    kept = find_recordings(kalunga_root, keep_duplicates=True)
    assert DUP in [p.name for p in kept["subject07"]]
    assert sum(map(len, kept.values())) == sum(map(len, found.values())) + 1
    # the note is logged
    bci_logger = logging.getLogger("bci")
    bci_logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger="bci"):
            find_recordings([kalunga_root / "subject03", kalunga_root / "subject07"])
    finally:
        bci_logger.removeHandler(caplog.handler)
    assert any(
        "identical" in r.getMessage() and "subject07" in r.getMessage() for r in caplog.records
    )


def test_find_recordings_single_file_and_events_file(kalunga_session):
    eve = kalunga_session.with_name(kalunga_session.name.replace("_raw.fif", "-eve.fif"))
    a = find_recordings(kalunga_session)
    b = find_recordings([eve])
    assert a == b == {"subject01": [kalunga_session]}


def test_all_sessions_load_with_labelled_cues(all_raws):
    n = 0
    for subject, raws in all_raws.items():
        for raw in raws:
            n += 1
            assert isinstance(raw, mne.io.BaseRaw) and raw.preload
            assert raw.info["sfreq"] == 256.0 and len(raw.ch_names) == 8
            onsets, labels = cue_table(raw)
            assert len(onsets) == 32
            counts = {lab: int((labels == lab).sum()) for lab in set(labels)}
            assert counts == {"rest": 8, "13.0Hz": 8, "17.0Hz": 8, "21.0Hz": 8}
            assert list(labels[:8]) == ["rest"] * 8  # the documented rest-first order
            assert subject_of(raw) == subject
            assert cue_freqs(raw) == [13.0, 17.0, 21.0]
            # durations last until the next cue; the last one gets the usual spacing
            ann = raw.annotations
            gaps = np.diff(onsets)
            np.testing.assert_allclose(ann.duration[:-1], gaps, atol=1e-9)
            end = raw.n_times / raw.info["sfreq"]
            assert ann.duration[-1] == pytest.approx(min(np.median(gaps), end - onsets[-1]))
    assert n == 17  # 18 sessions minus the duplicate


def test_codes_match_spectra(all_raws):
    """Class-average spectra peak at the frequency each label names (21.0Hz at 21 Hz)."""
    X, y = [], []
    for raws in all_raws.values():
        for raw in raws:
            Xi, yi, _ = epoch(raw, tmin=1.5, window_s=3.0)
            X.append(Xi)
            y.append(yi)
    X, y = np.concatenate(X), np.concatenate(y)
    f, P = welch(X, fs=256.0, nperseg=768, axis=-1)
    P = P.mean(axis=1)
    grand = P.mean(axis=0)
    band = (f >= 12) & (f <= 23)
    for label, freq in (("13.0Hz", 13.0), ("17.0Hz", 17.0), ("21.0Hz", 21.0)):
        rel = P[y == label].mean(axis=0) / grand
        assert f[band][np.argmax(rel[band])] == pytest.approx(freq, abs=0.34)
    # raw (not normalised) class-average PSD of the 21 Hz trials peaks at 21 Hz above 15 Hz
    hi = (f >= 15) & (f <= 23)
    assert f[hi][np.argmax(P[y == "21.0Hz"].mean(axis=0)[hi])] == pytest.approx(21.0, abs=0.34)


def test_path_forms_give_the_same_recording(kalunga_session):
    eve = kalunga_session.with_name(kalunga_session.name.replace("_raw.fif", "-eve.fif"))
    a = load_recording(kalunga_session)
    b = load_recording(eve)
    c = load_recording((eve, kalunga_session))
    d = load_recording(str(kalunga_session))
    for other in (b, c, d):
        np.testing.assert_array_equal(a.get_data(), other.get_data())
        assert list(a.annotations.description) == list(other.annotations.description)
    e = load_recording(kalunga_session, subject="S-01")
    assert subject_of(e) == "S-01"


def test_epoch_shapes_labels_and_channels(kalunga_session):
    raw = load_recording(kalunga_session)
    for window in (0.5, 1.0, 2.0, 1.3):
        X, y, onsets = epoch(raw, window_s=window)
        assert X.shape == (32, 8, round(window * 256))
    X, y, onsets = epoch(raw, window_s=1.0, channels=["O2", "Oz"], classes=[13, "17.0Hz", "21"])
    assert X.shape == (24, 2, 256)
    assert set(y) == {"13.0Hz", "17.0Hz", "21.0Hz"}
    cue_on, _ = cue_table(raw)
    np.testing.assert_allclose(onsets, cue_on[8:] + 2.0)
    data = raw.get_data(picks=["O2", "Oz"])
    start = round(onsets[0] * 256)
    np.testing.assert_array_equal(X[0], data[:, start : start + 256])


def test_epoch_offsets_return_trial_index(kalunga_session):
    raw = load_recording(kalunga_session)
    X, y, onsets, trials = epoch(raw, window_s=1.0, offsets=[1.0, 3.0])
    assert X.shape == (96, 8, 256)
    np.testing.assert_array_equal(np.bincount(trials), np.full(32, 3))
    X0, y0, on0 = epoch(raw, window_s=1.0)
    first = np.flatnonzero(np.isclose(onsets - on0[trials], 0.0))
    np.testing.assert_array_equal(X[first], X0)
    assert all(y[trials == t][0] == y0[t] for t in range(32))


def test_epoch_prefilter_is_whole_recording_zero_phase(kalunga_session):
    raw = load_recording(kalunga_session)
    Xr, _, _ = epoch(raw, window_s=1.0)
    Xf, _, _ = epoch(raw, window_s=1.0, prefilter=(10.0, 42.0))
    assert Xf.shape == Xr.shape
    assert not np.allclose(Xf, Xr)
    # the band-pass removed the slow drift and the broadband offset
    assert np.abs(Xf.mean(axis=-1)).mean() < 0.1 * np.abs(Xr.mean(axis=-1)).mean()
    # the recording itself is untouched
    X2, _, _ = epoch(raw, window_s=1.0)
    np.testing.assert_array_equal(X2, Xr)


def test_to_epochs_matches_epoch(kalunga_session):
    raw = load_recording(kalunga_session)
    ep = to_epochs(raw, window_s=1.0, classes=["13.0Hz", "17.0Hz", "21.0Hz"])
    X, y, _ = epoch(raw, window_s=1.0, classes=["13.0Hz", "17.0Hz", "21.0Hz"])
    assert isinstance(ep, mne.Epochs)
    assert ep.get_data().shape == X.shape
    np.testing.assert_allclose(ep.get_data(), X)
    inv = {v: k for k, v in ep.event_id.items()}
    assert [inv[c] for c in ep.events[:, 2]] == list(y)
