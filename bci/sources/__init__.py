"""EEG sources: synthetic SSVEP EEG and replay of recordings, offline and over LSL."""

from bci.sources.replay import RecordingPlayer
from bci.sources.schedule import Schedule
from bci.sources.synthetic import SyntheticEEG, synthesize_raw

__all__ = ["RecordingPlayer", "Schedule", "SyntheticEEG", "synthesize_raw"]
