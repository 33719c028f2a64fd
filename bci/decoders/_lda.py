"""Shrinkage linear discriminant analysis kept as plain arrays (serialisable without pickle)."""

from __future__ import annotations

import numpy as np
from sklearn.covariance import ledoit_wolf


def fit_lda(F: np.ndarray, y: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Fit a Ledoit-Wolf shrinkage LDA with equal priors.

    Parameters
    ----------
    F : ndarray, shape (n_samples, n_features)
        Features.
    y : ndarray of int, shape (n_samples,)
        Class indices ``0..n_classes-1``; every class must occur.
    n_classes : int
        Number of classes.

    Returns
    -------
    coef : ndarray, shape (n_classes, n_features)
    intercept : ndarray, shape (n_classes,)
        ``F @ coef.T + intercept`` are the class log-posteriors up to a common constant.
    """
    means = np.stack([F[y == k].mean(axis=0) for k in range(n_classes)])
    resid = F - means[y]
    cov, _ = ledoit_wolf(resid, assume_centered=True)
    cov = cov + 1e-10 * np.trace(cov) / max(cov.shape[0], 1) * np.eye(cov.shape[0])
    coef = np.linalg.solve(cov, means.T).T
    intercept = -0.5 * np.einsum("kf,kf->k", coef, means) - np.log(n_classes)
    return coef, intercept


def log_softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax."""
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def fit_logreg(
    F: np.ndarray, y: np.ndarray, n_classes: int, C: float
) -> tuple[np.ndarray, np.ndarray]:
    """Fit an L2 multinomial logistic regression on standardised features.

    Returns ``coef (n_classes, n_features)`` and ``intercept (n_classes,)`` acting on the
    raw features, so ``log_softmax(F @ coef.T + intercept)`` are the class log-posteriors.
    """
    from sklearn.linear_model import LogisticRegression

    mu = F.mean(axis=0)
    sd = F.std(axis=0) + 1e-12
    lr = LogisticRegression(C=C, max_iter=2000).fit((F - mu) / sd, y)
    coef = lr.coef_ / sd
    intercept = lr.intercept_ - coef @ mu
    if n_classes == 2 and coef.shape[0] == 1:  # binary: logits (0, z)
        coef = np.vstack([np.zeros_like(coef), coef])
        intercept = np.concatenate([[0.0], intercept])
    return coef, intercept
