"""Decoder API: scikit-learn contract, labels, serialisation, registry, error messages."""

from __future__ import annotations

import copy
import io
import json
import pickle

import numpy as np
import pytest
from scipy.signal import sosfiltfilt
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import parametrize_with_checks

from bci.decoders import (
    BEST_METHOD,
    DEFAULT_METHODS,
    FBCCA,
    METHODS,
    SSVEPCCA,
    TDCA,
    TRCA,
    RessFBCCA,
    from_state,
    make_decoder,
    to_state,
)
from bci.decoders._filters import FilterBankCache, design_bands
from bci.errors import DecoderError

SF = 256.0
FREQS = (13.0, 17.0, 21.0)


def _data(seed=0, n_per=8, n=256, rest=True):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SF
    labels = [*FREQS] * n_per
    X = rng.standard_normal((len(labels), 8, n))
    for i, f in enumerate(labels):
        X[i] += 0.6 * np.sin(2 * np.pi * f * t + 0.3)[None] * np.linspace(1, 0.3, 8)[:, None]
    y = np.array([f"{f:.1f}Hz" for f in labels])
    if rest:
        X = np.concatenate([X, rng.standard_normal((n_per, 8, n))])
        y = np.concatenate([y, ["rest"] * n_per])
    return X * 1e-3, y


ALL = [SSVEPCCA(), FBCCA(), TRCA(), TRCA(ensemble=False), TDCA(), RessFBCCA(),
       RessFBCCA(classifier="lda")]
IDS = ["SSVEPCCA", "FBCCA", "eTRCA", "TRCA", "TDCA", "RessFBCCA", "RessFBCCA-lda"]

# The decoders take 3-D EEG windows (n_trials, n_channels, n_samples). Every scikit-learn
# check runs; the ones below must fit 2-D tabular X (n_samples, n_features) to reach what
# they test, so they fail on "X must be a 3-D array" (strict xfail: one that starts passing
# fails the suite). What each of them checks is tested on 3-D windows in this file
# (test_contract_on_3d_windows, test_contract_properties_on_3d_windows). Those that probe
# rejection (unfitted, complex, sparse, empty, NaN in fit, continuous or one-class y, y=None
# for calibrated decoders) pass.
_FITS_2D = {
    "check_fit_score_takes_y": "fits 2-D X to inspect the signatures of fit and score",
    "check_estimators_overwrite_params": "fits 2-D X, then compares the parameters",
    "check_dont_overwrite_parameters": "fits 2-D X, then looks for public attributes",
    "check_estimators_fit_returns_self": "fits 2-D X and checks fit returns self",
    "check_readonly_memmap_input": "fits a read-only 2-D memmap",
    "check_n_features_in_after_fitting": "fits 2-D X, then predicts with other n_features",
    "check_positive_only_tag_during_fit": "fits iris (2-D) centred to negative values",
    "check_estimators_dtypes": "fits 2-D float32/int32/int64 X",
    "check_dtype_object": "fits a 2-D object array",
    "check_estimators_nan_inf": "NaN/inf are rejected; it then fits finite 2-D X",
    "check_estimators_pickle": "fits 2-D X, then pickles",
    "check_f_contiguous_array_estimator": "fits a Fortran-ordered 2-D X",
    "check_classifier_data_not_an_array": "fits 2-D lists / pandas frames",
    "check_classifiers_classes": "fits 2-D X with string and numeric classes",
    "check_classifiers_train": "fits 2-D blobs and scores them",
    "check_supervised_y_2d": "fits 2-D X with a column y",
    "check_decision_proba_consistency": "fits 2-D X, then ranks proba vs decisions",
    "check_methods_sample_order_invariance": "fits 2-D X, then permutes the rows",
    "check_methods_subset_invariance": "fits 2-D X, then predicts on batches",
    "check_fit2d_1feature": "fits 2-D X of one feature",
    "check_dict_unchanged": "fits 2-D X, then compares __dict__ around predict",
    "check_fit_idempotent": "fits 2-D X twice",
    "check_fit_check_is_fitted": "fits 2-D X, then calls check_is_fitted",
    "check_n_features_in": "fits 2-D X, then reads n_features_in_",
    "check_fit2d_predict1d": "fits 2-D X, then predicts 1-D X",
    "check_pipeline_consistency": "fits 2-D X in and out of a Pipeline",
}


