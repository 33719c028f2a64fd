"""Device side: serial protocol, exoskeleton driver, simulator and safety supervisor."""

from devices.commands import Command
from devices.errors import DeviceError

__all__ = ["Command", "DeviceError"]
