"""EEG sources: synthetic SSVEP EEG and replay of recordings, offline and over LSL."""

from bci.sources.schedule import Schedule
from bci.sources.synthetic import synthesize_raw

__all__ = ["Schedule", "synthesize_raw"]
