"""Acquisition of EEG and markers over Lab Streaming Layer."""

from bci.acquisition.health import assess as assess_health
from bci.acquisition.markers import MarkerStream
from bci.acquisition.resolve import SearchStopped, find_stream
from bci.acquisition.ring_buffer import RingBuffer
from bci.acquisition.stream import EEGStream
from bci.acquisition.window import EEGWindow, SignalHealth

__all__ = [
    "EEGStream",
    "EEGWindow",
    "MarkerStream",
    "RingBuffer",
    "SearchStopped",
    "SignalHealth",
    "assess_health",
    "find_stream",
]
