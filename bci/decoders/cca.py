"""Training-free CCA (Lin et al. 2006) and filter-bank CCA (Chen et al. 2015)."""

from __future__ import annotations

import numpy as np

from ._base import SSVEPDecoder, check_positive_int
from ._filters import FilterBankCache, default_bands, design_bands
from ._references import canonical_correlations, check_freqs, reference_bases

DEFAULT_FREQS = (13.0, 17.0, 21.0)


class _CCAMixin:
    """Caches shared by the CCA-based decoders: filter matrices and reference bases."""

    def _bands_array(self) -> np.ndarray | None:
        raise NotImplementedError

    def _precompute(self, n_samples: int) -> None:
        bands = self._bands_array()
        self.bands_ = None if bands is None else np.asarray(bands, dtype=float)
        self._reset_cache()
        self._get_cache(n_samples)

    def _reset_cache(self) -> None:
        self._fb = None if self.bands_ is None else FilterBankCache(
            design_bands(self.bands_, self.sfreq_)
        )
        self._qy: dict[int, np.ndarray] = {}

    def _get_cache(self, n_samples: int) -> np.ndarray:
        if not hasattr(self, "_qy"):  # restored from state
            self._reset_cache()
        qy = self._qy.get(n_samples)
        if qy is None:
            qy = reference_bases(self.freqs_, self.sfreq_, n_samples, self.n_harmonics)
            self._qy[n_samples] = qy
            if self._fb is not None:
                self._fb.get(n_samples)
        return qy

    def _filtered(self, X: np.ndarray) -> np.ndarray:
        """Return centred, filtered windows ``(n_bands, n_trials, n_channels, n_samples)``."""
        Xb = X[None] if self._fb is None else self._fb.apply(X)
        return Xb - Xb.mean(axis=-1, keepdims=True)

    def _correlations(self, X: np.ndarray, n_components: int = 1) -> np.ndarray:
        """Canonical correlations ``(n_bands, n_trials, n_freqs, n_components)``."""
        qy = self._get_cache(X.shape[-1])
        return canonical_correlations(self._filtered(X), qy, n_components)


class SSVEPCCA(_CCAMixin, SSVEPDecoder):
    """Canonical correlation analysis with sine/cosine references (Lin et al. 2006).

    Training-free: the score of target ``f`` is the largest canonical correlation between
    the window and the references ``sin/cos(2 pi h f t)``, ``h = 1..n_harmonics``. Each window
    is band-pass filtered on its own (zero-phase, precomputed as a matrix). Phase-invariant.

    Parameters
    ----------
    sfreq : float, default=256.0
        Sampling rate of the windows in Hz.
    freqs : sequence of float, default=(13.0, 17.0, 21.0)
        Target stimulus frequencies in Hz, used when fitted without ``y``. With ``y``, the
        frequencies are read from the labels (``13``, ``"13.0Hz"``); ``"rest"`` is the
        no-control class.
    n_harmonics : int, default=2
        Number of harmonics in the references.
    band : tuple of float | "auto" | None, default="auto"
        Band-pass applied to each window: ``"auto"`` is ``min(freqs) - 3`` Hz to
        ``max(freqs) * n_harmonics + 3`` Hz (capped below Nyquist); None disables it.

    Attributes
    ----------
    classes_ : ndarray, shape (n_classes,)
        Class labels (the caller's labels, or ``freqs`` when fitted without ``y``).
    freqs_ : ndarray, shape (n_targets,)
        Frequency of every non-rest class, in ``classes_`` order.
    rest_index_ : int
        Column of ``"rest"`` in ``classes_``, or -1.
    bands_ : ndarray, shape (n_bands, 2) | None
        Filter band(s) in Hz.

    References
    ----------
    .. [1] Z. Lin, C. Zhang, W. Wu, X. Gao, "Frequency recognition based on canonical
       correlation analysis for SSVEP-based BCIs", IEEE TBME 53(12), 2006.
    """

    def __init__(self, *, sfreq=256.0, freqs=DEFAULT_FREQS, n_harmonics=2, band="auto"):
        self.sfreq = sfreq
        self.freqs = freqs
        self.n_harmonics = n_harmonics
        self.band = band

    def _check_params(self) -> None:
        check_positive_int(self.n_harmonics, "n_harmonics")

    def _bands_array(self):
        if self.band is None:
            return None
        if isinstance(self.band, str):
            if self.band != "auto":
                raise ValueError(f"'band' must be 'auto', None or (low, high), got {self.band!r}.")
            lo = max(1.0, float(self.freqs_.min()) - 3.0)
            hi = min(float(self.freqs_.max()) * self.n_harmonics + 3.0, 0.45 * self.sfreq_)
            return [[lo, hi]]
        return [list(map(float, self.band))]

    def _target_scores(self, X: np.ndarray) -> np.ndarray:
        return self._correlations(X)[0, :, :, 0]


