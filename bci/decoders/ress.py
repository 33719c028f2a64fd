"""Calibrated phase-invariant decoder for free-running lights: FBCCA + RESS features."""

from __future__ import annotations

import numpy as np
from scipy.linalg import eigh

from ..errors import DecoderError
from ._base import SSVEPDecoder, check_positive_int
from ._filters import FilterBankCache, design_bands
from ._lda import fit_lda, fit_logreg, log_softmax
from ._references import canonical_correlations, reference_bases
from ._windows import decoding_window, training_windows, window_samples
from .cca import DEFAULT_FREQS


def _ress_filters(S: np.ndarray, R: np.ndarray, k: int) -> np.ndarray:
    R = R + 1e-3 * np.trace(R) / len(R) * np.eye(len(R))
    _, v = eigh(S, R)
    return v[:, ::-1][:, :k]


class RessFBCCA(SSVEPDecoder):
    """Calibrated, phase-invariant SSVEP decoder with a learned no-control class.

    Features of each window (all invariant to the signal's scale and phase):

    1. filter-bank canonical correlations: the ``n_cca`` largest canonical correlations with
       the sine/cosine references of every target, in every sub-band (as :class:`FBCCA`);
    2. RESS features: per target, ``n_filters`` spatial filters learned from the calibration
       data (generalised eigenvectors maximising the power in the target's sine/cosine
       subspace against the window's total power, each window normalised to unit power); for
       every filter and sub-band, the logit of the fraction of the filtered window's power
       that lies in each target's reference subspace.

    A strongly regularised multinomial logistic regression (or a Ledoit-Wolf shrinkage LDA)
    over all classes, ``"rest"`` included, classifies the features; it is stored as plain
    arrays ``coef_`` and ``intercept_``. Nothing depends on absolute amplitude or slow drift, so the rest class is
    learned from the spectral pattern, not from the signal level.

    Parameters
    ----------
    sfreq : float, default=256.0
        Sampling rate in Hz.
    freqs : sequence of float, default=(13.0, 17.0, 21.0)
        Stimulus frequencies (for the filter bank when ``y`` has no frequency labels); the
        labels of ``y`` name the targets (``13``, ``"13.0Hz"``) and the no-control class
        (``"rest"``).
    n_harmonics : int, default=3
        Harmonics of the references.
    n_bands : int, default=3
        Sub-bands: band ``m`` spans ``min(freqs) - 2 + 8 m`` Hz to
        ``n_harmonics * max(freqs) + 1`` Hz (11-64, 19-64, 27-64 Hz for 13/17/21 Hz);
        ``bands`` overrides them.
    bands : array-like, shape (n_bands, 2) | None, default=None
        Explicit sub-bands in Hz.
    n_cca : int, default=2
        Canonical correlations kept per target and sub-band.
    n_filters : int, default=2
        RESS spatial filters per target (0 disables the RESS features).
    classifier : "logreg" | "lda", default="logreg"
        L2 multinomial logistic regression on standardised features (strength ``C``), or
        Ledoit-Wolf shrinkage LDA.
    C : float, default=0.003
        Inverse regularisation strength of the logistic regression (chosen
        leave-one-subject-out on cross-session accuracy, docs/evaluation.md).
    window_s : float | None, default=None
        Length of the windows the decoder classifies (s). When set, ``fit`` accepts longer
        calibration epochs and trains on every ``window_s`` window starting each
        ``augment_step_s`` inside them (training-window augmentation: on Kalunga2016 with
        epochs 1-5 s after the cue, cross-session 4-class accuracy 75.3 % instead of 67.5 %
        at 1 s, 85.3 % instead of 83.3 % at 2 s; docs/evaluation.md); ``decision_function`` and
        ``predict`` given epochs longer than the window decode the window starting
        ``window_start_s`` into each. None: every window is used as given.
    augment_step_s : float, default=0.5
        Stride of the training windows cut from longer epochs (s).
    window_start_s : float, default=0.0
        Where the decoded window starts in epochs longer than ``window_s`` (s), e.g. 1.0 for
        epochs starting 1 s after the cue decoded 2 s after it.

    Attributes
    ----------
    classes_, freqs_, rest_index_ : see :class:`SSVEPCCA`.
    filters_ : ndarray, shape (n_channels, n_targets * n_filters)
    coef_ : ndarray, shape (n_classes, n_features)
    intercept_ : ndarray, shape (n_classes,)

    References
    ----------
    .. [1] M. X Cohen, R. Gulbinaite, "Rhythmic entrainment source separation: optimizing
       analyses of neural responses to rhythmic sensory stimulation", NeuroImage 147, 2017.
    .. [2] X. Chen et al., "Filter bank canonical correlation analysis ...", J. Neural Eng.
       12(4), 2015.
    """

    _requires_y = True

    def __init__(self, *, sfreq=256.0, freqs=DEFAULT_FREQS, n_harmonics=3, n_bands=3,
                 bands=None, n_cca=2, n_filters=2, classifier="logreg", C=0.003,
                 window_s=None, augment_step_s=0.5, window_start_s=0.0):
        self.sfreq = sfreq
        self.freqs = freqs
        self.n_harmonics = n_harmonics
        self.n_bands = n_bands
        self.bands = bands
        self.n_cca = n_cca
        self.n_filters = n_filters
        self.classifier = classifier
        self.C = C
        self.window_s = window_s
        self.augment_step_s = augment_step_s
        self.window_start_s = window_start_s

    def _default_bands(self) -> np.ndarray:
        fmin, fmax = float(self.freqs_.min()), float(self.freqs_.max())
        hi = min(self.n_harmonics * fmax + 1.0, 0.45 * self.sfreq_)
        lows = [max(1.0, fmin - 2.0 + 8.0 * m) for m in range(self.n_bands)]
        if lows[-1] > hi - 4.0:
            raise DecoderError(
                f"{self.n_bands} sub-bands starting every 8 Hz from {lows[0]:g} Hz do not fit "
                f"below {hi:g} Hz at sfreq={self.sfreq_:g} Hz: lower n_bands or pass bands."
            )
        return np.array([[lo, hi] for lo in lows])

    # -- caches ----------------------------------------------------------------------------
    def _restore(self) -> None:
        self._fb = FilterBankCache(design_bands(self.bands_, self.sfreq_))
        self._qy = {}

    def _bases(self, n: int) -> np.ndarray:
        if not hasattr(self, "_fb"):
            self._restore()
        qy = self._qy.get(n)
        if qy is None:
            qy = reference_bases(self.freqs_, self.sfreq_, n, self.n_harmonics)
            self._qy[n] = qy
        return qy

    # -- features --------------------------------------------------------------------------
    def _bandpassed(self, X):
        Xb = self._fb.apply(X)
        return Xb - Xb.mean(axis=-1, keepdims=True)

    def _cca_features(self, Xb, qy):
        rho = canonical_correlations(Xb, qy, self.n_cca)  # (m,t,f,c)
        return np.moveaxis(rho, 0, 1).reshape(Xb.shape[1], -1)

    def _ress_features(self, X1, qy):
        Z = self.filters_.T @ X1  # (t, q, n)
        tot = np.einsum("tqn,tqn->tq", Z, Z) + 1e-300
        n_f, n, n_r = qy.shape
        proj = Z @ qy.transpose(1, 0, 2).reshape(n, n_f * n_r)  # (t, q, f * r)
        proj = proj.reshape(*proj.shape[:2], n_f, n_r)
        frac = np.einsum("tqfr,tqfr->tqf", proj, proj) / tot[:, :, None]
        frac = np.clip(frac, 1e-6, 1 - 1e-6)
        return np.log(frac / (1 - frac)).reshape(len(X1), -1)

    def _features(self, X):
        qy = self._bases(X.shape[-1])
        Xb = self._bandpassed(X)
        feats = [self._cca_features(Xb, qy)] if self.n_cca else []
        if self.n_filters:
            feats.extend(self._ress_features(Xb[m], qy) for m in range(Xb.shape[0]))
        return np.concatenate(feats, axis=1)

    # -- fit / predict ---------------------------------------------------------------------
    def fit(self, X, y):
        """Fit spatial filters and the classifier on calibration windows.

        Parameters
        ----------
        X : ndarray, shape (n_trials, n_channels, n_samples)
            Raw EEG windows, or longer epochs when ``window_s`` is set (cut into training
            windows every ``augment_step_s``).
        y : array-like, shape (n_trials,)
            Labels: frequencies (``13``, ``"13.0Hz"``) and optionally ``"rest"``.

        Returns
        -------
        self : object
        """
        X, yi = self._validate_fit_data(X, y)
        check_positive_int(self.n_harmonics, "n_harmonics")
        check_positive_int(self.n_bands, "n_bands")
        for name in ("n_cca", "n_filters"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"'{name}' must be a non-negative integer, got {v!r}.")
        if self.classifier not in ("logreg", "lda"):
            raise ValueError(
                f"'classifier' must be 'logreg' or 'lda', got {self.classifier!r} instead."
            )
        if isinstance(self.C, bool) or not isinstance(self.C, (int, float)) or not self.C > 0:
            raise ValueError(f"'C' must be a positive number, got {self.C!r} instead.")
        if not (self.n_cca or self.n_filters):
            raise ValueError("'n_cca' and 'n_filters' are both 0: the decoder has no features.")
        n_win = window_samples(self.window_s, self.sfreq_)
        if n_win is not None:
            X, yi = training_windows(X, yi, n_win, self.augment_step_s, self.sfreq_)
            self.n_samples_ = int(X.shape[2])
        self.bands_ = (self._default_bands() if self.bands is None
                       else np.asarray(self.bands, float).reshape(-1, 2))
        self._restore()
        qy = self._bases(self.n_samples_)
        Xb = self._bandpassed(X)
        X1 = Xb[0] / np.sqrt(np.einsum("tcn,tcn->t", Xb[0], Xb[0]))[:, None, None]
        R = np.einsum("tcn,tdn->cd", X1, X1)
        filters = []
        nf = min(self.n_filters, self.n_channels_)
        for k, col in enumerate(self._target_cols):
            if not nf:
                break
            Xk = X1[yi == col] if np.any(yi == col) else X1
            P = np.einsum("tcn,nr->tcr", Xk, qy[k])
            S = np.einsum("tcr,tdr->cd", P, P)
            filters.append(_ress_filters(S, R, nf))
        self.filters_ = (np.concatenate(filters, axis=1) if filters
                         else np.zeros((self.n_channels_, 0)))
        F = [self._cca_features(Xb, qy)] if self.n_cca else []
        if nf:
            F.extend(self._ress_features(Xb[m], qy) for m in range(Xb.shape[0]))
        F = np.concatenate(F, axis=1)
        if self.classifier == "lda":
            self.coef_, self.intercept_ = fit_lda(F, yi, len(self.classes_))
        else:
            self.coef_, self.intercept_ = fit_logreg(F, yi, len(self.classes_), float(self.C))
        return self

    def decision_function(self, X) -> np.ndarray:
        """Return class log-posteriors ``(n_trials, n_classes)`` in ``classes_`` order."""
        X = self._check_input(X)
        X = decoding_window(X, window_samples(self.window_s, self.sfreq_), self.window_start_s,
                            self.sfreq_)
        return log_softmax(self._features(X) @ self.coef_.T + self.intercept_)

    def predict_proba(self, X) -> np.ndarray:
        """Return class probabilities ``(n_trials, n_classes)`` in ``classes_`` order."""
        return np.exp(self.decision_function(X))
