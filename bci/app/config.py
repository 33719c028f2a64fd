"""Session configuration: every setting of ``ssvep-exo run``, read from TOML.

A configuration file has the sections ``[session]``, ``[source]``, ``[decoder]``,
``[policy]``, ``[menu.<posture>]``, ``[device]`` and ``[lsl]``; every key is optional. Each section is
a pydantic model (:data:`SECTIONS`: strict types, unknown keys forbidden) holding each key's
default, meaning, flag and range; ``scripts/config_doc.py`` writes the key tables of
``docs/configuration.md`` from them. Unknown sections or keys are rejected with a "Did you
mean ...?" hint, and wrong types or out-of-range values raise one line of
:class:`bci.errors.ConfigError` naming the key and the file. Command-line flags override the
file through :meth:`SessionConfig.with_overrides`.

Example
-------
>>> cfg = load_config("configs/demo.toml")                     # doctest: +SKIP
>>> cfg = cfg.with_overrides({"source.kind": "lsl", "session.duration_s": 30})  # doctest: +SKIP
>>> cfg.source.kind, cfg.decoder.freqs                          # doctest: +SKIP
"""

from __future__ import annotations

import copy
import dataclasses
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from bci._check import suggest
from bci.app.menus import CommandMenus
from bci.errors import ConfigError
from bci.labels import freq_label

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: Policy of the training-free decoder (``decoder.method`` without a profile): evidence in
#: FBCCA score units, chosen leave-one-subject-out on the dev recordings for the default
#: false-activation budget, held for each of the other users (docs/evaluation.md).
TRAINING_FREE_POLICY = {"threshold": 4.0, "drift": 0.2, "clip": 0.5, "horizon_s": 3.0}

#: Shortest time between two decisions (s): ``decoder.step_s``, and the step a source run
#: faster than real time divides it down to (:func:`bci.app._parts.at_source_speed`).
MIN_STEP_S = 0.01

#: Default schedule of the synthetic source: with the default menus, 13 then 17 Hz stand up
#: (the second selection confirms), 13 walks, 17 turns, 21 twice sits down.
DEFAULT_SCHEDULE = "rest:4,13:4,17:4,rest:4,13:5,rest:4,17:5,rest:4,21:5,rest:3,21:5,rest:3"


def _key(default: Any, meaning: str, *, flag: str = "", **constraints: Any) -> Any:
    """A configuration key: its default, one-line meaning, command-line flag, constraints."""
    extra = {"flag": flag} if flag else None
    if isinstance(default, (list, dict)):
        return Field(default_factory=lambda: copy.deepcopy(default), description=meaning,
                     json_schema_extra=extra, **constraints)
    return Field(default, description=meaning, json_schema_extra=extra, **constraints)


class _Section(BaseModel):
    """One ``[section]`` of the file: strict types, no unknown keys."""

    model_config = ConfigDict(strict=True, extra="forbid", validate_default=True)


NonNegative = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]


class SessionKeys(_Section):
    role: Literal["all", "decoder", "bridge"] = _key(
        "all", "all (decode and drive), decoder (publish decisions only) or bridge (drive the "
        "exoskeleton from a decisions stream)", flag="--role")
    output: str = _key("sessions", "folder in which each session gets a sub-folder",
                       flag="--output")
    duration_s: float = _key(0.0, "stop after this many seconds (0: until Ctrl-C or the end of "
                             "the source)", flag="--duration", ge=0.0, allow_inf_nan=False)
    live_view: bool = _key(True, "show the terminal live view", flag="--no-live-view")