def _expected_failed(est) -> dict[str, str]:
    return {name: f"needs 2-D X: {why}" for name, why in _FITS_2D.items()}


@parametrize_with_checks(
    [SSVEPCCA(), FBCCA(), TRCA(), TDCA(), RessFBCCA()],
    expected_failed_checks=_expected_failed, xfail_strict=True,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("est", ALL, ids=IDS)
def test_contract_on_3d_windows(est):
    X, y = _data()
    e = clone(est)
    assert e.fit(X, y) is e
    assert list(e.classes_) == ["13.0Hz", "17.0Hz", "21.0Hz", "rest"]
    d = e.decision_function(X)
    assert d.shape == (len(X), 4)
    p = e.predict_proba(X)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert set(e.predict(X)) <= set(e.classes_)
    # refit on other data discards the old fit; same data gives the same result
    e.fit(X[:, :, :200], y)
    assert e.decision_function(X[:, :, :200]).shape == (len(X), 4)
    e.fit(X, y)
    np.testing.assert_allclose(e.decision_function(X), d)
    # order invariance and scale invariance (file units are ~1000x off)
    perm = np.random.default_rng(1).permutation(len(X))
    np.testing.assert_allclose(e.decision_function(X[perm]), d[perm], atol=1e-10)
    e2 = clone(est).fit(X * 1e3, y)
    np.testing.assert_allclose(e2.decision_function(X * 1e3), d, rtol=1e-6, atol=1e-6)
    # get_params/set_params round-trip through clone
    assert clone(e).get_params() == est.get_params()


@pytest.mark.parametrize("est", ALL, ids=IDS)
def test_contract_properties_on_3d_windows(est):
    """What the scikit-learn checks listed in _FITS_2D test, on 3-D windows."""
    X, y = _data()
    e = clone(est)
    for method in ("predict", "predict_proba", "decision_function"):
        with pytest.raises(NotFittedError):
            getattr(e, method)(X)
    params = copy.deepcopy(e.get_params())
    e.fit(X, y)
    # fit changes no parameter and adds public attributes only with a trailing "_"
    assert e.get_params().keys() == params.keys()
    for k, v in params.items():
        np.testing.assert_equal(e.get_params()[k], v)
    assert all(k.endswith("_") or k.startswith("_") for k in vars(e) if k not in params)
    assert e.n_features_in_ == X.shape[1] == 8
    d = e.decision_function(X)
    # predict leaves the fitted state alone
    state = {k: copy.deepcopy(v) for k, v in vars(e).items() if not k.startswith("_")}
    e.predict(X)
    for k, v in state.items():
        np.testing.assert_equal(vars(e)[k], v)
    # the same windows as float32, read-only, Fortran-ordered, or nested lists
    ro = X.copy()
    ro.setflags(write=False)
    for X2 in (ro, np.asfortranarray(X), X.tolist()):
        np.testing.assert_allclose(e.decision_function(X2), d, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(clone(est).fit(X.astype(np.float32), y).decision_function(
        X.astype(np.float32)), d, rtol=1e-3, atol=1e-3)
    # one window at a time gives the batch's scores; argmax agrees across outputs
    np.testing.assert_allclose(np.concatenate([e.decision_function(X[i:i + 1])
                                               for i in range(len(X))]), d, atol=1e-10)
    np.testing.assert_array_equal(np.argmax(e.predict_proba(X), axis=1), np.argmax(d, axis=1))
    # pickling keeps the fit
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(e)).decision_function(X), d)
    # what the fit cannot use is refused
    with pytest.raises(ValueError, match="X must be a 3-D array"):
        e.predict(X[0])
    with pytest.raises(ValueError, match="contains NaN"):
        e.predict(np.where(np.arange(X.shape[-1]) == 3, np.nan, X))
    with pytest.raises(ValueError, match="Complex data not supported"):
        clone(est).fit(X + 1j, y)
    with pytest.raises(ValueError, match="Unknown label type: continuous.*'8.57Hz'"):
        clone(est).fit(X, np.random.default_rng(0).uniform(10, 20, len(X)))
    with pytest.raises(ValueError, match=r"y holds 1 class\(es\).*at least 2 classes"):
        clone(est).fit(X, np.full(len(X), "13.0Hz"))
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        clone(est).fit(X, y[:-1])


