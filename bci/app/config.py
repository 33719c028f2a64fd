"""Session configuration: every setting of ``ssvep-exo run``, read from TOML.

A configuration file has the sections ``[session]``, ``[source]``, ``[decoder]``,
``[policy]``, ``[menu.<posture>]``, ``[device]`` and ``[lsl]``; every key is optional and
has the default listed in :data:`SCHEMA` (documented in ``docs/configuration.md``). Unknown sections
or keys are rejected with a "Did you mean ...?" hint, and wrong types or out-of-range values
raise :class:`bci.errors.ConfigError` naming the key and the file. Command-line flags override
the file through :meth:`SessionConfig.with_overrides`.

Example
-------
>>> cfg = load_config("configs/demo.toml")                     # doctest: +SKIP
>>> cfg = cfg.with_overrides({"source.kind": "lsl", "session.duration_s": 30})  # doctest: +SKIP
>>> cfg.source.kind, cfg.decoder.freqs                          # doctest: +SKIP
"""

from __future__ import annotations

import copy
import dataclasses
import math
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from bci._check import suggest
from bci.app.menus import CommandMenus
from bci.errors import ConfigError
from bci.labels import freq_label

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROLES = ("all", "decoder", "bridge")
SOURCE_KINDS = ("synthetic", "lsl", "replay")

#: Policy of the training-free decoder (``decoder.method`` without a profile): evidence in
#: FBCCA score units, chosen leave-one-subject-out on the dev recordings for the default
#: false-activation budget (docs/evaluation.md).
TRAINING_FREE_POLICY = {"threshold": 1.0, "drift": 0.2, "clip": 0.25, "horizon_s": 3.0}

#: Default schedule of the synthetic source: with the default menus, 13 then 17 Hz stand up
#: (the second selection confirms), 13 walks, 17 turns, 21 twice sits down.
DEFAULT_SCHEDULE = "rest:4,13:4,17:4,rest:4,13:5,rest:4,17:5,rest:4,21:5,rest:3,21:5,rest:3"


def _num(low: float | None = None, high: float | None = None, *, low_open: bool = False):
    def check(v: Any) -> str | None:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
            return "must be a number"
        if low is not None and (v <= low if low_open else v < low):
            return f"must be {'>' if low_open else '>='} {low}"
        if high is not None and v > high:
            return f"must be <= {high}"
        return None

    return check


def _int(low: int | None = None, high: int | None = None):
    def check(v: Any) -> str | None:
        if isinstance(v, bool) or not isinstance(v, int):
            return "must be an integer"
        if low is not None and v < low:
            return f"must be >= {low}"
        if high is not None and v > high:
            return f"must be <= {high}"
        return None

    return check


def _str(choices: tuple[str, ...] | None = None):
    def check(v: Any) -> str | None:
        if not isinstance(v, str):
            return "must be a string"
        if choices is not None and v not in choices:
            return (f"must be one of {', '.join(map(repr, choices))}", suggest(v, choices))
        return None

    return check


def _bool(v: Any) -> str | None:
    return None if isinstance(v, bool) else "must be true or false"


def _str_list(v: Any) -> str | None:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        return "must be a list of strings"
    if len(set(v)) != len(v):
        return "must not repeat a name"
    return None


def _freq_list(v: Any) -> str | None:
    if not isinstance(v, list) or not v:
        return "must be a non-empty list of frequencies in Hz"
    for x in v:
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not 1.0 <= x <= 100.0:
            return "must be a list of frequencies between 1 and 100 Hz"
    if len({round(float(x), 1) for x in v}) != len(v):
        return "must not repeat a frequency"
    return None


def _phase_list(v: Any) -> str | None:
    if not isinstance(v, list):
        return "must be a list of phases in radians (or empty)"
    for x in v:
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            return "must be a list of phases in radians (or empty)"
    return None


def _table(v: Any) -> str | None:
    return None if isinstance(v, dict) else "must be a table"