class SourceKeys(_Section):
    kind: Literal["synthetic", "lsl", "replay"] = _key(
        "synthetic", "synthetic, lsl (a live headset) or replay (a recorded file streamed "
        "through LSL)", flag="--source")
    stream_name: str = _key("", "LSL name of the EEG stream (lsl: to find; synthetic/replay: "
                            "to publish; empty: any EEG stream / an automatic name)",
                            flag="--stream")
    stream_type: str = _key("EEG", "LSL type of the EEG stream (matched case-insensitively; "
                            "empty: any type)", flag="--stream-type")
    source_id: str = _key("", "pin the EEG stream to this LSL source id (recommended)",
                          flag="--source-id")
    host: str = _key("", "pin the EEG stream to this host name", flag="--host")
    replay_file: str = _key("", "recording to replay (source.kind = replay)", flag="--replay")
    schedule: str = _key(DEFAULT_SCHEDULE, "synthetic schedule 'label:seconds,...' (labels: "
                         "rest or a frequency)", flag="--schedule")
    speed: float = _key(1.0, "synthetic/replay speed factor (1 = real time); the decision "
                        "step and the policy's timings, seconds of signal, are divided by it",
                        flag="--speed", gt=0.0, le=100.0, allow_inf_nan=False)
    snr: float = _key(0.5, "synthetic source: SSVEP amplitude over the background (0.5: a "
                      "clear responder; 0.3: a weak one; the demo uses 0.6)", ge=0.0, le=10.0,
                      allow_inf_nan=False)
    seed: int = _key(0, "synthetic source: random seed", ge=0)
    timeout_s: float = _key(5.0, "how long to look for the stream", gt=0.0, le=600.0,
                            allow_inf_nan=False)
    stall_timeout_s: float = _key(0.4, "no sample for this long = stream stalled (the "
                                  "exoskeleton is stopped)", gt=0.0, le=60.0,
                                  allow_inf_nan=False)
    max_stall_s: float = _key(30.0, "end the session (exit status 3) when the stream (bridge: "
                              "the decisions stream) sends nothing for this long; 0: never",
                              ge=0.0, le=86400.0, allow_inf_nan=False)


def _check_freqs(v: list[float]) -> list[float]:
    if len({round(float(x), 1) for x in v}) != len(v):
        raise ValueError("must not repeat a frequency")
    return v


def _check_names(v: list[str]) -> list[str]:
    if len(set(v)) != len(v):
        raise ValueError("must not repeat a name")
    return v


class DecoderKeys(_Section):
    profile: str = _key("", "subject profile folder (from `ssvep-exo calibrate`); empty: "
                        "training-free decoder below", flag="--profile")
    method: str = _key("fbcca", "training-free method when no profile is given (when not "
                       "set and the lights are the population prior's, the population decoder "
                       "is used instead)")
    channels: Annotated[list[str], AfterValidator(_check_names)] = _key(
        [], "EEG channels to use (empty: all channels of the stream)")
    freqs: Annotated[list[Annotated[float, Field(ge=1.0, le=100.0)]],
                     AfterValidator(_check_freqs)] = _key(
        [13.0, 17.0, 21.0], "stimulus frequencies in Hz, each once", flag="--freqs",
        min_length=1)
    phases: list[Annotated[float, Field(allow_inf_nan=False)]] = _key(
        [], "stimulus phases in radians, one per frequency (empty: free-running lights); kept "
        "in the session log, ignored by the phase-invariant training-free decoders (profiles "
        "carry their own)")
    window_s: float = _key(2.0, "decoding window length, seconds", flag="--window", ge=0.1,
                           le=10.0, allow_inf_nan=False)
    step_s: float = _key(0.1, "time between two decisions, seconds (of signal: a source "
                         "run at source.speed divides it by the speed)", ge=MIN_STEP_S, le=5.0,
                         allow_inf_nan=False)
    params: dict[str, Any] = _key({}, "extra keyword arguments of the decoder (e.g. "
                                  "n_harmonics)")


class PolicyKeys(_Section):
    threshold: float = _key(TRAINING_FREE_POLICY["threshold"], "evidence a target must "
                            "accumulate to be committed (a profile brings its own, set for its "
                            "false-activation budget)", gt=0.0, allow_inf_nan=False)
    drift: NonNegative = _key(TRAINING_FREE_POLICY["drift"], "subtracted from each window's "
                              "evidence (weak sustained evidence never adds up)")
    clip: float = _key(TRAINING_FREE_POLICY["clip"], "largest evidence one window can add",
                       gt=0.0, allow_inf_nan=False)
    horizon_s: float = _key(TRAINING_FREE_POLICY["horizon_s"], "evidence older than this no "
                            "longer counts, seconds", gt=0.0, le=60.0, allow_inf_nan=False)
    refractory_s: float = _key(1.0, "no new command for this long after one", ge=0.0, le=60.0,
                               allow_inf_nan=False)
    release_s: float = _key(1.0, "the same target is committed again only after the decoder "
                            "stopped favouring it for this long", ge=0.0, le=60.0,
                            allow_inf_nan=False)


