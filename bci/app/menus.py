"""Posture-aware command menus: what each light means in each posture of the exoskeleton.

Three lights cannot carry six gait commands, and most commands are legal in one posture
only, so what a light means depends on the posture the controller reports. A menu set maps
every posture of the safety supervisor's transition table (:data:`devices.safety.LEGAL`) to
``{target label: command}``. The defaults, for lights sorted by frequency:

==================  =====================================  ===============================
posture             first light / second / third           (a fourth light)
==================  =====================================  ===============================
SITTING             stand / stand / stand                  stand
STANDING, STOPPED   walk / turn_left / sit                 turn_right
WALKING, TURNING    stop / stop / stop                     stop
==================  =====================================  ===============================

so the exoskeleton, which starts sitting, can stand, walk, turn, stop and sit again. Any
light stands it up, and the supervisor's confirmation of a posture change can come from
another light than the first (the first stays latched for a while after its selection). Menus
are declared in the session configuration (``[menu.<posture>]``) and in subject profiles,
and checked here against the supervisor's table: no menu may offer a command that is not
legal in its posture (``stop`` is always legal). The supervisor still checks every command
against the posture at the moment it is sent, and still asks for a confirming second
selection before ``stand`` and ``sit``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bci.errors import ConfigError
from bci.labels import freq_label, is_rest, label_to_freq
from devices.commands import Command
from devices.safety import LEGAL

#: Every posture the controller reports (the keys of the supervisor's transition table).
POSTURES: tuple[str, ...] = tuple(LEGAL)
#: The posture the exoskeleton starts in (the simulator and a powered-up controller).
INITIAL_POSTURE = "SITTING"
COMMANDS: tuple[str, ...] = tuple(c.value for c in Command)

# Default meaning of the lights (sorted by frequency) per posture.
_STANDING = ("walk", "turn_left", "sit", "turn_right")
_DEFAULTS: dict[str, tuple[str, ...]] = {
    "SITTING": ("stand",) * 8,
    "STANDING": _STANDING,
    "STOPPED": _STANDING,
    "WALKING": ("stop",) * 8,
    "TURNING": ("stop",) * 8,
}


def legal(posture: str, command: str) -> bool:
    """True when the supervisor's table allows ``command`` in ``posture`` (STOP always)."""
    cmd = Command(command)
    return cmd is Command.STOP or cmd in LEGAL.get(posture, frozenset())


def default_menus(targets: Sequence[str]) -> dict[str, dict[str, str]]:
    """The default menus for the target labels (sorted by frequency here).

    With one light it can stand, walk and stop but never sit; with two, stand, walk and sit
    (no turn); three or more give every default command.
    """
    labels = sorted((freq_label(label_to_freq(t)) for t in targets if not is_rest(t)),
                    key=label_to_freq)
    out: dict[str, dict[str, str]] = {}
    for posture in POSTURES:
        cmds = _DEFAULTS.get(posture, ())
        if len(labels) == 2 and posture in ("STANDING", "STOPPED"):
            cmds = ("walk", "sit")
        if cmds:
            out[posture] = dict(zip(labels, cmds))
    return out


