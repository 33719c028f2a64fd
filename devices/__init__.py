"""Device side: serial protocol (v2), exoskeleton driver, simulator, safety supervisor and the
controller conformance kit."""

import logging as _logging

from devices.commands import Command
from devices.errors import DeviceError

# One logger for the package; handlers are attached only by the CLI (as in bci._logging).
_logging.getLogger("devices").addHandler(_logging.NullHandler())

__all__ = ["Command", "DeviceError"]