class FBCCA(_CCAMixin, SSVEPDecoder):
    """Filter-bank CCA (Chen et al. 2015).

    Each window is split into ``n_bands`` sub-bands (zero-phase Butterworth band-passes,
    precomputed as matrices); the score of target ``f`` is ``sum_m w_m rho_m(f)^2`` with
    ``w_m = m^-a + b`` and ``rho_m`` the largest canonical correlation in sub-band ``m``.
    Training-free and phase-invariant.

    Parameters
    ----------
    sfreq : float, default=256.0
        Sampling rate in Hz.
    freqs : sequence of float, default=(13.0, 17.0, 21.0)
        Target stimulus frequencies in Hz (used without ``y``; with ``y`` the labels name the
        frequencies, ``"rest"`` is the no-control class).
    n_harmonics : int, default=2
        Harmonics in the references.
    n_bands : int, default=3
        Number of sub-bands when ``bands`` is None.
    bands : array-like, shape (n_bands, 2) | None, default=None
        Explicit sub-bands in Hz. None: band ``m`` spans ``m * min(freqs) - 2`` Hz to
        ``2 * max(freqs)`` Hz (11-42, 24-42, 37-42 Hz for 13/17/21 Hz).
    a, b : float, default=1.25, 0.25
        Sub-band weights ``m^-a + b``.

    Attributes
    ----------
    classes_, freqs_, rest_index_ : see :class:`SSVEPCCA`.
    bands_ : ndarray, shape (n_bands, 2)
    weights_ : ndarray, shape (n_bands,)

    References
    ----------
    .. [1] X. Chen, Y. Wang, S. Gao, T.-P. Jung, X. Gao, "Filter bank canonical correlation
       analysis for implementing a high-speed SSVEP-based brain-computer interface",
       J. Neural Eng. 12(4), 2015.
    """

    def __init__(
        self, *, sfreq=256.0, freqs=DEFAULT_FREQS, n_harmonics=2, n_bands=3, bands=None,
        a=1.25, b=0.25,
    ):
        self.sfreq = sfreq
        self.freqs = freqs
        self.n_harmonics = n_harmonics
        self.n_bands = n_bands
        self.bands = bands
        self.a = a
        self.b = b

    def _check_params(self) -> None:
        check_positive_int(self.n_harmonics, "n_harmonics")
        check_positive_int(self.n_bands, "n_bands")

    def _bands_array(self):
        if self.bands is None:
            bands = default_bands(self.freqs_, self.sfreq_, self.n_bands)
        else:
            bands = np.asarray(self.bands, dtype=float)
            if bands.ndim != 2 or bands.shape[1] != 2:
                raise ValueError(f"'bands' must have shape (n_bands, 2), got {bands.shape}.")
        m = np.arange(1, len(bands) + 1)
        self.weights_ = m ** (-float(self.a)) + float(self.b)
        return bands

    def _target_scores(self, X: np.ndarray) -> np.ndarray:
        rho = self._correlations(X)[..., 0]  # (bands, trials, freqs)
        return np.einsum("m,mtf->tf", self.weights_, rho**2)


__all__ = ["SSVEPCCA", "FBCCA", "DEFAULT_FREQS", "check_freqs"]
