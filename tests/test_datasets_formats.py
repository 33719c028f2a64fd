"""bci.datasets on generic MNE-readable files (FIF with annotations or a stim channel,
BrainVision written by hand) and every user-facing error."""

from __future__ import annotations

import shutil

import mne
import numpy as np
import pytest

from bci.datasets import cue_table, epoch, find_recordings, load_recording
from bci.errors import DatasetError
from bci.evaluation import class_sets

SFREQ = 256.0
CH = ["Oz", "O1", "O2", "POz"]


def _raw(rng, seconds=40.0, sfreq=SFREQ, ch=CH, stim=None):
    n = int(seconds * sfreq)
    data = rng.standard_normal((len(ch), n)) * 1e-5
    names, types = list(ch), ["eeg"] * len(ch)
    if stim is not None:
        data = np.vstack([data, stim[None, :n]])
        names.append("STI 014")
        types.append("stim")
    return mne.io.RawArray(data, mne.create_info(names, sfreq, types), verbose="error")


def test_fif_with_annotations(tmp_path, rng):
    raw = _raw(rng)
    raw.set_annotations(
        mne.Annotations([2, 8, 14, 20, 30], [1, 1, 1, 1, 0.5],
                        ["rest", "13Hz", "17.0 Hz", "21", "BAD_blink"])
    )  # fmt: skip
    path = tmp_path / "session_raw.fif"
    raw.save(path, verbose="error")
    out = load_recording(path)
    onsets, labels = cue_table(out)
    np.testing.assert_allclose(onsets, [2, 8, 14, 20])
    assert list(labels) == ["rest", "13.0Hz", "17.0Hz", "21.0Hz"]
    # durations until the next cue; the other annotation is kept unchanged
    ann = out.annotations
    assert "BAD_blink" in list(ann.description)
    cue = [i for i, d in enumerate(ann.description) if d != "BAD_blink"]
    np.testing.assert_allclose(ann.duration[cue], [6, 6, 6, 6])
    X, y, _ = epoch(out, tmin=1.0, window_s=2.0)
    assert X.shape == (4, 4, 512)
    np.testing.assert_allclose(X[1], raw.get_data()[:, 9 * 256 : 11 * 256])


def test_fif_with_cue_map(tmp_path, rng):
    raw = _raw(rng)
    raw.set_annotations(mne.Annotations([2, 8, 14], [0, 0, 0], ["look_left", "look_right", "eyes"]))
    path = tmp_path / "mapped_raw.fif"
    raw.save(path, verbose="error")
    out = load_recording(path, cue_map={"look_left": 13, "look_right": "17.0Hz", "eyes": "rest"})
    assert list(cue_table(out)[1]) == ["13.0Hz", "17.0Hz", "rest"]


def test_fif_with_stim_channel_and_event_id(tmp_path, rng):
    stim = np.zeros(int(40 * SFREQ))
    for t, code in ((3, 1), (9, 2), (15, 4), (21, 3), (27, 7)):
        stim[int(t * SFREQ) : int(t * SFREQ) + 5] = code
    raw = _raw(rng, stim=stim)
    path = tmp_path / "stim_raw.fif"
    raw.save(path, verbose="error")
    out = load_recording(path, event_id={1: "rest", 2: 13, 3: 21, 4: "17"})
    onsets, labels = cue_table(out)
    np.testing.assert_allclose(onsets, [3, 9, 15, 21])
    assert list(labels) == ["rest", "13.0Hz", "17.0Hz", "21.0Hz"]
    X, _, _ = epoch(out, window_s=1.0)
    assert X.shape == (4, 4, 256)  # the stim channel is not an EEG channel


def _write_brainvision(folder, data_uv, sfreq, ch, markers):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rec.eeg").write_bytes(np.asarray(data_uv.T, "<f4").tobytes())
    chans = "\n".join(f"Ch{i + 1}={c},,1,µV" for i, c in enumerate(ch))
    (folder / "rec.vhdr").write_text(
        "Brain Vision Data Exchange Header File Version 1.0\n\n[Common Infos]\nCodepage=UTF-8\n"
        "DataFile=rec.eeg\nMarkerFile=rec.vmrk\nDataFormat=BINARY\nDataOrientation=MULTIPLEXED\n"
        f"NumberOfChannels={len(ch)}\nSamplingInterval={1e6 / sfreq:g}\n\n[Binary Infos]\n"
        f"BinaryFormat=IEEE_FLOAT_32\n\n[Channel Infos]\n{chans}\n",
        encoding="utf-8",
    )
    mk = ["Mk1=New Segment,,1,1,0"] + [
        f"Mk{i + 2}={kind},{desc},{int(t * sfreq) + 1},1,0"
        for i, (kind, desc, t) in enumerate(markers)
    ]
    (folder / "rec.vmrk").write_text(
        "Brain Vision Data Exchange Marker File, Version 1.0\n\n[Common Infos]\nCodepage=UTF-8\n"
        "DataFile=rec.eeg\n\n[Marker Infos]\n" + "\n".join(mk) + "\n",
        encoding="utf-8",
    )
    return folder / "rec.vhdr"


