"""Task-related component analysis (Nakanishi et al. 2018), with ensemble and filter bank."""

from __future__ import annotations

import numpy as np
from scipy.linalg import eigh

from ._template import TemplateDecoder, _corr_flat
from .cca import DEFAULT_FREQS


def trca_filters(Xk: np.ndarray, n_components: int) -> np.ndarray:
    """TRCA spatial filters ``(n_channels, n_components)`` of one class's centred trials."""
    s_all = Xk.sum(axis=0)
    S = s_all @ s_all.T
    Q = np.einsum("tcn,tdn->cd", Xk, Xk)
    S = S - Q  # sum over i != j of X_i X_j^T
    Q = Q + 1e-9 * np.trace(Q) / len(Q) * np.eye(len(Q))
    w, v = eigh(S, Q)
    return v[:, ::-1][:, :n_components]


class TRCA(TemplateDecoder):
    """TRCA and ensemble TRCA (eTRCA) with a filter bank (Nakanishi et al. 2018).

    For each target and sub-band, TRCA learns spatial filters that maximise the
    reproducibility of the trials, and a template (the trial average). A window's score for
    target ``k`` is the correlation of the spatially filtered window with the filtered
    template, summed over sub-bands with weights ``m^-a + b``. With ``ensemble=True`` the
    filters of all targets are used together (eTRCA).

    Templates assume the SSVEP is phase-locked to the window start (screen stimuli with
    marked onsets). On free-running lights (random phase) TRCA scores at chance.

    Parameters
    ----------
    sfreq : float, default=256.0
        Sampling rate in Hz.
    freqs : sequence of float, default=(13.0, 17.0, 21.0)
        Stimulus frequencies in Hz, for the default filter bank; the labels of ``y`` name the
        targets (``13``, ``"13.0Hz"``; ``"rest"`` = no-control).
    ensemble : bool, default=True
        Use every target's filters together (eTRCA).
    n_components : int, default=1
        Filters per target.
    n_bands : int, default=3
        Sub-bands when ``bands`` is None (see :class:`FBCCA`).
    bands : array-like, shape (n_bands, 2) | None, default=None
        Explicit sub-bands in Hz.
    a, b : float, default=1.25, 0.25
        Sub-band weights ``m^-a + b``.

    Attributes
    ----------
    classes_, freqs_, rest_index_ : see :class:`SSVEPCCA`.
    filters_ : ndarray, shape (n_bands, n_targets, n_channels, n_components)
    templates_ : ndarray, shape (n_bands, n_targets, n_channels, n_samples)

    References
    ----------
    .. [1] M. Nakanishi, Y. Wang, X. Chen, Y.-T. Wang, X. Gao, T.-P. Jung, "Enhancing
       detection of SSVEPs for a high-speed brain speller using task-related component
       analysis", IEEE TBME 65(1), 2018.
    """

    _model_keys = ("filters", "templates")

    def __init__(self, *, sfreq=256.0, freqs=DEFAULT_FREQS, ensemble=True, n_components=1,
                 n_bands=3, bands=None, a=1.25, b=0.25):
        self.sfreq = sfreq
        self.freqs = freqs
        self.ensemble = ensemble
        self.n_components = n_components
        self.n_bands = n_bands
        self.bands = bands
        self.a = a
        self.b = b

    def _learn(self, Xb: np.ndarray, ti: np.ndarray) -> dict:
        n_t = int(ti.max()) + 1
        filters = np.stack([
            np.stack([trca_filters(Xb[m, ti == k], self.n_components) for k in range(n_t)])
            for m in range(Xb.shape[0])
        ])
        templates = np.stack([
            np.stack([Xb[m, ti == k].mean(axis=0) for k in range(n_t)])
            for m in range(Xb.shape[0])
        ])
        return {"filters": filters, "templates": templates}

    def _score(self, Xb: np.ndarray, model: dict) -> np.ndarray:
        W, T = model["filters"], model["templates"]  # (m,k,c,p), (m,k,c,n)
        if self.ensemble:
            Wm = W.transpose(0, 2, 1, 3).reshape(W.shape[0], W.shape[2], -1)  # (m,c,k*p)
            Y = np.einsum("mtcn,mcq->mtqn", Xb, Wm)  # (m,t,q,n)
            TT = np.einsum("mkcn,mcq->mkqn", T, Wm)  # (m,k,q,n)
            a = Y.reshape(Y.shape[0], Y.shape[1], 1, -1)
            b = TT.reshape(TT.shape[0], 1, TT.shape[1], -1)
            return _corr_flat(a, b)
        Y = np.einsum("mtcn,mkcp->mtkpn", Xb, W)
        TT = np.einsum("mkcn,mkcp->mkpn", T, W)
        a = Y.reshape(*Y.shape[:3], -1)
        b = TT.reshape(TT.shape[0], 1, TT.shape[1], -1)
        return _corr_flat(a, b)
