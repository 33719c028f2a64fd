"""The command vocabulary where the signal side and the device side meet.

``bci`` never imports device internals and ``devices`` never imports decoders: the online
loop maps a decoded target label (``"13.0Hz"``) to a :class:`Command` through the session
configuration, and the safety supervisor decides whether it may be sent.
"""

from __future__ import annotations

from enum import Enum


class Command(str, Enum):
    """A gait command the user can select (values are the names used in configurations)."""

    STAND = "stand"
    SIT = "sit"
    WALK = "walk"
    TURN_LEFT = "turn_left"
    TURN_RIGHT = "turn_right"
    STOP = "stop"

    @property
    def is_motion(self) -> bool:
        """True for commands that make the exoskeleton move (everything but STOP)."""
        return self is not Command.STOP
