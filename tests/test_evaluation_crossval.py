"""Within/cross-session evaluation machinery on synthetic recordings with sklearn estimators."""

from __future__ import annotations

import mne
import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from bci.evaluation import evaluate_cross, evaluate_within, run_evaluation, summarize
from bci.sources import synthesize_raw

SFREQ = 256.0
FREQS = (13.0, 17.0, 21.0)
KEYS = {"subject", "method", "window_s", "n_classes", "scheme", "accuracy", "itr_bits_per_min"}


def log_power(X, sfreq=SFREQ, freqs=FREQS):
    """Log power at each stimulus frequency and its 2nd harmonic, mean over channels."""
    n = X.shape[-1]
    t = np.arange(n) / sfreq
    feats = []
    for f in freqs:
        for h in (1, 2):
            k = np.hanning(n) * np.exp(-2j * np.pi * h * f * t)
            feats.append(np.log(np.abs(X @ k) ** 2 + 1e-30).mean(axis=1))
    return np.stack(feats, axis=1)


def psd_lda():
    return make_pipeline(
        FunctionTransformer(log_power), StandardScaler(), LinearDiscriminantAnalysis()
    )


class Majority(BaseEstimator, ClassifierMixin):
    """Always predicts the most frequent training label (a chance-level baseline)."""

    def fit(self, X, y):
        labels, counts = np.unique(y, return_counts=True)
        self.classes_ = labels
        self.label_ = labels[np.argmax(counts)]
        return self

    def predict(self, X):
        return np.full(len(X), self.label_)


def _schedule(rng, n_per_class=8, rest=True, dur=5.0):
    labels = [*FREQS, "rest"] if rest else list(FREQS)
    seq = [lab for lab in labels for _ in range(n_per_class)]
    rng.shuffle(seq)
    return [(lab, dur) for lab in seq]


@pytest.fixture(scope="module")
def sessions():
    rng = np.random.default_rng(7)
    return [synthesize_raw(_schedule(rng), seed=s, snr=1.0) for s in (1, 2, 3)]


def test_within_scores_and_records(sessions):
    ests = {"psd-lda": psd_lda(), "majority": Majority()}
    recs = evaluate_within(sessions[:2], ests, subject="synth", window_s=1.0)
    assert [r["method"] for r in recs] == ["psd-lda", "majority"]
    for r in recs:
        assert KEYS <= set(r)
        assert r["scheme"] == "within" and r["n_classes"] == 4 and r["n_folds"] == 5
        assert r["classes"] == ["13.0Hz", "17.0Hz", "21.0Hz", "rest"]
        assert np.sum(r["confusion"]) == r["n_test_trials"] == 64
    good, chance = recs
    assert good["accuracy"] > 0.8
    assert chance["accuracy"] == pytest.approx(0.25, abs=0.05)
    assert chance["itr_bits_per_min"] < 1.0 < good["itr_bits_per_min"]
    assert good["itr_bits_per_min_gaze"] < good["itr_bits_per_min"]
    three = evaluate_within(sessions[:2], ests, subject="synth", window_s=1.0,
                            classes=["13.0Hz", "17.0Hz", "21.0Hz"])  # fmt: skip
    assert three[0]["n_classes"] == 3 and three[0]["n_test_trials"] == 48


def _tagged_raw(n_trials=24, dur=4.0, first_tag=1, tail_s=5.0):
    """Each trial's samples carry its trial number on an extra channel, so an estimator
    can tell which trials it was trained and tested on."""
    n = int((1 + (n_trials - 1) * dur + tail_s) * SFREQ)
    data = np.zeros((2, n))
    onsets, labels = [], []
    for i in range(n_trials):
        a = int((1 + i * dur) * SFREQ)
        data[1, a : min(n, a + int(dur * SFREQ))] = i + first_tag
        onsets.append(1 + i * dur)
        labels.append(["13.0Hz", "17.0Hz", "21.0Hz"][i % 3])
    raw = mne.io.RawArray(data, mne.create_info(["Oz", "TAG"], SFREQ, "eeg"), verbose="error")
    durations = np.minimum(dur, n / SFREQ - np.asarray(onsets) - 1 / SFREQ)
    raw.set_annotations(mne.Annotations(onsets, durations, labels))
    return raw


class TrialSpy(BaseEstimator, ClassifierMixin):
    """Fails if a test window comes from a trial seen in training; records sizes."""

    log: list = []

    def __init__(self, window_s=None):
        self.window_s = window_s  # a window_s parameter: it is given the long epochs

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        self.train_trials_ = set(np.unique(X[:, 1]).tolist()) - {0.0}
        # every training epoch lies inside one trial
        assert all(len(set(np.unique(x[1]).tolist()) - {0.0}) == 1 for x in X)
        TrialSpy.log.append(("fit", len(X), self.train_trials_, X.shape[2]))
        return self

    def predict(self, X):
        test = set(np.unique(X[:, 1]).tolist()) - {0.0}
        assert not (test & self.train_trials_), "a test trial leaked into training"
        TrialSpy.log.append(("predict", len(X), test, X.shape[2]))
        return np.full(len(X), self.classes_[0])


