"""The online decoding loop and the decision policy."""

from bci.online.decision import Decision

__all__ = ["Decision"]
