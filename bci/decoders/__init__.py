"""SSVEP decoders as scikit-learn estimators.

Input ``X`` is raw EEG windows ``(n_trials, n_channels, n_samples)``; every decoder filters
each window on its own with precomputed coefficients. Labels name stimulus frequencies
(``13``, ``"13.0Hz"``) or the no-control class ``"rest"`` (see :mod:`bci.labels`).
"""

from ._state import from_state, to_state
from .cca import CCA, FBCCA
from .registry import BEST_METHOD, BEST_TRAINING_FREE, DEFAULT_METHODS, METHODS, make_decoder
from .ress import RessFBCCA
from .tdca import TDCA
from .trca import TRCA

__all__ = [
    "CCA", "FBCCA", "TRCA", "TDCA", "RessFBCCA", "METHODS", "DEFAULT_METHODS", "BEST_METHOD",
    "BEST_TRAINING_FREE", "make_decoder", "to_state", "from_state",
]