def test_train_spans_stay_inside_training_trials():
    raw = _tagged_raw()
    TrialSpy.log = []
    evaluate_within([raw], {"spy": TrialSpy()}, subject="s", window_s=1.0, tmin=1.5,
                    train_spans={"spy": (0.5, 3.5)})  # fmt: skip
    fits = [e for e in TrialSpy.log if e[0] == "fit"]
    preds = [e for e in TrialSpy.log if e[0] == "predict"]
    assert len(fits) == len(preds) == 5
    # one 3 s epoch per training trial (the decoder cuts its windows), 1 s test windows
    assert all(n == len(trials) and ns == 3 * SFREQ for _, n, trials, ns in fits)
    assert all(ns == SFREQ for *_, ns in preds)
    assert sum(n for _, n, _, _ in preds) == 24
    assert set().union(*(t for _, _, t, _ in preds)) == set(range(1, 25))
    TrialSpy.log = []
    evaluate_cross([raw, _tagged_raw(first_tag=101)], {"spy": TrialSpy()}, subject="s",
                   window_s=1.0, tmin=1.5, train_spans={"spy": (1.0, 3.0)})  # fmt: skip
    assert [(n, ns) for k, n, _, ns in TrialSpy.log if k == "fit"] == [(24, 2 * SFREQ)] * 2
    # an estimator without a window_s parameter is fitted on the test windows
    (rec,) = evaluate_within([raw], {"plain": Majority()}, subject="s", window_s=1.0, tmin=1.5,
                             train_spans={"plain": (0.5, 3.5)})  # fmt: skip
    assert rec["train_span"] is None and rec["accuracy"] is not None


def test_trial_ids_stay_distinct_when_a_last_window_is_cut():
    """The last cue's test window runs past the end (its trial is left out, though its
    training epoch would fit): trial numbering must still keep sessions apart."""
    raws = [_tagged_raw(tail_s=2.0), _tagged_raw(first_tag=101, tail_s=2.0)]
    TrialSpy.log = []
    evaluate_within(raws, {"spy": TrialSpy()}, subject="s", window_s=1.0, tmin=1.5,
                    train_spans={"spy": (0.2, 1.9)})  # fmt: skip
    tested = set().union(*(t for k, _, t, _ in TrialSpy.log if k == "predict"))
    assert 24.0 not in tested and 124.0 not in tested  # their test windows do not fit
    assert len(tested) == 46
    trained = set().union(*(t for k, _, t, _ in TrialSpy.log if k == "fit"))
    assert len(trained) == 46 and not {24.0, 124.0} & trained


def test_cross_session_pairs_and_single_session(sessions):
    recs = evaluate_cross(sessions, {"psd-lda": psd_lda()}, subject="synth", window_s=2.0)
    (r,) = recs
    assert r["scheme"] == "cross" and r["n_pairs"] == 6 and r["available"]
    assert r["n_test_trials"] == 6 * 32
    assert r["accuracy"] > 0.8
    (single,) = evaluate_cross(sessions[:1], {"psd-lda": psd_lda()}, subject="one", window_s=2.0)
    assert single["available"] is False and single["accuracy"] is None
    assert single["itr_bits_per_min"] is None and "one independent session" in single["note"]


@pytest.mark.slow
def test_parallel_and_prefilter(sessions):
    ests = {"psd-lda": psd_lda()}
    a = evaluate_within(sessions[:1], ests, subject="s", window_s=1.0, n_jobs=1)[0]
    b = evaluate_within(sessions[:1], ests, subject="s", window_s=1.0, n_jobs=2)[0]
    assert a["accuracy"] == b["accuracy"] and a["confusion"] == b["confusion"]
    c = evaluate_within(sessions[:1], ests, subject="s", window_s=1.0, prefilter=(10.0, 42.0))[0]
    assert c["prefilter"] == "whole 10-42 Hz" and a["prefilter"] == "none"
    assert c["accuracy"] > 0.6


def test_run_evaluation_sweep_and_summary(sessions):
    recordings = {"s1": sessions[:2], "s2": sessions[2:]}
    ests = {"psd-lda": psd_lda(), "majority": Majority()}
    recs = run_evaluation(recordings, ests, windows=(0.5, 1.0), schemes=("within", "cross"),
                          progress=False)  # fmt: skip
    assert len(recs) == 2 * 2 * 2 * 2 * 2  # subjects x windows x class sets x schemes x methods
    assert {r["n_classes"] for r in recs} == {3, 4}
    rows = summarize(recs)
    assert len(rows) == 2 * 2 * 2 * 2
    row = next(r for r in rows if (r["method"], r["window_s"], r["n_classes"], r["scheme"])
               == ("psd-lda", 1.0, 4, "within"))  # fmt: skip
    subj = [r["accuracy"] for r in recs if (r["method"], r["window_s"], r["n_classes"], r["scheme"])
            == ("psd-lda", 1.0, 4, "within")]  # fmt: skip
    assert row["accuracy"] == pytest.approx(np.mean(subj)) and row["n_subjects"] == 2
    cross = [r for r in rows if r["scheme"] == "cross"]
    assert all(r["n_not_available"] == 1 and r["n_subjects"] == 1 for r in cross)
    with pytest.raises(ValueError, match=r"Invalid value for the 'schemes' parameter"):
        run_evaluation(recordings, ests, schemes=("loso",), progress=False)