def test_brainvision_comments_and_stimulus_codes(tmp_path, rng):
    data = rng.standard_normal((3, int(30 * SFREQ))) * 10.0
    path = _write_brainvision(
        tmp_path / "sub-07", data, SFREQ, ["Oz", "O1", "O2"],
        [("Comment", "rest", 2.0), ("Comment", "13Hz", 8.0), ("Stimulus", "S  2", 14.0),
         ("Comment", "21Hz", 20.0)],
    )  # fmt: skip
    raw = load_recording(path)
    onsets, labels = cue_table(raw)
    np.testing.assert_allclose(onsets, [2, 8, 20])
    assert list(labels) == ["rest", "13.0Hz", "21.0Hz"]
    assert raw.info["subject_info"]["his_id"] == "sub-07"
    np.testing.assert_allclose(raw.get_data(), data * 1e-6, rtol=1e-6)  # µV -> V
    coded = load_recording(path, event_id={"Stimulus/S  2": 17, "Comment/rest": "rest"})
    assert list(cue_table(coded)[1]) == ["rest", "13.0Hz", "17.0Hz", "21.0Hz"]
    (tmp_path / "sub-07" / "rec-epo.fif").write_bytes(b"not a recording")
    found = find_recordings(tmp_path)
    assert found == {"sub-07": [path]}


# ------------------------------------------------------------------------------- errors
def test_missing_file(tmp_path):
    with pytest.raises(
        DatasetError, match=r"Recording not found: .*nope_raw\.fif\. Check the path"
    ):
        load_recording(tmp_path / "nope_raw.fif")
    with pytest.raises(DatasetError, match=r"Recording or folder not found"):
        find_recordings(tmp_path / "absent")


def test_empty_and_truncated_files(tmp_path, kalunga_session):
    empty = tmp_path / "empty.edf"
    empty.touch()
    with pytest.raises(DatasetError, match=r"the file is empty \(truncated or corrupted\)"):
        load_recording(empty)
    folder = tmp_path / "subject01"
    folder.mkdir()
    raw_copy = folder / kalunga_session.name
    blob = kalunga_session.read_bytes()
    raw_copy.write_bytes(blob[: len(blob) // 2])
    eve = kalunga_session.with_name(kalunga_session.name.replace("_raw.fif", "-eve.fif"))
    shutil.copy(eve, folder / eve.name)
    with pytest.raises(DatasetError, match=r"looks truncated or corrupted .*Re-export or re-copy"):
        load_recording(raw_copy)
    junk = tmp_path / "junk.xdf"
    junk.write_bytes(b"XDF:" + bytes(range(256)) * 4)
    with pytest.raises(DatasetError, match=r"junk\.xdf: the file looks truncated or corrupted"):
        load_recording(junk)


def test_unknown_format_lists_supported(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(
        DatasetError, match=r"Unknown recording format: notes\.txt\. Supported .*\.edf.*\.xdf"
    ):
        load_recording(path)
    with pytest.raises(DatasetError, match=r"Unknown recording format: notes\.txt"):
        find_recordings(path)
    with pytest.raises(DatasetError, match=r"No recordings found under"):
        find_recordings(tmp_path)


def test_folder_and_orphan_events_file(tmp_path, kalunga_session):
    with pytest.raises(DatasetError, match=r"is a folder; load_recording takes one file"):
        load_recording(tmp_path)
    eve = kalunga_session.with_name(kalunga_session.name.replace("_raw.fif", "-eve.fif"))
    orphan = tmp_path / eve.name
    shutil.copy(eve, orphan)
    with pytest.raises(DatasetError, match=r"is an events file but its recording .* is missing"):
        load_recording(orphan)


def test_no_cue_annotations_names_the_present_ones(tmp_path, rng):
    raw = _raw(rng)
    raw.set_annotations(mne.Annotations([1, 5], [0, 0], ["BAD_blink", "trial_start"]))
    path = tmp_path / "nocue_raw.fif"
    raw.save(path, verbose="error")
    with pytest.raises(
        DatasetError,
        match=r"no cue annotations found \(annotations present: 'BAD_blink', 'trial_start'\)",
    ):
        load_recording(path)
    bare = tmp_path / "bare_raw.fif"
    _raw(rng).save(bare, verbose="error")
    with pytest.raises(DatasetError, match=r"annotations present: none"):
        load_recording(bare)


def test_missing_channels_suggest(kalunga_session):
    raw = load_recording(kalunga_session)
    with pytest.raises(
        DatasetError,
        match=r"Channels missing from the recording: O3, Cz\. Available: Oz, O1, O2, .* Did you mean '\w+'\? Pass channel names that exist",
    ):
        epoch(raw, channels=["Oz", "O3", "Cz"])


def test_sampling_rate_too_low(tmp_path, rng):
    raw = _raw(rng, sfreq=40.0)
    raw.set_annotations(mne.Annotations([2, 8], [0, 0], ["13Hz", "21Hz"]))
    path = tmp_path / "slow_raw.fif"
    raw.save(path, verbose="error")
    with pytest.raises(
        DatasetError, match=r"Sampling rate 40 Hz is too low for stimulus frequencies up to 21 Hz"
    ):
        load_recording(path)
    raw128 = _raw(rng, sfreq=128.0)
    raw128.set_annotations(mne.Annotations([2, 8], [0, 0], ["13Hz", "21Hz"]))
    p128 = tmp_path / "r128_raw.fif"
    raw128.save(p128, verbose="error")
    assert load_recording(p128, n_harmonics=2).info["sfreq"] == 128.0
    with pytest.raises(
        DatasetError, match=r"with 4 harmonic\(s\): 84 Hz must be below the Nyquist frequency 64 Hz"
    ):
        load_recording(p128, n_harmonics=4)


def test_unknown_classes(kalunga_session):
    raw = load_recording(kalunga_session)
    with pytest.raises(
        DatasetError, match=r"Classes not in the recording: 15\.0Hz\. Present: 13\.0Hz"
    ):
        epoch(raw, classes=[13, 15])
    with pytest.raises(DatasetError, match=r"Cannot evaluate 5 classes: .* available are 3, 4"):
        class_sets(["13.0Hz", "17.0Hz", "21.0Hz", "rest"], [5])
