"""The evaluation harness: windows as the online loop decodes them, out-of-fold scoring,
folds, and training-window augmentation inside the estimator (same figure through the
scikit-learn API and the harness)."""

from __future__ import annotations

import mne
import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import cross_val_score

from bci.datasets import epoch
from bci.decoders import RessFBCCA, make_decoder
from bci.evaluation import evaluate_cross
from bci.evaluation.harness import (
    Trials,
    calibration_session,
    out_of_fold_streams,
    score_stream,
    session_pairs,
    trial_folds,
    window_labels,
)
from bci.online import DecisionPolicy
from bci.online.pseudo_online import replay
from bci.sources import synthesize_raw

SCHEDULE = "rest:4,13:5,rest:4,17:5,rest:4,21:5,rest:4,21:5,rest:4,17:5,rest:4,13:5,rest:4"


def _session(seed: int):
    return synthesize_raw(SCHEDULE, seed=seed, snr=0.6)


def test_score_stream_gives_the_scores_the_online_loop_sees():
    raw = _session(1)
    dec = make_decoder("fbcca", sfreq=256.0, freqs=[13, 17, 21])
    dec.fit(np.zeros((1, 8, 256)))
    st = score_stream(dec, raw, window_s=1.0, step=0.1)
    pol = DecisionPolicy(st.classes, threshold=1e9)  # never commits: only the scores matter
    decisions, _ = replay(raw, dec, pol, window_s=1.0, step_s=0.1)
    assert len(decisions) == len(st.t)
    np.testing.assert_allclose([d.window_end for d in decisions], st.t)
    np.testing.assert_allclose(np.array([d.scores for d in decisions]), st.scores, atol=1e-10)
    assert st.rest_minutes == pytest.approx(7 * 4 / 60)


class _Memo(ClassifierMixin, BaseEstimator):
    """Scores 1 for a window from a trial it was trained on (channel 0 holds the trial id)."""

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        self.seen_ = np.unique(np.round(X[:, 0, -1]))
        return self

    def decision_function(self, X):
        out = np.zeros((len(X), len(self.classes_)))
        out[:, 0] = np.isin(np.round(X[:, 0, -1]), self.seen_)
        return out


def _trial_id_raw(n_trials=12, trial_s=4.0, sfreq=100.0):
    labels = (["rest", "13.0Hz", "17.0Hz"] * n_trials)[:n_trials]
    n = int(n_trials * trial_s * sfreq)
    data = np.zeros((2, n))
    data[0] = np.floor(np.arange(n) / (trial_s * sfreq)) + 1.0  # trial index + 1
    data[1] = np.random.default_rng(0).normal(size=n)
    raw = mne.io.RawArray(data, mne.create_info(["C1", "C2"], sfreq, "eeg"), verbose="error")
    raw.set_annotations(mne.Annotations(np.arange(n_trials) * trial_s, trial_s, labels))
    return raw


def test_out_of_fold_windows_are_scored_by_a_model_that_never_saw_their_trial():
    raw = _trial_id_raw()
    (st,) = out_of_fold_streams(_Memo(), [raw], tmin=0.5, window_s=1.0, step=0.1, n_folds=4)
    inside = st.t >= st.onsets[0]
    assert inside.sum() > 300
    assert st.scores[inside, 0].max() == 0.0  # no window scored by a model trained on it
    (seen,) = [score_stream(_Memo().fit(*Trials.build([raw], tmin=0.5, window_s=1.0)
                                        .train(np.arange(12))), raw, window_s=1.0, step=0.1)]
    assert seen.scores[inside, 0].min() == 1.0  # the test can fail


def test_folds_and_pairs():
    y = ["a"] * 4 + ["b"] * 4 + ["c"] * 2
    f = trial_folds(y, 5)
    assert f.max() == 1  # two folds: the smallest class has two trials
    for k in range(2):
        assert sorted(np.asarray(y)[f == k]) == ["a", "a", "b", "b", "c"]
    with pytest.raises(ValueError, match="at least 2 trials"):
        trial_folds(["a", "a", "b"])
    assert session_pairs(3) == [(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)]
    assert [calibration_session(i, 3) for i in range(3)] == [1, 0, 1]


def test_window_labels():
    labs = window_labels(np.array([1.0, 2.5, 3.9, 4.5, 6.0]), [0.0, 4.0], ["rest", "13.0Hz"],
                         window_s=1.0, guard=1.0)
    assert labs == [None, "rest", "rest", None, "13.0Hz"]


# ---------------------------------------------------------------------- augmentation
def test_ress_cuts_its_own_training_windows_from_longer_epochs():
    raw = _session(2)
    X, y, _ = epoch(raw, tmin=1.0, window_s=3.0)
    aug = RessFBCCA(sfreq=256.0, window_s=1.0, augment_step_s=0.5).fit(X, y)
    cut = np.concatenate([X[:, :, s:s + 256] for s in (0, 128, 256, 384, 512)])
    plain = RessFBCCA(sfreq=256.0).fit(cut, np.tile(y, 5))
    np.testing.assert_allclose(aug.coef_, plain.coef_, rtol=1e-8, atol=1e-10)
    # longer epochs at predict time: the window starting window_start_s into each
    aug.set_params(window_start_s=1.0)
    np.testing.assert_allclose(aug.decision_function(X),
                               plain.decision_function(X[:, :, 256:512]), atol=1e-10)
    with pytest.raises(ValueError, match="at least one window long"):
        RessFBCCA(sfreq=256.0, window_s=4.0).fit(X, y)
    with pytest.raises(ValueError, match="does not fit"):
        aug.set_params(window_start_s=2.5).decision_function(X)


def test_augmentation_gives_the_same_figure_through_scikit_learn_and_the_harness():
    a, b = _session(3), _session(4)
    span, tmin, w = (1.0, 4.0), 2.0, 1.0
    rec = evaluate_cross([a, b], {"ress": RessFBCCA(sfreq=256.0)}, subject="s", window_s=w,
                         tmin=tmin, train_spans={"ress": span})[0]
    assert rec["train_span"] == [1.0, 4.0]
    accs = []
    for tr, te in ((a, b), (b, a)):
        Xl, yl, _ = epoch(tr, tmin=span[0], window_s=span[1] - span[0])
        X, y, _ = epoch(te, tmin=tmin, window_s=w)
        est = RessFBCCA(sfreq=256.0, window_s=w).fit(Xl, yl)
        accs.append(est.score(X, y))
    assert rec["accuracy"] == pytest.approx(np.mean(accs))
    # a MOABB-style pipeline: one epoch array for training and test, decoded at window_start_s
    Xl, yl, _ = epoch(a, tmin=span[0], window_s=span[1] - span[0])
    cv = cross_val_score(RessFBCCA(sfreq=256.0, window_s=w, window_start_s=tmin - span[0]),
                         Xl, yl, cv=2)
    assert cv.mean() > 0.5
