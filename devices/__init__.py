"""Device side: serial protocol, exoskeleton driver, simulator and safety supervisor."""

import logging as _logging

from devices.commands import Command
from devices.errors import DeviceError

# One logger for the package; handlers are attached only by the CLI (as in bci._logging).
_logging.getLogger("devices").addHandler(_logging.NullHandler())

__all__ = ["Command", "DeviceError"]
