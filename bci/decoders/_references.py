"""Sine/cosine reference signals and their QR factors (Lin et al. 2006)."""

from __future__ import annotations

import numpy as np

from ..errors import DecoderError


def check_freqs(freqs, sfreq: float) -> np.ndarray:
    """Return ``freqs`` as a 1-D float array, checked against the Nyquist frequency."""
    f = np.atleast_1d(np.asarray(freqs, dtype=float))
    if f.ndim != 1 or f.size == 0 or not np.all(np.isfinite(f)) or np.any(f <= 0):
        raise ValueError(f"'freqs' must be positive stimulus frequencies in Hz, got {freqs!r}.")
    if np.any(f >= sfreq / 2.0):
        raise DecoderError(
            f"The stimulus frequencies {f.tolist()} Hz need a sampling rate above "
            f"{2 * f.max():g} Hz, but sfreq={sfreq:g} Hz: record at a higher rate or drop "
            "the frequencies above Nyquist."
        )
    return f


def sincos_references(
    freqs: np.ndarray, sfreq: float, n_samples: int, n_harmonics: int, phases=None
) -> np.ndarray:
    """Return references ``(n_freqs, n_samples, 2 * n_harmonics)``.

    Columns are ``sin(2 pi h f t + h phi), cos(...)`` for ``h = 1..n_harmonics``, with
    ``t = arange(n_samples) / sfreq``. Harmonics at or above Nyquist are replaced by zeros
    (they carry no information and are dropped by the QR step).
    """
    t = np.arange(n_samples) / sfreq
    phases = np.zeros(len(freqs)) if phases is None else np.asarray(phases, dtype=float)
    out = np.zeros((len(freqs), n_samples, 2 * n_harmonics))
    for i, (f, ph) in enumerate(zip(freqs, phases)):
        for h in range(1, n_harmonics + 1):
            if h * f >= sfreq / 2.0:
                continue
            arg = 2 * np.pi * h * f * t + h * ph
            out[i, :, 2 * (h - 1)] = np.sin(arg)
            out[i, :, 2 * (h - 1) + 1] = np.cos(arg)
    return out


def reference_bases(
    freqs: np.ndarray, sfreq: float, n_samples: int, n_harmonics: int
) -> np.ndarray:
    """Return orthonormal bases ``(n_freqs, n_samples, 2 * n_harmonics)`` of the centred references.

    Columns belonging to harmonics above Nyquist are zero, so they add nothing to the
    canonical correlations.
    """
    refs = sincos_references(freqs, sfreq, n_samples, n_harmonics)
    refs -= refs.mean(axis=1, keepdims=True)
    q, r = np.linalg.qr(refs)
    keep = np.abs(np.diagonal(r, axis1=1, axis2=2)) > 1e-8 * np.sqrt(n_samples)
    return q * keep[:, None, :]


def canonical_correlations(Xc: np.ndarray, qy: np.ndarray, n_components: int = 1) -> np.ndarray:
    """Canonical correlations between windows and references.

    With ``C = X X^T = L L^T`` (Cholesky) and orthonormal reference bases ``Q``, the
    canonical correlations are the singular values of ``L^-1 X Q``; this avoids a QR of
    every window and batches all windows, bands and targets in a few BLAS calls.

    Parameters
    ----------
    Xc : ndarray, shape (..., n_channels, n_samples)
        Windows, already centred over time.
    qy : ndarray, shape (n_freqs, n_samples, n_ref)
        Orthonormal reference bases from :func:`reference_bases`.
    n_components : int
        Number of leading correlations to return.

    Returns
    -------
    rho : ndarray, shape (..., n_freqs, n_components)
    """
    n_f, n, n_r = qy.shape
    q = qy.transpose(1, 0, 2).reshape(n, n_f * n_r)
    C = Xc @ np.swapaxes(Xc, -1, -2)
    n_c = C.shape[-1]
    tr = np.trace(C, axis1=-2, axis2=-1)[..., None, None]
    C = C + (1e-10 * tr / n_c + 1e-300) * np.eye(n_c)
    L = np.linalg.cholesky(C)
    M = np.linalg.solve(L, Xc @ q)  # (..., c, f * r)
    M = np.swapaxes(M.reshape(*M.shape[:-1], n_f, n_r), -3, -2)  # (..., f, c, r)
    s = np.linalg.svd(M, compute_uv=False)
    return np.clip(s[..., :n_components], 0.0, 1.0)
