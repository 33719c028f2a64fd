"""One logger for the package, as in MNE: handlers are attached only by the CLI."""

from __future__ import annotations

import inspect
import logging
import warnings

logger = logging.getLogger("bci")
logger.propagate = False
logger.addHandler(logging.NullHandler())


def warn(message: str, category: type[Warning] = RuntimeWarning) -> None:
    """Emit a warning attributed to the first caller outside this package.

    Parameters
    ----------
    message : str
        The warning text.
    category : type of Warning, default=RuntimeWarning
        Warning class.
    """
    frame = inspect.currentframe()
    stacklevel = 1
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if not (module == "bci" or module.startswith(("bci.", "devices", "calibration"))):
            break
        frame = frame.f_back
        stacklevel += 1
    warnings.warn(message, category, stacklevel=stacklevel)
    logger.warning(message)