@pytest.mark.parametrize("est", ALL, ids=IDS)
def test_pipeline_and_cross_val_score(est):
    X, y = _data(n_per=10)
    pipe = make_pipeline(FunctionTransformer(lambda a: a), clone(est))
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.shape == (3,) and np.all(scores >= 0)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_state_round_trip_gives_identical_outputs(method, tmp_path):
    X, y = _data()
    est = make_decoder(method, sfreq=SF, freqs=FREQS).fit(X, y)
    meta, arrays = to_state(est)
    # what a profile does: JSON + npz without pickle
    meta2 = json.loads(json.dumps(meta))
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as z:
        arrays2 = {k: z[k] for k in z.files}
    est2 = from_state(meta2, arrays2)
    assert type(est2) is type(est)
    np.testing.assert_array_equal(est2.classes_, est.classes_)
    np.testing.assert_array_equal(est2.decision_function(X), est.decision_function(X))
    np.testing.assert_array_equal(est2.predict(X), est.predict(X))


def test_registry_contents():
    assert BEST_METHOD in METHODS and set(DEFAULT_METHODS) <= set(METHODS)
    for name, info in METHODS.items():
        assert {"calibrated", "phase_invariant", "train_span"} <= set(info), name
        if info["train_span"] is not None:  # given to decoders that cut their own windows
            assert "window_s" in info["cls"]().get_params(), name
    assert METHODS[BEST_METHOD]["phase_invariant"]
    assert make_decoder("etrca", sfreq=SF, freqs=FREQS).ensemble is True
    assert make_decoder("trca", sfreq=SF, freqs=FREQS).ensemble is False
    assert make_decoder("fbcca", sfreq=250, freqs=[8, 10], n_bands=2).n_bands == 2


def test_labels_map_to_frequencies():
    X, y = _data(rest=False)
    freqs = np.array([float(s[:-2]) for s in y])
    e = FBCCA().fit(X, freqs)  # numeric labels are Hz
    np.testing.assert_array_equal(e.classes_, [13.0, 17.0, 21.0])
    short = np.array([s[:2] for s in y])  # "13", "17", "21" as MOABB uses
    e2 = FBCCA(freqs=(1.0, 2.0)).fit(X, short)  # labels win over the freqs parameter
    np.testing.assert_array_equal(e2.freqs_, [13.0, 17.0, 21.0])
    np.testing.assert_array_equal(e2.classes_, ["13", "17", "21"])
    np.testing.assert_array_equal(e.decision_function(X), e2.decision_function(X))


def test_filter_matrices_equal_sosfiltfilt():
    sos = design_bands(np.array([[11.0, 42.0], [24.0, 42.0]]), SF)
    cache = FilterBankCache(sos)
    X = np.random.default_rng(0).standard_normal((3, 8, 256))
    out = cache.apply(X)
    for m, s in enumerate(sos):
        np.testing.assert_allclose(out[m], sosfiltfilt(s, X, axis=-1, padlen=27), atol=1e-10)


