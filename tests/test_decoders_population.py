"""The population decoder: a prior trained on several users, used as is or adapted."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from bci.datasets import epoch
from bci.decoders import RessFBCCA
from bci.decoders.population import PopulationRessFBCCA, load_prior, map_logreg
from bci.errors import DecoderError
from bci.sources import Schedule, synthesize_raw

FREQS = (13.0, 17.0, 21.0)


def _windows(seed: int, snr: float, n_repeats: int = 4, **model):
    """1 s windows (every 0.5 s from 1 s after each cue) of a synthetic user with
    interleaved rest."""
    sched = Schedule.interleaved(FREQS, n_repeats=n_repeats, trial_s=5.0, rest_s=5.0,
                                 lead_rest_s=5.0, seed=seed)
    raw = synthesize_raw(sched, snr=snr, seed=seed, **model)
    X, y, _, _ = epoch(raw, tmin=1.0, window_s=1.0, offsets=[1.0, 1.5, 2.0, 2.5, 3.0, 3.5])
    return X, np.asarray(y).astype(str)


@pytest.fixture(scope="module")
def prior(tmp_path_factory):
    Xs, ys = [], []
    for seed in range(4):  # four 'users'
        X, y = _windows(seed, snr=0.6)
        Xs.append(X)
        ys.append(y)
    dec = PopulationRessFBCCA(prior=None).fit(np.concatenate(Xs), np.concatenate(ys))
    return dec.save_prior(tmp_path_factory.mktemp("prior") / "synthetic_w1.npz",
                          ch_names=["Oz", "O1", "O2", "PO3", "POz", "PO7", "PO8", "PO4"])


def test_prior_decodes_a_new_user_without_calibration(prior):
    X, y = _windows(11, snr=0.6)
    dec = PopulationRessFBCCA(prior=str(prior)).fit(X[:1], None)
    assert not dec.adapted_
    assert list(dec.classes_) == ["13.0Hz", "17.0Hz", "21.0Hz", "rest"]
    acc = np.mean(dec.predict(X) == y)
    assert acc > 0.6  # chance is 0.25 (rest included)
    proba = dec.predict_proba(X)
    assert np.allclose(proba.sum(axis=1), 1.0)


def test_adaptation_moves_the_prior_towards_a_different_user(prior):
    """A user whose response lies elsewhere on the scalp than the prior's users' (channels
    permuted): a minute of their data beats the prior and does as well as a decoder
    calibrated on that minute alone; the adapted decoder keeps the rest class."""
    kw = {"ch_names": ("PO7", "PO8", "PO3", "PO4", "O1", "O2", "POz", "Oz")}
    X, y = _windows(21, snr=0.4, n_repeats=2, **kw)  # 2 trials per class: about a minute
    Xt, yt = _windows(22, snr=0.4, n_repeats=4, **kw)
    base = PopulationRessFBCCA(prior=str(prior)).fit(X[:1], None)
    adapted = PopulationRessFBCCA(prior=str(prior)).fit(X, y)
    alone = RessFBCCA().fit(X, y)
    assert adapted.adapted_ and adapted.n_user_windows_ == len(X)
    acc = np.mean(adapted.predict(Xt) == yt)
    assert acc > np.mean(base.predict(Xt) == yt) + 0.15
    assert acc >= np.mean(alone.predict(Xt) == yt) - 0.05
    # no rest in the user's data: the rest class stays, from the prior
    tgt = y != "rest"
    no_rest = PopulationRessFBCCA(prior=str(prior)).fit(X[tgt], y[tgt])
    assert "rest" in set(no_rest.predict(Xt))


def test_map_logreg_spans_prior_to_data():
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(300, 4))
    y = (Z[:, 0] + 0.3 * rng.normal(size=300) > 0).astype(int)
    W0, b0 = np.array([[0.0, 0.0, 2.0, 0.0], [0.0, 0.0, -2.0, 0.0]]), np.zeros(2)
    W, b = map_logreg(Z, y, W0, b0, C=1e-6)  # the prior dominates
    assert np.allclose(W, W0, atol=1e-3)
    W, b = map_logreg(Z, y, W0, b0, C=10.0)  # the data dominate
    assert (W[1, 0] - W[0, 0]) > 2.0 and abs(W[1, 2] - W[0, 2]) < 1.0


def test_mismatches_are_clear_errors(prior):
    X, y = _windows(11, snr=0.6, n_repeats=2)
    with pytest.raises(DecoderError, match="lights at"):
        PopulationRessFBCCA(prior=str(prior), freqs=(12.0, 15.0, 20.0)).fit(X[:1], None)
    with pytest.raises(DecoderError, match="channels"):
        PopulationRessFBCCA(prior=str(prior)).fit(X[:1, :6], None)
    with pytest.raises(DecoderError, match="s windows"):
        PopulationRessFBCCA(prior=str(prior)).fit(X[:1, :, :128], None)
    with pytest.raises(DecoderError, match="not classes"):
        PopulationRessFBCCA(prior=str(prior)).fit(X[:4], ["13.0Hz", "9.0Hz", "rest", "rest"])
    with pytest.raises(DecoderError, match="No population prior"):
        PopulationRessFBCCA(prior="/nonexistent/prior.npz").fit(X[:1], None)


def test_prior_round_trip_and_sklearn_contract(prior):
    p = load_prior(str(prior))
    assert p["meta"]["window_s"] == pytest.approx(1.0)
    assert p["S"].shape == (3, 8, 8) and p["W0"].shape[0] == 4
    dec = PopulationRessFBCCA(prior=p, n0=50.0)
    assert clone(dec).get_params()["n0"] == 50.0
    X, y = _windows(11, snr=0.6, n_repeats=2)
    a = dec.fit(X, y).decision_function(X[:5])
    b = PopulationRessFBCCA(prior=str(prior), n0=50.0).fit(X, y).decision_function(X[:5])
    assert np.allclose(a, b)


@pytest.mark.realdata
def test_shipped_prior_decodes_kalunga_windows(kalunga_root):
    """Smoke test of the shipped priors on a recording they were trained on (figures for
    new users come from scripts/population_curve.py, leave-one-subject-out)."""
    from bci.datasets import find_recordings, load_recording

    raw = load_recording(find_recordings(kalunga_root)["subject03"][0])
    for w in (1.0, 2.0):
        X, y, _ = epoch(raw, tmin=2.0, window_s=w)
        dec = PopulationRessFBCCA(sfreq=raw.info["sfreq"]).fit(X[:1], None)
        assert dec.prior_meta_["ch_names"] == raw.ch_names
        assert np.mean(dec.predict(X) == np.asarray(y).astype(str)) > 0.5
