"""A population decoder: RESS-FBCCA trained on many users, adapted to one with a minute of data.

:class:`PopulationRessFBCCA` has the features and classifier of
:class:`bci.decoders.RessFBCCA` (filter-bank canonical correlations and RESS power
fractions, multinomial logistic regression with a rest class). Its *prior* is that decoder
trained on the pooled calibration windows of many users, kept as sufficient statistics:

- the mean unit-power channel covariance ``R`` and, per target, the mean covariance ``S_k`` of
  the windows' projections on that target's sine/cosine references (the RESS filters are the
  generalised eigenvectors of ``(S_k, R)``);
- the features' mean and standard deviation, and the logistic regression's coefficients on
  the standardised features.

``fit(X, None)`` keeps the prior as it is: a decoder with a rest class that needs no
calibration. ``fit(X, y)`` adapts it to the user: the filters come from the user's
covariances blended with the prior's as ``n0`` pseudo-windows, and the logistic regression
is fitted to the user's windows with a Gaussian prior centred on the population's
coefficients (maximum a posteriori), so a minute of data moves it as far as the data
warrant. ``prior=None`` trains a prior from ``(X, y)`` (windows of many users).

Priors are ``.npz`` files (read with ``allow_pickle=False``): arrays ``R``, ``S``, ``mu``,
``sd``, ``W0``, ``b0`` and a JSON string ``meta`` (frequencies, classes, channels, sampling
rate, window length, feature parameters, provenance); a prior decodes windows of the length
it was trained on. ``"kalunga2016"`` names the priors shipped with the package (one per
window length), trained on the Kalunga 2016 recordings (13, 17, 21 Hz LEDs; Oz, O1, O2, PO3,
POz, PO7, PO8, PO4 at 256 Hz) by ``scripts/train_population.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from sklearn.utils.validation import check_is_fitted

from ..errors import DecoderError
from ..labels import freq_label, label_to_freq
from ._base import _check_sfreq, check_positive_int, check_X
from ._lda import fit_logreg
from ._windows import training_windows, window_samples
from .cca import DEFAULT_FREQS
from .ress import RessFBCCA, _ress_filters

PRIOR_DIR = Path(__file__).resolve().parent / "priors"
#: Shipped priors: name -> files, one per window length (``<name>_w<seconds>.npz``).
SHIPPED = ("kalunga2016",)
_ARRAYS = ("R", "S", "mu", "sd", "W0", "b0")
#: What ``ssvep-exo run`` decodes with, without a subject profile, when the lights'
#: frequencies are those of this shipped prior: the prior, the window, and the decision
#: policy (its threshold absolute, on the prior's log-posterior evidence: the model of rest
#: of the dev users' sessions, each scored by a prior trained without that user, times a
#: margin), window and margin chosen leave-one-subject-out so that the budget held for each
#: of the other users, not only pooled over them (``scripts/loso_defaults.py population``,
#: docs/evaluation.md).
NO_CALIBRATION = {
    "prior": "kalunga2016",
    "window_s": 2.0,
    "policy": {"threshold": 52.863, "drift": 0.0, "clip": 26.431, "horizon_s": 6.0,
               "refractory_s": 1.0, "release_s": 3.0},
}


def _labels(values) -> list[str]:
    """Canonical labels (``"13.0Hz"``, ``"rest"``) of class values."""
    out = []
    for v in values:
        v = v.item() if isinstance(v, np.generic) else v
        f = label_to_freq(v)
        out.append("rest" if f is None else freq_label(f))
    return out


def shipped_prior(name: str, window_s: float) -> Path:
    """The shipped prior file of ``name`` for windows of ``window_s`` seconds."""
    files = {float(p.stem.rsplit("_w", 1)[1]): p for p in PRIOR_DIR.glob(f"{name}_w*.npz")}
    for w, p in files.items():
        if abs(w - window_s) < 0.05:
            return p
    raise DecoderError(
        f"The population prior {name!r} exists for windows of "
        f"{', '.join(f'{w:g}' for w in sorted(files)) or 'no length'} s, not {window_s:g} s: "
        "use one of those window lengths or calibrate a decoder.")


def no_calibration_prior(freqs, channels=()) -> tuple[dict | None, str]:
    """Whether the no-calibration prior (:data:`NO_CALIBRATION`) fits lights at ``freqs``.

    Parameters
    ----------
    freqs : sequence of float
        The lights' frequencies (Hz).
    channels : sequence of str
        Channels configured explicitly (empty: the prior's are used).

    Returns
    -------
    meta : dict | None
        The prior's metadata (``ch_names``, ``classes``, ``sfreq``, ...) when it fits.
    reason : str
        Why it fits or not (for the log).
    """
    name, w = NO_CALIBRATION["prior"], float(NO_CALIBRATION["window_s"])
    meta = load_prior(name, w)["meta"]
    prior_freqs = sorted(f for f in (label_to_freq(c) for c in meta["classes"]) if f)
    own = sorted(float(f) for f in freqs)
    shown = ", ".join(f"{f:g}" for f in prior_freqs)
    if len(own) != len(prior_freqs) or not np.allclose(own, prior_freqs):
        return None, (f"the lights ({', '.join(f'{f:g}' for f in own)} Hz) are not those of "
                      f"the population prior {name!r} ({shown} Hz)")
    if channels and [str(c) for c in channels] != list(meta["ch_names"]):
        return None, (f"decoder.channels ({', '.join(map(str, channels))}) are not the "
                      f"population prior's ({', '.join(meta['ch_names'])})")
    return meta, (f"the lights ({shown} Hz) are those of the population prior {name!r} "
                  f"(trained on {len(meta.get('subjects', []))} users, rest class included)")


def load_prior(prior: str | os.PathLike | dict, window_s: float | None = None) -> dict:
    """Read a prior: a shipped name (``"kalunga2016"``, with ``window_s``), an ``.npz`` path
    or a dict.

    Returns
    -------
    prior : dict
        The arrays of the module doc plus ``meta`` (a dict).
    """
    if isinstance(prior, dict):
        missing = [k for k in (*_ARRAYS, "meta") if k not in prior]
        if missing:
            raise DecoderError(f"The population prior lacks {missing}.")
        return prior
    if str(prior) in SHIPPED:
        if window_s is None:
            raise ValueError("A shipped prior is chosen by window length: give window_s.")
        path = shipped_prior(str(prior), window_s)
    else:
        path = Path(prior)
    if not path.is_file():
        raise DecoderError(
            f"No population prior {str(prior)!r}: name a shipped one ({', '.join(SHIPPED)}) "
            "or an .npz written by PopulationRessFBCCA.save_prior.")
    try:
        with np.load(path, allow_pickle=False) as z:
            out = {k: np.asarray(z[k], float) for k in _ARRAYS}
            out["meta"] = json.loads(str(z["meta"]))
    except (OSError, KeyError, ValueError) as exc:
        raise DecoderError(f"Cannot read the population prior {str(path)!r}: {exc}. Re-create "
                           "it with scripts/train_population.py.") from exc
    return out


def map_logreg(Z: np.ndarray, y: np.ndarray, W0: np.ndarray, b0: np.ndarray, C: float,
               sample_weight: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression with the Gaussian prior ``0.5 ||(W, b) - (W0, b0)||^2``.

    Minimises ``C * sum_i w_i * logloss_i + 0.5 * ||W - W0||^2 + 0.5 * ||b - b0||^2``
    (scikit-learn's convention for ``C``), starting from the prior. Classes absent from
    ``y`` keep the prior's coefficients, and the log-loss is that of the classes present
    (the softmax over them): data without, say, rest windows say nothing about rest.

    Parameters
    ----------
    Z : ndarray, shape (n, d)
        Standardised features.
    y : ndarray of int, shape (n,)
        Class indices ``0..k-1``.
    W0 : ndarray, shape (k, d)
    b0 : ndarray, shape (k,)
    C : float
    sample_weight : ndarray | None

    Returns
    -------
    W : ndarray, shape (k, d)
    b : ndarray, shape (k,)
    """
    k, d = W0.shape
    present = np.unique(y)
    m = len(present)
    yi = np.searchsorted(present, y)
    Y = np.eye(m)[yi]
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
    W0p, b0p = W0[present], b0[present]

    def objective(p):
        W = p[: m * d].reshape(m, d)
        b = p[m * d:]
        L = Z @ W.T + b
        L -= L.max(axis=1, keepdims=True)
        logP = L - np.log(np.exp(L).sum(axis=1, keepdims=True))
        G = (np.exp(logP) - Y) * w[:, None]
        f = (-C * np.sum(w * np.sum(Y * logP, axis=1)) + 0.5 * np.sum((W - W0p) ** 2)
             + 0.5 * np.sum((b - b0p) ** 2))
        return f, np.concatenate([(C * G.T @ Z + (W - W0p)).ravel(),
                                  C * G.sum(axis=0) + (b - b0p)])

    res = minimize(objective, np.concatenate([W0p.ravel(), b0p]), jac=True,
                   method="L-BFGS-B", options={"maxiter": 1000})
    W, b = W0.copy(), b0.copy()
    W[present] = res.x[: m * d].reshape(m, d)
    b[present] = res.x[m * d:]
    return W, b


class PopulationRessFBCCA(RessFBCCA):
    """RESS-FBCCA with a population prior: usable without calibration, adapted with a little.

    Parameters
    ----------
    sfreq, freqs, n_harmonics, n_bands, bands, n_cca, n_filters, C
        As :class:`bci.decoders.RessFBCCA`; with a prior, the feature parameters must be the
        prior's (the defaults are those of the shipped prior).
    window_s, augment_step_s, window_start_s
        As :class:`bci.decoders.RessFBCCA` (training windows cut from longer epochs); the
        windows must be as long as the prior's.
    prior : str | path-like | dict | None, default="kalunga2016"
        The population prior (see the module doc); None: ``fit(X, y)`` trains one.
    n0 : float, default=100
        Weight of the prior's covariances in the adapted spatial filters, in windows
        (100 was chosen leave-one-subject-out on the dev recordings among 100, 300 and 1000
        by scripts/population_curve.py; every held-out subject chose it).

    Attributes
    ----------
    classes_, freqs_, rest_index_, filters_, coef_, intercept_ : see :class:`RessFBCCA`.
    adapted_ : bool
        Whether the user's data adapted the prior.
    n_user_windows_ : int
        Windows the adaptation used (0: the prior as it is).
    prior_meta_ : dict
        The prior's metadata (channels, frequencies, provenance; stored as the JSON string
        ``prior_meta_json_``).
    """

    def __init__(self, *, sfreq=256.0, freqs=DEFAULT_FREQS, n_harmonics=3, n_bands=3,
                 bands=None, n_cca=2, n_filters=2, C=0.03, prior="kalunga2016", n0=100.0,
                 window_s=None, augment_step_s=0.5, window_start_s=0.0):
        super().__init__(sfreq=sfreq, freqs=freqs, n_harmonics=n_harmonics, n_bands=n_bands,
                         bands=bands, n_cca=n_cca, n_filters=n_filters, classifier="logreg",
                         C=C, window_s=window_s, augment_step_s=augment_step_s,
                         window_start_s=window_start_s)
        self.prior = prior
        self.n0 = n0

    @property
    def prior_meta_(self) -> dict:
        """The prior's metadata (channels, frequencies, provenance)."""
        check_is_fitted(self, "prior_meta_json_")
        return json.loads(self.prior_meta_json_)

    # -- statistics ------------------------------------------------------------------------
    def _unit_band0(self, Xb: np.ndarray) -> np.ndarray:
        return Xb[0] / np.sqrt(np.einsum("tcn,tcn->t", Xb[0], Xb[0]))[:, None, None]

    def _covariances(self, X1: np.ndarray, yi: np.ndarray, qy: np.ndarray):
        """Mean unit-power covariance, per-target projected covariances and window counts."""
        R = np.einsum("tcn,tdn->cd", X1, X1) / len(X1)
        S, counts = [], []
        for k, col in enumerate(self._target_cols):
            Xk = X1[yi == col]
            counts.append(len(Xk))
            if not len(Xk):
                S.append(np.zeros_like(R))
                continue
            P = np.einsum("tcn,nr->tcr", Xk, qy[k])
            S.append(np.einsum("tcr,tdr->cd", P, P) / len(Xk))
        return R, np.stack(S), np.asarray(counts, float)

    def _set_filters(self, R: np.ndarray, S: np.ndarray) -> None:
        nf = min(self.n_filters, self.n_channels_)
        self.filters_ = (np.concatenate([_ress_filters(Sk, R, nf) for Sk in S], axis=1)
                         if nf else np.zeros((self.n_channels_, 0)))

    def _check_common(self, X):
        self.sfreq_ = _check_sfreq(self.sfreq)
        check_positive_int(self.n_harmonics, "n_harmonics")
        check_positive_int(self.n_bands, "n_bands")
        if isinstance(self.C, bool) or not isinstance(self.C, (int, float)) or not self.C > 0:
            raise ValueError(f"'C' must be a positive number, got {self.C!r} instead.")
        if isinstance(self.n0, bool) or not isinstance(self.n0, (int, float)) or self.n0 < 0:
            raise ValueError(f"'n0' must be a non-negative number of windows, got {self.n0!r}.")
        return check_X(X)

    # -- fit ---------------------------------------------------------------------------------
    def fit(self, X, y=None):
        """Use the prior (``y`` None), adapt it to ``(X, y)``, or train a prior (``prior`` None).

        Parameters
        ----------
        X : ndarray, shape (n_trials, n_channels, n_samples)
            Raw EEG windows (with ``y`` None only the channel count is used).
        y : array-like, shape (n_trials,) | None
            Labels (frequencies and ``"rest"``), or None.

        Returns
        -------
        self : object
        """
        X = self._check_common(X)
        n_win = window_samples(self.window_s, self.sfreq_)
        if n_win is not None:  # the windows this decoder decodes, cut from longer epochs
            X, y = training_windows(X, y, n_win, self.augment_step_s, self.sfreq_)
        self.n_channels_, self.n_samples_ = int(X.shape[1]), int(X.shape[2])
        if self.prior is None:
            if y is None:
                raise ValueError("Training a population prior (prior=None) needs labels y.")
            return self._train(X, y)
        p = load_prior(self.prior, self.n_samples_ / self.sfreq_)
        self._adopt(p)
        self.prior_meta_json_ = json.dumps(p["meta"])
        self.adapted_, self.n_user_windows_ = False, 0
        if y is None:
            self.coef_ = p["W0"] / p["sd"]
            self.intercept_ = p["b0"] - self.coef_ @ p["mu"]
            self._set_filters(p["R"], p["S"])
            return self
        cls = _labels(self.classes_)
        given = _labels(np.asarray(y))
        unknown = sorted(set(given) - set(cls))
        if unknown:
            raise DecoderError(f"The labels {unknown} are not classes of the population prior "
                               f"({cls}).")
        yi = np.array([cls.index(lab) for lab in given])
        qy = self._bases(self.n_samples_)
        Xb = self._bandpassed(X)
        R_u, S_u, n_k = self._covariances(self._unit_band0(Xb), yi, qy)
        n0 = float(self.n0)
        a = len(X) / (len(X) + n0)
        R = a * R_u + (1 - a) * p["R"]
        n0k = n0 / max(len(S_u), 1)
        wk = (n_k / (n_k + n0k))[:, None, None] if n0k > 0 else np.ones((len(S_u), 1, 1))
        self._set_filters(R, wk * S_u + (1 - wk) * p["S"])
        Z = (self._features(X) - p["mu"]) / p["sd"]
        W, b = map_logreg(Z, yi, p["W0"], p["b0"], float(self.C))
        self.coef_ = W / p["sd"]
        self.intercept_ = b - self.coef_ @ p["mu"]
        self.adapted_, self.n_user_windows_ = True, int(len(X))
        return self

    def _adopt(self, p: dict) -> None:
        """Classes, bands and checks from the prior."""
        m = p["meta"]
        for name in ("n_harmonics", "n_cca", "n_filters"):
            if int(m[name]) != getattr(self, name):
                raise DecoderError(
                    f"The population prior was trained with {name}={m[name]}, this decoder has "
                    f"{name}={getattr(self, name)}: use the prior's.")
        if abs(float(m["window_s"]) - self.n_samples_ / self.sfreq_) > 0.05:
            raise DecoderError(
                f"The population prior was trained on {m['window_s']:g} s windows, the data "
                f"has {self.n_samples_ / self.sfreq_:g} s windows.")
        if int(m["n_channels"]) != self.n_channels_:
            raise DecoderError(
                f"The population prior was trained on {m['n_channels']} channels "
                f"({', '.join(m['ch_names'])}), the data has {self.n_channels_}: pass those "
                "channels in that order.")
        prior_freqs = sorted(label_to_freq(c) for c in m["classes"] if label_to_freq(c))
        own = sorted(float(f) for f in np.atleast_1d(self.freqs))
        if not np.allclose(prior_freqs, own):
            raise DecoderError(
                f"The population prior was trained for lights at {prior_freqs} Hz, the lights "
                f"here are at {own} Hz: calibrate a decoder for them instead.")
        self.classes_ = np.asarray(m["classes"])
        self.freqs_ = np.asarray(prior_freqs, float)
        self.rest_index_ = next((i for i, c in enumerate(m["classes"]) if c == "rest"), -1)
        self.bands_ = np.asarray(m["bands"], float)
        self._restore()

    def _train(self, X: np.ndarray, y) -> PopulationRessFBCCA:
        yi = self._setup_labels(y)
        self.bands_ = (self._default_bands() if self.bands is None
                       else np.asarray(self.bands, float).reshape(-1, 2))
        self._restore()
        qy = self._bases(self.n_samples_)
        Xb = self._bandpassed(X)
        R, S, _ = self._covariances(self._unit_band0(Xb), yi, qy)
        self._set_filters(R, S)
        F = self._features(X)
        mu, sd = F.mean(axis=0), F.std(axis=0) + 1e-12
        self.coef_, self.intercept_ = fit_logreg(F, yi, len(self.classes_), float(self.C))
        self.prior_ = {"R": R, "S": S, "mu": mu, "sd": sd, "W0": self.coef_ * sd,
                       "b0": self.intercept_ + self.coef_ @ mu}
        self.prior_meta_json_ = json.dumps({
            "classes": _labels(self.classes_), "bands": self.bands_.tolist(),
            "n_harmonics": self.n_harmonics, "n_cca": self.n_cca, "n_filters": self.n_filters,
            "C": float(self.C), "n_channels": self.n_channels_, "ch_names": [],
            "sfreq": self.sfreq_, "window_s": self.n_samples_ / self.sfreq_,
            "n_windows": int(len(X)),
        })
        self.adapted_, self.n_user_windows_ = False, 0
        return self

    def save_prior(self, path: str | os.PathLike, **meta) -> Path:
        """Write the prior trained by ``fit`` (``prior=None``) to an ``.npz``; ``meta`` (e.g.
        ``ch_names``, provenance) is stored with it."""
        check_is_fitted(self, "prior_")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, meta=np.asarray(json.dumps({**self.prior_meta_, **meta})),
                 **{k: np.asarray(v, float) for k, v in self.prior_.items()})
        return path
