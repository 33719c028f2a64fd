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


def __getattr__(name: str):
    # The session API pulls in the decoders and MNE: import it on first use only.
    if name in ("CueSequence", "apply_profile", "calibrate_from_files", "calibrate_live",
                "calibrate_raws"):
        from calibration import session

        return getattr(session, name)
    raise AttributeError(f"module 'calibration' has no attribute {name!r}")