@dataclass(frozen=True)
class CommandMenus:
    """Checked menus: posture -> {target label: command name}.

    Build them with :meth:`build` (which checks them); postures without a menu offer nothing.
    """

    menus: Mapping[str, Mapping[str, str]]

    @classmethod
    def build(cls, menus: Mapping[str, Mapping[str, str]] | None, targets: Sequence[str], *,
              where: str = "menus") -> CommandMenus:
        """Check ``menus`` against the targets and the supervisor's table (None: defaults).

        Posture names are case-insensitive; labels may be ``13``, ``"13Hz"`` or
        ``"13.0Hz"``.

        Raises
        ------
        bci.errors.ConfigError
            Naming every problem: an unknown posture, a label that is not a target, a
            command that does not exist or is not legal in its posture.
        """
        targets = [freq_label(label_to_freq(t)) for t in targets if not is_rest(t)]
        if menus is None or not menus:
            return cls(default_menus(targets))
        problems: list[str] = []
        out: dict[str, dict[str, str]] = {}
        for posture, menu in menus.items():
            key = str(posture).upper()
            if key not in LEGAL:
                problems.append(f"unknown posture {posture!r} (postures: "
                                f"{', '.join(p.lower() for p in POSTURES)})")
                continue
            if not isinstance(menu, Mapping):
                problems.append(f"{posture!r} must map target labels to commands")
                continue
            out[key] = {}
            for label, cmd in menu.items():
                try:
                    freq = label_to_freq(label)
                except ValueError:
                    freq = -1.0
                if freq is None or freq < 0 or freq_label(freq) not in targets:
                    problems.append(f"{key.lower()}: {label!r} is not one of the lights "
                                    f"{targets}")
                    continue
                label = freq_label(freq)
                if cmd not in COMMANDS:
                    problems.append(f"{key.lower()}: {label} -> {cmd!r} is not a command "
                                    f"({', '.join(COMMANDS)})")
                    continue
                if not legal(key, cmd):
                    allowed = sorted({"stop", *(c.value for c in LEGAL[key])})
                    problems.append(f"{key.lower()}: {label} -> {cmd} is not legal while "
                                    f"{key.lower()} (legal: {', '.join(allowed)})")
                    continue
                out[key][label] = cmd
        if problems:
            raise ConfigError(f"{where}: " + "; ".join(problems) + ".")
        return cls(out)

    def command(self, posture: str | None, label: str) -> str | None:
        """The command ``label`` means in ``posture`` (None: nothing)."""
        if posture is None:
            return None
        return self.menus.get(posture, {}).get(label)

    def menu(self, posture: str | None) -> dict[str, str]:
        """The menu of a posture (empty when it offers nothing)."""
        return dict(self.menus.get(posture, {})) if posture else {}

    @property
    def commands(self) -> list[str]:
        """Every command some menu offers."""
        return sorted({c for m in self.menus.values() for c in m.values()})

    def to_dict(self) -> dict[str, dict[str, str]]:
        """Plain-JSON form (posture -> {label: command})."""
        return {p: dict(m) for p, m in self.menus.items()}

    def describe(self, posture: str | None) -> str:
        """One line: what each light means now (for the live view)."""
        menu = self.menu(posture)
        state = (posture or "unknown").lower()
        if not menu:
            return f"{state}: no light moves the exoskeleton"
        return f"{state}: " + ", ".join(f"{k} {v}" for k, v in menu.items())


def select(menus: CommandMenus, supervisor, driver, label: str) -> dict:
    """Turn one committed selection into a command through the menus and the supervisor.

    The posture comes from the controller's last telemetry; the menu gives the command;
    the safety supervisor decides (legal now, confirmation, link, inhibits).

    Returns
    -------
    event : dict
        The closed loop's ``"command"`` event: ``label``, ``posture``, ``command``,
        ``result`` (``"executed"``, ``"awaiting_confirmation"``, ``"refused"``,
        ``"failed"``), ``reason``, ``rtt_s``.
    """
    tel = getattr(driver, "telemetry", None)
    posture = None if tel is None else tel.state
    cmd = menus.command(posture, label)
    if cmd is None:
        why = ("no telemetry from the exoskeleton yet" if posture is None else
               f"{label} means nothing while {posture.lower()}")
        return {"label": label, "posture": posture, "command": None, "result": "refused",
                "reason": why, "rtt_s": None}
    t0 = time.monotonic()
    out = supervisor.on_selection(cmd)
    result = {"forwarded": "executed", "refused": "refused", "rejected": "refused",
              "awaiting_confirmation": "awaiting_confirmation", "failed": "failed",
              "ignored": "ignored"}.get(out.status, out.status)
    reason = f"controller NAK {out.reason}" if out.status == "rejected" else out.reason
    return {"label": label, "posture": posture, "command": cmd, "result": result,
            "reason": reason,
            "rtt_s": round(time.monotonic() - t0, 4) if result == "executed" else None}


def supervisor_mapping(menus: CommandMenus) -> dict[str, Command]:
    """The supervisor's mapping when menus choose the command: each command to itself."""
    return {c: Command(c) for c in menus.commands} or {"stop": Command.STOP}
