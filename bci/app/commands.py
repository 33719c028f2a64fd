"""Command maps (target label -> gait command) checked against the device's vocabulary.

A map comes from a configuration's ``[mapping]``, a subject profile's ``command_map`` or
``ssvep-exo calibrate --commands``; :class:`devices.commands.Command` is the vocabulary. A
name outside it is a user error named where it came from, never a ``ValueError`` from deep
inside the session.
"""

from __future__ import annotations

from collections.abc import Mapping

from bci._check import suggest
from bci.errors import BCIError, ConfigError
from bci.labels import is_rest
from devices.commands import Command

#: The command names, in the vocabulary's order.
COMMAND_NAMES = tuple(c.value for c in Command)


def to_commands(mapping: Mapping[str, str], *, where: str,
                error: type[BCIError] = ConfigError) -> dict[str, Command]:
    """Return ``mapping`` with each command name turned into a :class:`Command`.

    Parameters
    ----------
    mapping : mapping of str to str
        Target label -> command name.
    where : str
        Where the map comes from, for the message (e.g. ``"profile profiles/alice"``).
    error : type of BCIError, default=ConfigError
        The exception raised.

    Raises
    ------
    error
        When a name is not a command, or ``rest`` (no control) is mapped to one.
    """
    out = {}
    for label, name in mapping.items():
        if is_rest(str(label)):
            raise error(f"{where}: {label!r} (no control) can never be mapped to a command; "
                        "remove it from the command map.")
        try:
            out[str(label)] = Command(name)
        except ValueError:
            raise error(
                f"{where}: {label!r} is mapped to {name!r}, which is not a command; choose "
                f"from {', '.join(COMMAND_NAMES)}.{suggest(str(name), COMMAND_NAMES)}"
            ) from None
    return out
