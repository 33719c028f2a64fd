"""Signal side of the SSVEP exoskeleton BCI.

Recorded sessions (:mod:`bci.datasets`), LSL acquisition (:mod:`bci.acquisition`), EEG
sources (:mod:`bci.sources`), decoders (:mod:`bci.decoders`), the online loop and decision
policy (:mod:`bci.online`), evaluation (:mod:`bci.evaluation`) and the ``ssvep-exo``
command-line interface (:mod:`bci.cli`).
"""

from bci.errors import BCIError

__version__ = "0.1.0"

__all__ = ["BCIError", "__version__"]
