"""SSVEP decoders as scikit-learn estimators.

Input ``X`` is raw EEG windows ``(n_trials, n_channels, n_samples)``; every decoder filters
each window on its own with precomputed coefficients. Labels name stimulus frequencies
(``13``, ``"13.0Hz"``) or the no-control class ``"rest"`` (see :mod:`bci.labels`).

The single-band CCA decoder is :class:`SSVEPCCA`: the name ``CCA`` would shadow
:class:`sklearn.cross_decomposition.CCA` in a user's namespace (and scikit-learn's own checks
take any estimator named ``CCA`` for theirs). ``bci.decoders.CCA`` still works, with a
FutureWarning, until it is removed.
"""

import warnings

from ._state import from_state, to_state
from .cca import FBCCA, SSVEPCCA
from .registry import BEST_METHOD, BEST_TRAINING_FREE, DEFAULT_METHODS, METHODS, make_decoder
from .ress import RessFBCCA
from .tdca import TDCA
from .trca import TRCA

__all__ = [
    "SSVEPCCA", "FBCCA", "TRCA", "TDCA", "RessFBCCA", "METHODS", "DEFAULT_METHODS", "BEST_METHOD",
    "BEST_TRAINING_FREE", "make_decoder", "to_state", "from_state",
]


def __getattr__(name: str):
    if name == "CCA":
        warnings.warn("bci.decoders.CCA was renamed SSVEPCCA (CCA shadows "
                      "sklearn.cross_decomposition.CCA); the old name will be removed.",
                      FutureWarning, stacklevel=2)
        return SSVEPCCA
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
