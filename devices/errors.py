"""Exceptions of the device side (serial link, protocol, controller)."""

from __future__ import annotations


class DeviceError(IOError):
    """Base class for user-facing errors raised by :mod:`devices`."""


class PortError(DeviceError):
    """A serial port cannot be opened (missing, busy, permission denied)."""


class LinkLostError(DeviceError):
    """The link to the controller is lost (no telemetry, write error, port vanished)."""


class CommandTimeout(DeviceError):
    """A command got no ACK after all retries."""


class CommandRejected(DeviceError):
    """The controller answered NAK; ``reason`` holds its reason code."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason
