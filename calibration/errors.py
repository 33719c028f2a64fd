"""Exceptions of the calibration side."""

from __future__ import annotations

from bci.errors import BCIError


class CalibrationError(BCIError):
    """A calibration cannot run or produce a usable profile."""


class ProfileError(CalibrationError):
    """A subject profile is missing, malformed, tampered with or does not fit the stream."""
