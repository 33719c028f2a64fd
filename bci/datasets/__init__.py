"""Recorded sessions -> ``mne.io.Raw`` whose annotations name the cues.

Every part of the system (evaluation, calibration, replay) consumes this one representation:
a preloaded Raw in volts with one annotation per cue, named with the labels of
:mod:`bci.labels` (``"13.0Hz"``, ``"rest"``), lasting until the next cue.

Readers: the Kalunga2016 layout (``*_raw.fif`` + ``*-eve.fif``), any file MNE reads that
carries annotations or events (FIF, EDF, BDF, GDF, BrainVision, EEGLAB) and LSL XDF
recordings (pyxdf). :func:`find_recordings` lists recordings by subject, :func:`epoch` cuts
windows after the cues.
"""

from bci.datasets._cues import canonical_label, check_sfreq, cue_spacing, cue_table
from bci.datasets._epoch import epoch, pick_channels, prefilter_raw, to_epochs
from bci.datasets._files import KALUNGA_EVENT_ID, SUPPORTED_FORMATS, cue_freqs
from bci.datasets._find import find_recordings
from bci.datasets._load import load_recording, subject_of

__all__ = [
    "KALUNGA_EVENT_ID",
    "SUPPORTED_FORMATS",
    "canonical_label",
    "check_sfreq",
    "cue_freqs",
    "cue_spacing",
    "cue_table",
    "epoch",
    "find_recordings",
    "load_recording",
    "pick_channels",
    "prefilter_raw",
    "subject_of",
    "to_epochs",
]
