"""The closed loop as a product: configuration, session runner, live view, summary, plots.

``ssvep-exo run`` and ``ssvep-exo demo`` are thin command-line layers over
:func:`bci.app.closed_loop.run_session`; the configuration is :class:`bci.app.config.SessionConfig`.
"""

from bci.app.config import SessionConfig, load_config

__all__ = ["SessionConfig", "load_config"]
