"""Decoder registry: names used by the CLI, the evaluation and subject profiles."""

from __future__ import annotations

from typing import Any

from .._check import suggest
from ..errors import DecoderError
from .cca import FBCCA, SSVEPCCA
from .ress import RessFBCCA
from .tdca import TDCA
from .trca import TRCA

#: Extra training-window start offsets (s, relative to the evaluation window start) that a
#: calibrated phase-invariant decoder profits from; cut inside each training trial only.
AUGMENT_OFFSETS = (-1.0, -0.5, 0.5, 1.0, 1.5, 2.0)

METHODS: dict[str, dict[str, Any]] = {
    "cca": {
        "cls": SSVEPCCA, "params": {}, "calibrated": False, "phase_invariant": True,
        "train_offsets": None, "description": "CCA with sine/cosine references (Lin 2006)",
    },
    "fbcca": {
        "cls": FBCCA, "params": {}, "calibrated": False, "phase_invariant": True,
        "train_offsets": None, "description": "filter-bank CCA (Chen 2015)",
    },
    "trca": {
        "cls": TRCA, "params": {"ensemble": False}, "calibrated": True,
        "phase_invariant": False, "train_offsets": None,
        "description": "filter-bank TRCA (Nakanishi 2018), phase-locked stimuli only",
    },
    "etrca": {
        "cls": TRCA, "params": {"ensemble": True}, "calibrated": True,
        "phase_invariant": False, "train_offsets": None,
        "description": "filter-bank ensemble TRCA (Nakanishi 2018), phase-locked stimuli only",
    },
    "tdca": {
        "cls": TDCA, "params": {}, "calibrated": True, "phase_invariant": False,
        "train_offsets": None,
        "description": "filter-bank TDCA (Liu 2021), phase-locked stimuli only",
    },
    "ress-fbcca": {
        "cls": RessFBCCA, "params": {}, "calibrated": True, "phase_invariant": True,
        "train_offsets": AUGMENT_OFFSETS,
        "description": "FBCCA + RESS spatial-filter features, shrinkage LDA (calibrated)",
    },
}

CLASSES: dict[str, type] = {"SSVEPCCA": SSVEPCCA, "FBCCA": FBCCA, "TRCA": TRCA, "TDCA": TDCA,
                           "RessFBCCA": RessFBCCA,
                           "CCA": SSVEPCCA}  # states saved before the rename

#: What ``ssvep-exo evaluate`` runs by default: both families, so a user sees which fits.
DEFAULT_METHODS: tuple[str, ...] = ("cca", "fbcca", "etrca", "tdca", "ress-fbcca")
#: The best decoder measured on free-running lights (Kalunga2016, see docs/decoders.md).
BEST_METHOD = "ress-fbcca"
#: The best training-free decoder (no calibration data needed).
BEST_TRAINING_FREE = "fbcca"


def make_decoder(method: str, *, sfreq: float, freqs, **params):
    """Return an unfitted decoder by registry name.

    Parameters
    ----------
    method : str
        A key of :data:`METHODS` (e.g. ``"fbcca"``).
    sfreq : float
        Sampling rate in Hz.
    freqs : sequence of float
        Target stimulus frequencies in Hz.
    **params
        Extra keyword arguments for the decoder class (override the registry defaults).

    Returns
    -------
    decoder : sklearn estimator
    """
    info = METHODS.get(method)
    if info is None:
        raise DecoderError(
            f"Unknown decoder method {method!r}; choose one of {', '.join(METHODS)}."
            + suggest(method, METHODS)
        )
    kw = {**info["params"], **params}
    return info["cls"](sfreq=sfreq, freqs=tuple(float(f) for f in freqs), **kw)
