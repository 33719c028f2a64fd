"""MOABB: our decoders as pipelines under MOABB's SSVEP paradigm and its evaluations, and
``ssvep-exo evaluate --moabb`` on a dataset that is on this machine (never downloading).

MOABB's FakeDataset (SSVEP paradigm) generates its data in memory; ``moabb_fake`` adds a
variant whose trials carry their frequency, so scores say whether labels line up.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
import warnings
from pathlib import Path

import mne
import numpy as np
import pytest

moabb = pytest.importorskip("moabb")

from moabb.evaluations import WithinSessionEvaluation  # noqa: E402
from moabb.paradigms import SSVEP  # noqa: E402
from moabb_fake import EVENTS, SSVEPFakeDataset, fake_kwargs  # noqa: E402

from bci.datasets import cue_table  # noqa: E402
from bci.datasets.moabb import load_moabb, no_downloads  # noqa: E402
from bci.decoders.moabb import MOABBDecoder, moabb_pipelines  # noqa: E402
from bci.errors import DatasetError  # noqa: E402

TESTS = Path(__file__).resolve().parent
SMALL = {**fake_kwargs(1), "n_events": 24, "duration": 76}


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _evaluate(dataset, pipelines, tmp_path, **kw):
    ev = WithinSessionEvaluation(paradigm=SSVEP(), datasets=[dataset], overwrite=True,
                                 hdf5_path=str(tmp_path / "moabb"), **kw)
    res = ev.process(pipelines)
    return {(r.pipeline, str(r.session)): r.score for r in res.itertuples()}


def test_within_session_evaluation_scores_our_pipelines(tmp_path):
    from moabb.datasets.fake import FakeDataset

    pipes = moabb_pipelines(["cca", "fbcca"])
    noise = _evaluate(FakeDataset(**SMALL), pipes, tmp_path / "n", return_epochs=True,
                      mne_labels=True)
    ssvep = _evaluate(SSVEPFakeDataset(**SMALL), pipes, tmp_path, return_epochs=True,
                      mne_labels=True)
    for scores in (ssvep, noise):
        assert set(scores) == {(p, s) for p in pipes for s in ("0", "1")}
        assert all(0.0 <= v <= 1.0 for v in scores.values())
    # the labels line up with the frequencies: far above the 4-class chance (25 %) ...
    assert min(ssvep[("ssvep-exo fbcca", s)] for s in ("0", "1")) >= 0.9
    # ... and on MOABB's own noise there is nothing to find
    assert max(noise.values()) <= 0.75
    # MOABB's defaults (arrays, labels coded 0..3): sfreq and the event names make up for it
    ds = SSVEPFakeDataset(**SMALL)
    arrays = _evaluate(ds, moabb_pipelines(["cca"], sfreq=256.0,
                                           events=SSVEP().used_events(ds)), tmp_path / "a")
    assert arrays == pytest.approx({k: v for k, v in ssvep.items() if k[0] == "ssvep-exo cca"})


def _epochs(labels_per_trial, event_id, sfreq=256.0, seed=0):
    """Epochs of 2 s with an SSVEP at each trial's frequency (None: none)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(2 * sfreq)) / sfreq
    X, events = [], []
    for i, (name, freq) in enumerate(labels_per_trial):
        x = rng.standard_normal((3, len(t))) * 1e-5
        if freq is not None:
            x += 1e-5 * np.sin(2 * np.pi * freq * t + rng.uniform(0, 6.28))
        X.append(x)
        events.append([i * 1000, 0, event_id[name]])
    info = mne.create_info(["O1", "Oz", "O2"], sfreq, "eeg")
    return mne.EpochsArray(np.array(X), info, np.array(events), event_id=event_id,
                           verbose="error")


def test_label_conventions():
    trials = [("13", 13.0), ("17", 17.0), ("rest", None)] * 8
    names = np.array([n for n, _ in trials])
    ep = _epochs(trials, {"13": 1, "17": 2, "rest": 3})
    # MOABB's event names (mne_labels=True): predictions in the same names
    d = MOABBDecoder("fbcca").fit(ep, names)
    assert list(d.classes_) == ["13", "17", "rest"] and d.sfreq_ == 256.0
    assert np.mean(d.predict(ep) == names) > 0.9
    assert d.predict_proba(ep).shape == (24, 3)
    # MOABB's integer codes: read back through the epochs' events
    codes = np.searchsorted(["13", "17", "rest"], names)
    d = MOABBDecoder("fbcca").fit(ep, codes)
    assert list(d.classes_) == [0, 1, 2] and np.mean(d.predict(ep) == codes) > 0.9
    # ... which say nothing when MOABB named the events by code
    coded = ep.copy()
    coded.event_id = {"1": 1, "2": 2, "3": 3}
    with pytest.raises(ValueError, match="mne_labels=True"):
        MOABBDecoder("fbcca").fit(coded, codes)
    d = MOABBDecoder("fbcca", freq_map={0: 13, 1: 17, 2: "rest"}).fit(coded, codes)
    assert np.mean(d.predict(coded) == codes) > 0.9
    # arrays: the sampling rate must be given
    X = ep.get_data()
    with pytest.raises(ValueError, match="without its sampling rate"):
        MOABBDecoder("fbcca").fit(X, names)
    d = MOABBDecoder("fbcca", sfreq=256.0).fit(X, names)
    with pytest.raises(ValueError, match="look like MOABB's integer codes"):
        MOABBDecoder("fbcca", sfreq=256.0).fit(X, codes)
    from sklearn.base import clone

    assert clone(d).get_params() == {"method": "fbcca", "sfreq": 256.0, "freq_map": None,
                                     "params": None}


