"""Crash-safe recording of live sessions (EEG, cues, decisions) as XDF files.

The files load back with :func:`bci.datasets.load_recording` (or ``pyxdf.load_xdf``), so
any recorded session can be replayed (:class:`bci.sources.RecordingPlayer`) or evaluated.
"""

from bci.recording.recorder import SessionRecorder
from bci.recording.xdf import XDFWriter

__all__ = ["SessionRecorder", "XDFWriter"]
