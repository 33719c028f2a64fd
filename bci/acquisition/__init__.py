"""Acquisition of EEG and markers over Lab Streaming Layer."""

from bci.acquisition.window import EEGWindow, SignalHealth

__all__ = ["EEGWindow", "SignalHealth"]