# section -> key -> (default, check, one-line description). docs/configuration.md mirrors it.
SCHEMA: dict[str, dict[str, tuple[Any, Callable[[Any], str | None], str]]] = {
    "session": {
        "role": ("all", _str(ROLES), "all (decode and drive), decoder (publish decisions "
                 "only) or bridge (drive the exoskeleton from a decisions stream)"),
        "output": ("sessions", _str(), "folder in which each session gets a sub-folder"),
        "duration_s": (0.0, _num(0.0), "stop after this many seconds (0: until Ctrl-C or the "
                       "end of the source)"),
        "live_view": (True, _bool, "show the terminal live view"),
    },
    "source": {
        "kind": ("synthetic", _str(SOURCE_KINDS), "synthetic, lsl (a live headset) or replay "
                 "(a recorded file streamed through LSL)"),
        "stream_name": ("", _str(), "LSL name of the EEG stream (lsl: to find; synthetic/"
                        "replay: to publish; empty: any EEG stream / an automatic name)"),
        "stream_type": ("EEG", _str(), "LSL type of the EEG stream (matched "
                        "case-insensitively; empty: any type)"),
        "source_id": ("", _str(), "pin the EEG stream to this LSL source id (recommended)"),
        "host": ("", _str(), "pin the EEG stream to this host name"),
        "replay_file": ("", _str(), "recording to replay (source.kind = replay)"),
        "schedule": (DEFAULT_SCHEDULE, _str(), "synthetic schedule 'label:seconds,...' (labels: "
                     "rest or a frequency)"),
        "speed": (1.0, _num(0.0, 100.0, low_open=True), "synthetic/replay speed factor "
                  "(1 = real time)"),
        "snr": (0.5, _num(0.0, 10.0), "synthetic source: SSVEP amplitude over the background "
                "(0.5: a clear responder; 0.3: a weak one; the demo uses 0.6)"),
        "seed": (0, _int(0), "synthetic source: random seed"),
        "timeout_s": (5.0, _num(0.0, 600.0, low_open=True), "how long to look for the stream"),
        "stall_timeout_s": (0.4, _num(0.0, 60.0, low_open=True), "no sample for this long = "
                            "stream stalled (the exoskeleton is stopped)"),
        "max_stall_s": (30.0, _num(0.0, 86400.0), "end the session (exit status 3) when the "
                        "stream (bridge: the decisions stream) sends nothing for this long; 0: "
                        "never"),
    },
    "decoder": {
        "profile": ("", _str(), "subject profile folder (from `ssvep-exo calibrate`); empty: "
                    "training-free decoder below"),
        "method": ("fbcca", _str(), "training-free method when no profile is given (when "
                   "not set and the lights are the population prior's, the population "
                   "decoder is used instead)"),
        "channels": ([], _str_list, "EEG channels to use (empty: all channels of the stream)"),
        "freqs": ([13.0, 17.0, 21.0], _freq_list, "stimulus frequencies in Hz"),
        "phases": ([], _phase_list, "stimulus phases in radians, one per frequency (empty: "
                   "free-running lights); kept in the session log, ignored by the "
                   "phase-invariant training-free decoders (profiles carry their own)"),
        "window_s": (2.0, _num(0.1, 10.0), "decoding window length, seconds"),
        "step_s": (0.1, _num(0.01, 5.0), "time between two decisions, seconds"),
        "params": ({}, _table, "extra keyword arguments of the decoder (e.g. n_harmonics)"),
    },
    "policy": {
        "threshold": (TRAINING_FREE_POLICY["threshold"], _num(0.0, low_open=True),
                      "evidence a target must accumulate to be committed (a profile "
                      "brings its own, set for its false-activation budget)"),
        "drift": (TRAINING_FREE_POLICY["drift"], _num(0.0), "subtracted from each "
                  "window's evidence (weak sustained evidence never adds up)"),
        "clip": (TRAINING_FREE_POLICY["clip"], _num(0.0, low_open=True), "largest "
                 "evidence one window can add"),
        "horizon_s": (TRAINING_FREE_POLICY["horizon_s"], _num(0.0, 60.0, low_open=True),
                      "evidence older than this no longer counts, seconds"),
        "refractory_s": (1.0, _num(0.0, 60.0), "no new command for this long after one"),
        "release_s": (1.0, _num(0.0, 60.0), "the same target is committed again only after "
                      "the decoder stopped favouring it for this long"),
    },
    "menu": {},  # free keys: posture -> {target label: command} (checked in CommandMenus)
    "device": {
        "port": ("", _str(), "serial URL of the exoskeleton controller (device path, "
                 "socket://host:port, rfc2217://...); empty: the simulated exoskeleton"),
        "baudrate": (115200, _int(300, 4_000_000), "serial baud rate"),
        "walk_steps": (4, _int(1, 10), "steps per WALK command"),
        "turn_deg": (45, _int(1, 90), "degrees per TURN command"),
        "confirm_posture_changes": (True, _bool, "stand/sit need the same target selected "
                                    "twice"),
        "sim_step_s": (0.6, _num(0.01, 10.0), "simulated exoskeleton: seconds per step"),
        "sim_speed": (1.0, _num(0.0, 100.0, low_open=True), "simulated exoskeleton: speed "
                      "factor of its motion"),
    },
    "lsl": {
        "decisions_stream": ("ssvep-decisions", _str(), "LSL name of the decisions stream "
                             "(published by decoder/all, read by bridge)"),
        "decisions_source_id": ("", _str(), "pin the decisions stream to this source id"),
    },
}



