"""Exceptions a user can cause on the signal side.

Every environment or input failure (missing file, wrong channel names, absent stream, ...)
raises :class:`BCIError` or one of its subclasses, with a message that says what to do.
Programming errors (wrong argument types, calling methods in the wrong order) raise the
builtin ``TypeError``, ``ValueError`` or ``RuntimeError``.
"""

from __future__ import annotations


class BCIError(Exception):
    """Base class for user-facing errors raised by :mod:`bci`."""


class DatasetError(BCIError):
    """A recording cannot be loaded or epoched (missing, truncated, no cues, bad channels)."""


class StreamError(BCIError):
    """An LSL stream cannot be found, opened or read."""


class DecoderError(BCIError):
    """A decoder cannot be used on the given data (e.g. sampling rate too low)."""


class ConfigError(BCIError):
    """A session configuration is invalid (unknown key, bad value, wrong type)."""