def test_error_messages():
    X, y = _data()
    with pytest.raises(ValueError, match="X must be a 3-D array"):
        FBCCA().fit(X[0])
    with pytest.raises(ValueError, match="Input X contains NaN"):
        FBCCA().fit(np.full((2, 8, 64), np.nan))
    with pytest.raises(ValueError, match="Input X contains infinity"):
        FBCCA().fit(np.full((2, 8, 64), np.inf))
    with pytest.raises(DecoderError, match="need a sampling rate above"):
        FBCCA(sfreq=40.0).fit(X)
    with pytest.raises(DecoderError, match="does not fit below the Nyquist"):
        FBCCA(sfreq=60.0, freqs=(13.0,)).fit(X)
    with pytest.raises(ValueError, match="'sfreq' must be a positive"):
        SSVEPCCA(sfreq=-1).fit(X)
    with pytest.raises(ValueError, match="'n_harmonics' must be a positive integer"):
        SSVEPCCA(n_harmonics=0).fit(X)
    with pytest.raises(ValueError, match="'band' must be 'auto'"):
        SSVEPCCA(band="wide").fit(X)
    with pytest.raises(ValueError, match="'bands' must have shape"):
        FBCCA(bands=[1, 2, 3]).fit(X)
    with pytest.raises(ValueError, match="requires y to be passed.*is calibrated: call fit"):
        TRCA().fit(X)
    with pytest.raises(ValueError, match="requires y to be passed.*is calibrated: call fit"):
        RessFBCCA().fit(X, None)
    with pytest.raises(ValueError, match="Cannot read a stimulus frequency"):
        FBCCA().fit(X, ["left", "right"] * (len(X) // 2))
    with pytest.raises(ValueError, match=r"y holds 1 class\(es\) \['rest'\]"):
        FBCCA().fit(X, ["rest"] * len(X))
    with pytest.raises(ValueError, match="no stimulus class"):
        FBCCA().fit(X, ["rest", "Rest"] * (len(X) // 2))
    e = TRCA().fit(X, y)
    with pytest.raises(ValueError, match="channels but the decoder was fitted on 8"):
        e.predict(X[:, :4])
    with pytest.raises(ValueError, match="learned templates on windows of 256"):
        e.predict(X[:, :, :128])
    with pytest.raises(ValueError, match="'n_delays' must be a non-negative"):
        TDCA(n_delays=-1).fit(X, y)
    with pytest.raises(ValueError, match="'n_cca' and 'n_filters' are both 0"):
        RessFBCCA(n_cca=0, n_filters=0).fit(X, y)
    with pytest.raises(ValueError, match="'classifier' must be 'logreg' or 'lda'"):
        RessFBCCA(classifier="svm").fit(X, y)
    with pytest.raises(ValueError, match="'C' must be a positive number"):
        RessFBCCA(C=0).fit(X, y)
    with pytest.raises(DecoderError, match="do not fit below"):
        RessFBCCA(n_bands=12).fit(X, y)
    with pytest.raises(DecoderError, match="Unknown decoder method 'fbca'.*Did you mean 'fbcca'"):
        make_decoder("fbca", sfreq=SF, freqs=FREQS)
    with pytest.raises(DecoderError, match="not in the 'bci.decoders/1' format"):
        from_state({"format": "x"}, {})
    with pytest.raises(DecoderError, match="Unknown decoder class 'Foo'"):
        from_state({"format": "bci.decoders/1", "class": "Foo"}, {})
    with pytest.raises(RuntimeError, match="is not fitted"):
        to_state(FBCCA())
    with pytest.raises(TypeError, match="to_state supports"):
        to_state(object())


def test_the_old_cca_name_still_works_with_a_warning():
    import bci.decoders as decoders

    with pytest.warns(FutureWarning, match="renamed SSVEPCCA"):
        old = decoders.CCA
    assert old is SSVEPCCA
    X, y = _data()
    meta, arrays = to_state(SSVEPCCA().fit(X, y))
    assert meta["class"] == "SSVEPCCA"
    meta["class"] = "CCA"  # a state saved before the rename
    np.testing.assert_array_equal(from_state(meta, arrays).predict(X), SSVEPCCA().fit(X, y)
                                  .predict(X))