@dataclasses.dataclass
class Section:
    """One section of a :class:`SessionConfig`; keys are attributes."""

    _name: str
    _values: dict[str, Any]

    def __getattr__(self, key: str) -> Any:
        values = self.__dict__.get("_values", {})
        if key in values:
            return values[key]
        raise AttributeError(f"config section [{self.__dict__.get('_name')}] has no key {key!r}")

    def as_dict(self) -> dict[str, Any]:
        """Copy of the section's values."""
        return copy.deepcopy(self._values)


class SessionConfig:
    """Every setting of a closed-loop session.

    Build it with :func:`load_config` (file) or ``SessionConfig()`` (defaults). Sections are
    attributes: ``cfg.session``, ``cfg.source``, ``cfg.decoder``, ``cfg.policy``,
    ``cfg.device``, ``cfg.lsl``; ``cfg.menus`` (:class:`bci.app.menus.CommandMenus`) says
    what each light means in each posture.

    Parameters
    ----------
    data : mapping | None
        Parsed TOML (section -> key -> value); missing keys take their defaults.
    origin : str
        Where the values came from (named in error messages).
    """

    def __init__(self, data: Mapping[str, Any] | None = None, origin: str = "<defaults>"):
        self.origin = origin
        data = dict(data or {})
        if "mapping" in data:
            raise ConfigError(
                f"{origin}: [mapping] was replaced by posture-aware menus: what a light means "
                "depends on the posture, e.g. [menu.sitting] \"13.0Hz\" = \"stand\" and "
                "[menu.standing] \"13.0Hz\" = \"walk\" (see docs/configuration.md).")
        for sec in data:
            if sec not in SCHEMA:
                raise ConfigError(
                    f"{origin}: unknown section [{sec}].{suggest(sec, SCHEMA)} "
                    f"Sections are {', '.join('[' + s + ']' for s in SCHEMA)}."
                )
        self._sections: dict[str, dict[str, Any]] = {}
        for sec, keys in SCHEMA.items():
            if sec == "menu":
                continue
            given = data.get(sec, {})
            if not isinstance(given, dict):
                raise ConfigError(f"{origin}: [{sec}] must be a table of keys.")
            values = {k: copy.deepcopy(v[0]) for k, v in keys.items()}
            for key, val in given.items():
                self._set(sec, key, val)
                values[key] = val
            self._sections[sec] = values
        #: ``"section.key"`` settings given in the file or as overrides (not defaults).
        self.explicit: frozenset[str] = frozenset(
            f"{sec}.{key}" for sec, given in data.items() if sec != "menu"
            and isinstance(given, dict) for key in given)
        menus = data.get("menu")
        if menus is not None and (not isinstance(menus, dict) or not all(
                isinstance(v, dict) for v in menus.values())):
            raise ConfigError(f"{origin}: [menu] must hold one table per posture, e.g. "
                              "[menu.standing] \"13.0Hz\" = \"walk\".")
        #: True when menus were given (file or overrides), not the defaults for the lights.
        self.explicit_menus = bool(menus)
        #: What each light means in each posture (checked against the safety supervisor).
        self.menus = CommandMenus.build(menus or None, self.targets, where=f"{origin}: [menu]")

    def _set(self, sec: str, key: str, val: Any) -> None:
        keys = SCHEMA[sec]
        if key not in keys:
            raise ConfigError(
                f"{self.origin}: unknown key '{sec}.{key}'.{suggest(key, keys)} "
                f"Keys of [{sec}] are {', '.join(keys)}."
            )
        problem = keys[key][1](val)
        if problem:
            problem, hint = problem if isinstance(problem, tuple) else (problem, "")
            raise ConfigError(f"{self.origin}: '{sec}.{key}' {problem}, got {val!r}.{hint}")

    def __getattr__(self, name: str) -> Section:
        sections = self.__dict__.get("_sections", {})
        if name in sections:
            return Section(name, sections[name])
        raise AttributeError(name)

    def with_overrides(self, overrides: Mapping[str, Any]) -> SessionConfig:
        """Return a copy with ``"section.key": value`` overrides (None values are skipped).

        Raises
        ------
        bci.errors.ConfigError
            When a key is unknown or a value is invalid.
        """
        data = self.to_dict()
        for dotted, val in overrides.items():
            if val is None:
                continue
            sec, _, key = dotted.partition(".")
            if sec == "menu":
                data["menu"] = {p: dict(m) for p, m in dict(val).items()}
                continue
            if sec not in SCHEMA:
                raise ConfigError(f"unknown setting {dotted!r}.{suggest(sec, SCHEMA)}")
            data.setdefault(sec, {})[key] = val
        if not self.explicit_menus and overrides.get("menu") is None:
            data.pop("menu", None)  # the defaults for decoder.freqs again
        new = SessionConfig(data, origin=f"{self.origin} (with command-line options)")
        new.explicit = self.explicit | {k for k, v in overrides.items()
                                        if v is not None and not k.startswith("menu")}
        return new

    def is_explicit(self, dotted: str) -> bool:
        """True when ``"section.key"`` was set in the file or by an override (not a default).

        A subject profile's window and step give way only to explicit settings.
        """
        return dotted in self.explicit

    def to_dict(self) -> dict[str, Any]:
        """Plain (TOML/JSON-able) form of every setting."""
        out = {sec: copy.deepcopy(v) for sec, v in self._sections.items()}
        out["menu"] = {p.lower(): m for p, m in self.menus.to_dict().items()}
        return out

    @property
    def targets(self) -> list[str]:
        """Target labels ("13.0Hz", ...) in ``decoder.freqs`` order."""
        return [freq_label(f) for f in self._sections["decoder"]["freqs"]]


def load_config(path: str | Path | None) -> SessionConfig:
    """Read a session configuration from a TOML file (None: all defaults).

    Parameters
    ----------
    path : str | Path | None
        The TOML file.

    Returns
    -------
    config : SessionConfig

    Raises
    ------
    bci.errors.ConfigError
        Missing or unreadable file, TOML syntax error, unknown key, bad value.
    """
    if path is None:
        return SessionConfig()
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Configuration file '{path}' not found; check the path of --config.")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}).") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Cannot read configuration file '{path}': {exc}.") from None
    return SessionConfig(data, origin=str(path))