def test_load_moabb_fake_dataset_as_annotated_sessions():
    recs = load_moabb("moabb_fake:SSVEP_FAKE", subjects=[2])
    assert list(recs) == ["subject02"]
    (s0, s1) = recs["subject02"]
    assert s0.ch_names == ["O1", "Oz", "O2", "POz"]  # the stim channel is gone
    onsets, labels = cue_table(s0)
    assert list(labels[:4]) == ["13.0Hz", "17.0Hz", "21.0Hz", "rest"] and len(labels) == 48
    # the cue annotations sit on MOABB's events
    events = mne.find_events(SSVEPFakeDataset(**fake_kwargs()).get_data([2])[2]["0"]["0"],
                             verbose="error")
    np.testing.assert_allclose(onsets, events[:, 0] / 256.0, atol=1e-5)
    with pytest.raises(DatasetError, match=r"has no subject\(s\) \[9\]"):
        load_moabb("moabb_fake:SSVEP_FAKE", subjects=[9])
    with pytest.raises(DatasetError, match="'imagery' dataset; ssvep-exo evaluates SSVEP"):
        load_moabb("BNCI2014_001")
    with pytest.raises(DatasetError, match="is not a MOABB dataset. SSVEP datasets in this "
                                           "MOABB: .*Kalunga2016"):
        load_moabb("Kalunga")


def test_dataset_not_on_this_machine_is_not_downloaded(tmp_path, monkeypatch):
    monkeypatch.setenv("MNE_DATA", str(tmp_path))
    monkeypatch.setenv("MOABB_DOWNLOAD_PROVIDER", "upstream")  # no NEMAR retries
    with pytest.raises(DatasetError, match=r"Subject 1 of the MOABB dataset 'Kalunga2016' "
                       r"is not on this machine .*ssvep-exo never downloads.*download"):
        load_moabb("Kalunga2016", subjects=[1])
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_no_downloads_guard_refuses_other_hosts_only():
    import socket

    with no_downloads() as refused:
        with pytest.raises(OSError):
            urllib.request.urlopen("http://example.org/data.zip", timeout=5)
        server = socket.create_server(("127.0.0.1", 0))
        client = socket.create_connection(server.getsockname(), timeout=5)  # loopback: fine
        client.close()
        server.close()
    assert refused == ["example.org"]
    assert socket.getaddrinfo is not None and socket.socket.connect.__name__ == "connect"


def test_evaluate_cli_on_a_moabb_dataset(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(TESTS), OMP_NUM_THREADS="1", MNE_DATA=str(tmp_path))
    r = subprocess.run(
        [sys.executable, "-m", "bci", "evaluate", "--moabb", "moabb_fake:SSVEP_FAKE",
         "--subjects", "1", "--methods", "fbcca", "--windows", "1", "--tmin", "0.5",
         "--scheme", "both", "--no-progress", "--no-phase", "--json",
         str(tmp_path / "r.json")], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 session(s) of 1 subject(s), 256 Hz, stimulus frequencies 13, 17, 21 Hz" in r.stdout
    import json

    recs = json.loads((tmp_path / "r.json").read_text())
    assert {(x["subject"], x["scheme"], x["n_classes"]) for x in recs} == {
        ("subject01", s, n) for s in ("within", "cross") for n in (3, 4)}
    assert all(x["accuracy"] >= 0.9 for x in recs)
    bad = subprocess.run([sys.executable, "-m", "bci", "evaluate", "--moabb", "Kalunga",
                          "--no-progress"], capture_output=True, text=True, timeout=120,
                         env=env)
    assert bad.returncode == 2 and "is not a MOABB dataset" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_fake_events_are_the_moabb_labels():
    assert tuple(SSVEPFakeDataset(**SMALL).event_id) == EVENTS
