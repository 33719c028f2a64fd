"""Task-discriminant component analysis (Liu et al. 2021)."""

from __future__ import annotations

import numpy as np
from scipy.linalg import eigh

from ._base import check_positive_int
from ._references import sincos_references
from ._template import TemplateDecoder, _corr_flat
from .cca import DEFAULT_FREQS


class TDCA(TemplateDecoder):
    """TDCA: delay-embedded, reference-projected discriminant spatial patterns.

    Each window ``X`` is augmented with ``n_delays`` delayed copies (shifted inside the
    window, zero-filled at the end, so the decoder needs no samples beyond the window), and
    concatenated in time with its projection onto the sine/cosine reference subspace of a
    target. Discriminant spatial patterns (between- against within-class scatter) give the
    filters; the score of target ``k`` is the correlation of the filtered, ``k``-projected
    window with the class template, summed over sub-bands with weights ``m^-a + b``.
    Phase-locked stimuli only (chance level on free-running lights).

    Parameters
    ----------
    sfreq : float, default=256.0
        Sampling rate in Hz.
    freqs : sequence of float, default=(13.0, 17.0, 21.0)
        Stimulus frequencies in Hz for the default filter bank; ``y`` labels name targets.
    n_delays : int, default=4
        Delayed copies (samples 1..n_delays).
    n_harmonics : int, default=3
        Harmonics of the projection references.
    n_components : int, default=4
        Discriminant filters kept.
    n_bands, bands, a, b : see :class:`TRCA`.

    Attributes
    ----------
    classes_, freqs_, rest_index_ : see :class:`SSVEPCCA`.
    filters_ : ndarray, shape (n_bands, n_channels * (n_delays + 1), n_components)
    templates_ : ndarray, shape (n_bands, n_targets, n_components, 2 * n_samples)
    proj_ : ndarray, shape (n_targets, n_samples, 2 * n_harmonics)
        Orthonormal bases of the reference subspaces.

    References
    ----------
    .. [1] B. Liu, X. Chen, N. Shi, Y. Wang, S. Gao, X. Gao, "Improving the performance of
       individual-calibration SSVEP-BCI by task-discriminant component analysis", IEEE TNSRE
       29, 2021.
    """

    _model_keys = ("filters", "templates")

    def __init__(self, *, sfreq=256.0, freqs=DEFAULT_FREQS, n_delays=4, n_harmonics=3,
                 n_components=4, n_bands=3, bands=None, a=1.25, b=0.25):
        self.sfreq = sfreq
        self.freqs = freqs
        self.n_delays = n_delays
        self.n_harmonics = n_harmonics
        self.n_components = n_components
        self.n_bands = n_bands
        self.bands = bands
        self.a = a
        self.b = b

    def _check_params(self) -> None:
        super()._check_params()
        check_positive_int(self.n_harmonics, "n_harmonics")
        if isinstance(self.n_delays, bool) or not isinstance(self.n_delays, int) or self.n_delays < 0:
            raise ValueError(f"'n_delays' must be a non-negative integer, got {self.n_delays!r}.")

    def _precompute(self, n_samples: int) -> None:
        super()._precompute(n_samples)
        refs = sincos_references(self.freqs_, self.sfreq_, n_samples, self.n_harmonics)
        q, r = np.linalg.qr(refs)
        keep = np.abs(np.diagonal(r, axis1=1, axis2=2)) > 1e-8
        self.proj_ = q * keep[:, None, :]

    def _embed(self, Xb: np.ndarray) -> np.ndarray:
        """Delay embedding (..., c, n) -> (..., c * (L + 1), n)."""
        n = Xb.shape[-1]
        parts = [Xb]
        for lag in range(1, self.n_delays + 1):
            sh = np.zeros_like(Xb)
            sh[..., : n - lag] = Xb[..., lag:]
            parts.append(sh)
        return np.concatenate(parts, axis=-2)

    def _augment(self, Z: np.ndarray, k: int) -> np.ndarray:
        """Concatenate ``Z`` with its projection on target ``k``'s references (time axis)."""
        q = self.proj_[k]
        return np.concatenate([Z, (Z @ q) @ q.T], axis=-1)

    def _learn(self, Xb: np.ndarray, ti: np.ndarray) -> dict:
        n_t = int(ti.max()) + 1
        E = self._embed(Xb)  # (m, t, C, n)
        filters, templates = [], []
        for m in range(E.shape[0]):
            A = np.stack([self._augment(E[m, i], ti[i]) for i in range(E.shape[1])])
            means = np.stack([A[ti == k].mean(axis=0) for k in range(n_t)])
            grand = means.mean(axis=0)
            Db = means - grand
            Sb = np.einsum("kcn,kdn->cd", Db, Db) / n_t
            Dw = A - means[ti]
            Sw = np.einsum("tcn,tdn->cd", Dw, Dw) / len(A)
            Sw = Sw + 1e-6 * np.trace(Sw) / len(Sw) * np.eye(len(Sw))
            _, v = eigh(Sb, Sw)
            W = v[:, ::-1][:, : self.n_components]
            filters.append(W)
            templates.append(np.einsum("kcn,cp->kpn", means, W))
        return {"filters": np.stack(filters), "templates": np.stack(templates)}

    def _score(self, Xb: np.ndarray, model: dict) -> np.ndarray:
        W, T = model["filters"], model["templates"]  # (m,C,p), (m,k,p,2n)
        E = self._embed(Xb)
        Z = np.einsum("mtcn,mcp->mtpn", E, W)  # (m,t,p,n)
        out = np.empty((Xb.shape[0], Xb.shape[1], T.shape[1]))
        for k in range(T.shape[1]):
            Ak = self._augment(Z, k)  # (m,t,p,2n)
            out[:, :, k] = _corr_flat(
                Ak.reshape(*Ak.shape[:2], -1), T[:, k].reshape(T.shape[0], 1, -1)
            )
        return out