class DeviceKeys(_Section):
    port: str = _key("", "serial URL of the exoskeleton controller (device path, "
                     "socket://host:port, rfc2217://...); empty: the simulated exoskeleton",
                     flag="--port / --simulator")
    baudrate: int = _key(115200, "serial baud rate", flag="--baudrate", ge=300, le=4_000_000)
    walk_steps: int = _key(4, "steps per WALK command", ge=1, le=10)
    turn_deg: int = _key(45, "degrees per TURN command", ge=1, le=90)
    confirm_posture_changes: bool = _key(True, "stand/sit need the same target selected twice")
    sim_step_s: float = _key(0.6, "simulated exoskeleton: seconds per step", ge=0.01, le=10.0,
                             allow_inf_nan=False)
    sim_speed: float = _key(1.0, "simulated exoskeleton: speed factor of its motion", gt=0.0,
                            le=100.0, allow_inf_nan=False)


class LslKeys(_Section):
    decisions_stream: str = _key("ssvep-decisions", "LSL name of the decisions stream "
                                 "(published by decoder/all, read by bridge)",
                                 flag="--decisions-stream")
    decisions_source_id: str = _key("", "pin the decisions stream to this source id")


#: section -> its model; ``[menu.<posture>]`` (free keys: posture -> {target label: command})
#: is checked against the safety supervisor's table by :class:`bci.app.menus.CommandMenus`. ``docs/configuration.md``'s key tables are
#: generated from these models by ``scripts/config_doc.py``.
SECTIONS: dict[str, type[_Section]] = {
    "session": SessionKeys, "source": SourceKeys, "decoder": DecoderKeys,
    "policy": PolicyKeys, "device": DeviceKeys, "lsl": LslKeys,
}
#: section -> key -> field (default, description, constraints), ``"menu"`` included.
SCHEMA: dict[str, dict[str, Any]] = {
    **{sec: dict(model.model_fields) for sec, model in SECTIONS.items()}, "menu": {}}
ROLES = get_args(SessionKeys.model_fields["role"].annotation)
SOURCE_KINDS = get_args(SourceKeys.model_fields["kind"].annotation)

# what a validation error says of the value, by pydantic error type
_PROBLEM = {
    "float_type": "must be a number", "int_type": "must be an integer",
    "int_from_float": "must be an integer", "string_type": "must be a string",
    "bool_type": "must be true or false", "list_type": "must be a list",
    "dict_type": "must be a table", "finite_number": "must be a finite number",
    "too_short": "must be a non-empty list",
}


def _problem(err: dict, section: type[_Section], key: str) -> tuple[str, str]:
    """One validation error as ("must be ...", " Did you mean ...?")."""
    kind, ctx = err["type"], err.get("ctx", {})
    if kind == "literal_error":
        choices = get_args(section.model_fields[key].annotation)
        value = err["input"]
        return (f"must be one of {', '.join(map(repr, choices))}",
                suggest(value, choices) if isinstance(value, str) else "")
    bounds = {"greater_than_equal": ">= {ge}", "greater_than": "> {gt}",
              "less_than_equal": "<= {le}", "less_than": "< {lt}"}
    if kind in bounds:
        return _item_problem(err, "must be " + bounds[kind].format(**ctx)), ""
    if kind == "value_error":
        return str(ctx.get("error", err["msg"])), ""
    problem = _PROBLEM.get(kind, err["msg"][0].lower() + err["msg"][1:])
    if len(err["loc"]) > 1 and kind in ("float_type", "int_type", "string_type"):
        return problem.replace("must be a", "must be a list of") + "s", ""
    return _item_problem(err, problem), ""


def _item_problem(err: dict, problem: str) -> str:
    """An error on one item of a list: say so ("must hold values >= 1.0")."""
    if len(err["loc"]) < 2:
        return problem
    if problem == "must be a finite number":
        return "must hold finite numbers"
    return problem.replace("must be ", "must hold values ", 1)


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
        for sec, model in SECTIONS.items():
            given = data.get(sec, {})
            if not isinstance(given, dict):
                raise ConfigError(f"{origin}: [{sec}] must be a table of keys.")
            self._sections[sec] = self._validate(sec, model, given)
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

    def _validate(self, sec: str, model: type[_Section], given: dict) -> dict[str, Any]:
        """The section's values (defaults filled in) or a one-line ConfigError."""
        try:
            return model.model_validate(given).model_dump()
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            key = str(err["loc"][0])
            if err["type"] == "extra_forbidden":
                keys = model.model_fields
                raise ConfigError(
                    f"{self.origin}: unknown key '{sec}.{key}'.{suggest(key, keys)} "
                    f"Keys of [{sec}] are {', '.join(keys)}."
                ) from None
            problem, hint = _problem(err, model, key)
            raise ConfigError(
                f"{self.origin}: '{sec}.{key}' {problem}, got {given[key]!r}.{hint}"
            ) from None

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
