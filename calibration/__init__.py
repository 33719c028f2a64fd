"""Calibration: on-screen stimulus, calibration sessions and subject profiles."""

from calibration.errors import CalibrationError, ProfileError
from calibration.profile import SubjectProfile

__all__ = [
    "CalibrationError",
    "CueSequence",
    "ProfileError",
    "SubjectProfile",
    "apply_profile",
    "calibrate_from_files",
    "calibrate_live",
    "calibrate_raws",
]


_LAZY = {"CueSequence": "cues", "apply_profile": "apply", "calibrate_from_files": "session",
         "calibrate_raws": "session", "calibrate_live": "live"}


def __getattr__(name: str):
    # The calibration API pulls in the decoders and MNE: import it on first use only.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"calibration.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'calibration' has no attribute {name!r}")
