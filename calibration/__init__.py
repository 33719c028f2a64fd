"""Calibration: on-screen stimulus, calibration sessions and subject profiles."""

from calibration.errors import CalibrationError, ProfileError

__all__ = ["CalibrationError", "ProfileError"]
