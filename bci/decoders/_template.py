"""Shared parts of the phase-locked template decoders (TRCA, TDCA)."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import StratifiedKFold

from ._base import SSVEPDecoder, check_positive_int
from ._filters import FilterBankCache, default_bands, design_bands


def _corr_flat(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation over the last axis after flattening: a (..., L), b (..., L)."""
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    num = np.sum(a * b, axis=-1)
    den = np.sqrt(np.sum(a * a, axis=-1) * np.sum(b * b, axis=-1)) + 1e-300
    return num / den


class TemplateDecoder(SSVEPDecoder):
    """Base for calibrated template decoders with an optional filter bank.

    Subclasses implement ``_learn(Xb, yi) -> dict of arrays`` and
    ``_score(Xb, model) -> (n_trials, n_targets)`` per sub-band (``Xb`` is
    ``(n_bands, n_trials, n_channels, n_samples)``); fitted arrays are stored as attributes
    ``<name>_`` so :func:`bci.decoders.to_state` can save them.
    """

    _requires_y = True
    _model_keys: tuple[str, ...] = ()
    _proba_scale = 10.0

    def _check_params(self) -> None:
        check_positive_int(self.n_bands, "n_bands")
        check_positive_int(self.n_components, "n_components")

    def _precompute(self, n_samples: int) -> None:
        if self.bands is None:
            self.bands_ = default_bands(self.freqs_, self.sfreq_, self.n_bands)
        else:
            self.bands_ = np.asarray(self.bands, dtype=float).reshape(-1, 2)
        m = np.arange(1, len(self.bands_) + 1)
        self.weights_ = m ** (-float(self.a)) + float(self.b)
        self._restore()

    def _restore(self) -> None:
        self._fb = FilterBankCache(design_bands(self.bands_, self.sfreq_))
        self._fb.get(self.n_samples_)

    def _filtered(self, X: np.ndarray) -> np.ndarray:
        if not hasattr(self, "_fb"):
            self._restore()
        if X.shape[-1] != self.n_samples_:
            raise ValueError(
                f"{type(self).__name__} learned templates on windows of {self.n_samples_} "
                f"samples but got {X.shape[-1]}; refit on windows of the length you decode."
            )
        Xb = self._fb.apply(X)
        return Xb - Xb.mean(axis=-1, keepdims=True)

    def _fit_targets(self, X: np.ndarray, yi: np.ndarray) -> None:
        # map class indices to target indices 0..n_targets-1
        ti = self._to_target_index(yi)
        model = self._learn(self._filtered(X), ti)
        for k, v in model.items():
            setattr(self, k + "_", v)

    def _to_target_index(self, yi: np.ndarray) -> np.ndarray:
        lut = np.full(len(self.classes_), -1)
        lut[self._target_cols] = np.arange(len(self._target_cols))
        return lut[yi]

    def _model(self) -> dict:
        return {k: getattr(self, k + "_") for k in self._model_keys}

    def _target_scores(self, X: np.ndarray) -> np.ndarray:
        rho = self._score(self._filtered(X), self._model())  # (bands, trials, targets)
        return np.einsum("m,mtf->tf", self.weights_, rho)

    def _training_scores(self, X: np.ndarray, yi: np.ndarray) -> np.ndarray:
        """Out-of-fold target scores for target windows (templates overfit their own trials)."""
        Xb = self._filtered(X)
        s = np.einsum("m,mtf->tf", self.weights_, self._score(Xb, self._model()))
        tmask = yi != self.rest_index_
        idx = np.flatnonzero(tmask)
        ti = self._to_target_index(yi[tmask])
        n_min = np.bincount(ti).min()
        if n_min >= 2:
            skf = StratifiedKFold(min(3, n_min), shuffle=True, random_state=0)
            for tr, te in skf.split(idx, ti):
                model = self._learn(Xb[:, idx[tr]], ti[tr])
                s[idx[te]] = np.einsum("m,mtf->tf", self.weights_,
                                       self._score(Xb[:, idx[te]], model))
        return s
