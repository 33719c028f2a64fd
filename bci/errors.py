"""Exceptions a user can cause on the signal side.

Every environment or input failure (missing file, wrong channel names, absent stream, ...)
raises :class:`BCIError` or one of its subclasses, with a message that says what to do.
Programming errors (wrong argument types, calling methods in the wrong order) raise the
builtin ``TypeError``, ``ValueError`` or ``RuntimeError``.
"""

from __future__ import annotations

from collections.abc import Sequence


class BCIError(Exception):
    """Base class for user-facing errors raised by :mod:`bci`.

    Parameters
    ----------
    message : str
        What went wrong and what to do (one line).
    details : sequence of str
        Lines that list things (e.g. the streams seen), shown one per line after the message;
        ``str(exc)`` holds both.
    """

    def __init__(self, message: str = "", *, details: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = str(message)
        self.details = tuple(str(d) for d in details)

    def __str__(self) -> str:
        return "\n".join((self.message, *self.details)) if self.details else self.message


class DatasetError(BCIError):
    """A recording cannot be loaded or epoched (missing, truncated, no cues, bad channels)."""


class StreamError(BCIError):
    """An LSL stream cannot be found, opened or read."""


class DecoderError(BCIError):
    """A decoder cannot be used on the given data (e.g. sampling rate too low)."""


class ConfigError(BCIError):
    """A session configuration is invalid (unknown key, bad value, wrong type)."""
