"""Decoder registry: names used by the CLI, the evaluation and subject profiles."""

from __future__ import annotations

from typing import Any

from .._check import suggest
from ..errors import DecoderError
from .cca import FBCCA, SSVEPCCA
from .population import PopulationRessFBCCA
from .ress import RessFBCCA
from .tdca import TDCA
from .trca import TRCA

#: Training epochs (s after each cue) given to decoders that cut their own training windows
#: (a ``window_s`` parameter): the evaluation, calibration and benchmarks fit them on
#: ``[cue + start, cue + end)``, clipped to the shortest trial; test windows stay
#: ``[cue + tmin, cue + tmin + window)``. Chosen leave-one-subject-out with the decoder's
#: regularisation (scripts/loso_defaults.py, docs/evaluation.md).
TRAIN_SPAN = (1.0, 5.0)

METHODS: dict[str, dict[str, Any]] = {
    "cca": {
        "cls": SSVEPCCA, "params": {}, "calibrated": False, "phase_invariant": True,
        "train_span": None,
    },
    "fbcca": {
        "cls": FBCCA, "params": {}, "calibrated": False, "phase_invariant": True,
        "train_span": None,
    },
    "trca": {
        "cls": TRCA, "params": {"ensemble": False}, "calibrated": True,
        "phase_invariant": False, "train_span": None,
    },
    "etrca": {
        "cls": TRCA, "params": {"ensemble": True}, "calibrated": True,
        "phase_invariant": False, "train_span": None,
    },
    "tdca": {
        "cls": TDCA, "params": {}, "calibrated": True, "phase_invariant": False,
        "train_span": None,
    },
    "ress-fbcca": {
        "cls": RessFBCCA, "params": {}, "calibrated": True, "phase_invariant": True,
        "train_span": TRAIN_SPAN,
    },
    # RESS-FBCCA trained on many users (a shipped prior, rest class included): usable with
    # no calibration (fit(X, None)), adapted with a user's windows (fit(X, y))
    "population": {
        "cls": PopulationRessFBCCA, "params": {}, "calibrated": True,
        "phase_invariant": True, "train_span": TRAIN_SPAN,
    },
}

CLASSES: dict[str, type] = {"SSVEPCCA": SSVEPCCA, "FBCCA": FBCCA, "TRCA": TRCA, "TDCA": TDCA,
                           "RessFBCCA": RessFBCCA, "PopulationRessFBCCA": PopulationRessFBCCA,
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
