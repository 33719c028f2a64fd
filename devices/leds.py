"""The LED-stimulus extension of the protocol (``docs/protocol.md``, section 12).

Verbs ``LEDSET <light>,<freq>[,<phase>]``, ``LEDON <mask>[,<ms>]`` and ``LEDOFF <mask>``
drive up to five stimulus lights; the controller reports every start and stop with
``LEDEV <mask>,<ON|OFF>,<t_us>``. This module holds the argument rules shared by both sides,
:class:`LedEvent` (a decoded ``LEDEV``) and :class:`LedPanel`, the lights of the simulated
controller (:mod:`devices.simulator`); the reference firmware (``devices/firmware``) implements
the same on real pins.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from devices.protocol import Frame, parse_int

N_LIGHTS = 5
ALL_LIGHTS = (1 << N_LIGHTS) - 1  # the mask of every light
FREQ_RANGE = (1.0, 100.0)  # Hz, inclusive, up to 3 decimals
PHASE_MAX = 359.9  # degrees, up to 1 decimal
DURATION_MS = (1, 600_000)  # inclusive bounds of a timed LEDON
_DECIMAL_RE = re.compile(r"^(0|[1-9][0-9]{0,8})(\.[0-9]+)?$")
_UINT32_RE = re.compile(r"^(0|[1-9][0-9]{0,9})$")


def parse_decimal(text: str, decimals: int) -> float | None:
    """Return the value of a decimal argument with at most ``decimals`` fraction digits.

    The integer part follows the protocol's integer rule (no sign, no leading zero); a point
    needs digits on both sides (``"0.5"``, not ``".5"`` or ``"5."``). None when malformed.
    """
    m = _DECIMAL_RE.match(text)
    if m is None or (m.group(2) is not None and len(m.group(2)) - 1 > decimals):
        return None
    return float(text)


def mask_of(lights: int | Iterable[int]) -> int:
    """Return the mask of light numbers (1..5): ``mask_of([1, 3]) == 0b101``."""
    lights = [lights] if isinstance(lights, int) else list(lights)
    mask = 0
    for n in lights:
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= N_LIGHTS:
            raise ValueError(f"Lights are numbered 1..{N_LIGHTS}, got {n!r}.")
        mask |= 1 << (n - 1)
    if not mask:
        raise ValueError("Name at least one light.")
    return mask


def lights_of(mask: int) -> tuple[int, ...]:
    """Return the light numbers in ``mask``."""
    return tuple(n for n in range(1, N_LIGHTS + 1) if mask & (1 << (n - 1)))


def format_freq(freq: float) -> str:
    """The ``LEDSET`` argument of a frequency in Hz, to the millihertz (``"13"``, ``"33.333"``)."""
    return f"{round(float(freq), 3):.3f}".rstrip("0").rstrip(".")


def format_phase(phase_deg: float) -> str:
    """The ``LEDSET`` argument of a phase in degrees, to the tenth (``"90"``, ``"22.5"``)."""
    value = round(float(phase_deg) % 360.0, 1)
    return f"{0.0 if value >= 360.0 else value:.1f}".rstrip("0").rstrip(".")


def led_arg_refusal(verb: str, args: tuple[str, ...]) -> str:
    """The NAK reason of a malformed LED command (``BAD_ARGS``, ``OUT_OF_RANGE``), or ''."""
    if verb == "LEDSET":
        if len(args) not in (2, 3):
            return "BAD_ARGS"
        light, freq = parse_int(args[0]), parse_decimal(args[1], 3)
        phase = parse_decimal(args[2], 1) if len(args) == 3 else 0.0
        if light is None or freq is None or phase is None:
            return "BAD_ARGS"
        ok = (1 <= light <= N_LIGHTS and FREQ_RANGE[0] <= freq <= FREQ_RANGE[1]
              and phase <= PHASE_MAX)
        return "" if ok else "OUT_OF_RANGE"
    if verb in ("LEDON", "LEDOFF"):
        if not (len(args) == 1 or (verb == "LEDON" and len(args) == 2)):
            return "BAD_ARGS"
        values = [parse_int(a) for a in args]
        if None in values:
            return "BAD_ARGS"
        if not 1 <= values[0] <= ALL_LIGHTS:
            return "OUT_OF_RANGE"
        if len(values) == 2 and not DURATION_MS[0] <= values[1] <= DURATION_MS[1]:
            return "OUT_OF_RANGE"
        return ""
    raise ValueError(f"{verb!r} is not an LED verb.")


@dataclass(frozen=True)
class LedEvent:
    """Lights that started or went dark together (a ``LEDEV`` frame).

    Attributes
    ----------
    mask : int
        The lights (bit 0 = light 1).
    on : bool
        True when they started, False when they went dark.
    t_us : int
        Controller time of the change, microseconds modulo 2**32.
    received : float
        Host monotonic time of arrival (0 in events not received).
    """

    mask: int
    on: bool
    t_us: int
    received: float = 0.0

    @property
    def lights(self) -> tuple[int, ...]:
        """The light numbers."""
        return lights_of(self.mask)

    def to_args(self) -> tuple[str, ...]:
        """The ``LEDEV`` frame arguments."""
        return (str(self.mask), "ON" if self.on else "OFF", str(self.t_us % (1 << 32)))

    @classmethod
    def from_frame(cls, frame: Frame, received: float = 0.0) -> LedEvent | None:
        """The event in a ``LEDEV`` frame, or None when it is not a valid one."""
        if frame.verb != "LEDEV" or len(frame.args) != 3 or frame.args[1] not in ("ON", "OFF"):
            return None
        mask, t_us = parse_int(frame.args[0]), frame.args[2]
        if mask is None or not 1 <= mask <= ALL_LIGHTS or not _UINT32_RE.match(t_us) \
                or int(t_us) >= 1 << 32:
            return None
        return cls(mask, frame.args[1] == "ON", int(t_us), received)


class LedPanel:
    """The stimulus lights of the simulated controller (no pins: their times and events).

    Times are host monotonic seconds; the controller clock of the events counts microseconds
    from ``origin``. A timed run ends exactly its milliseconds after its start.

    Parameters
    ----------
    origin : float | None
        Monotonic time of the controller's power-up, the zero of its clock (default: the
        first time the panel is used).
    """

    def __init__(self, origin: float | None = None) -> None:
        self.origin = origin
        self.freq = [10.0] * N_LIGHTS
        self.phase = [0.0] * N_LIGHTS
        self.on = 0  # mask of the lights running
        self._end: dict[int, tuple[float, int]] = {}  # light -> (end time, end t_us)
        self._events: list[LedEvent] = []
        #: Every event so far, for inspection (tests).
        self.log: list[LedEvent] = []

    def _t_us(self, now: float) -> int:
        if self.origin is None:
            self.origin = now
        return round((now - self.origin) * 1e6)

    def _emit(self, mask: int, on: bool, t_us: int) -> None:
        ev = LedEvent(mask, on, t_us % (1 << 32))
        self._events.append(ev)
        self.log.append(ev)

    def execute(self, verb: str, args: tuple[str, ...], now: float) -> str:
        """Carry out a well-formed LED command; return its NAK reason or '' (ACK)."""
        self.tick(now)
        if verb == "LEDSET":
            light = int(args[0])
            if self.on & (1 << (light - 1)):
                return "ILLEGAL_STATE"
            self.freq[light - 1] = float(args[1])
            self.phase[light - 1] = float(args[2]) if len(args) == 3 else 0.0
            return ""
        mask = int(args[0])
        if verb == "LEDON":
            if self.on & mask:
                return "ILLEGAL_STATE"
            t_us = self._t_us(now)
            self.on |= mask
            if len(args) == 2:
                ms = int(args[1])
                for n in lights_of(mask):
                    self._end[n] = (now + ms / 1000.0, t_us + ms * 1000)
            self._emit(mask, True, t_us)
            return ""
        self.stop(mask, now)  # LEDOFF
        return ""

    def stop(self, mask: int, now: float) -> None:
        """Switch off the lights of ``mask`` that are on (one event)."""
        off = self.on & mask
        if off:
            self.on &= ~off
            for n in lights_of(off):
                self._end.pop(n, None)
            self._emit(off, False, self._t_us(now))

    def tick(self, now: float) -> None:
        """End the timed runs that are due by ``now``."""
        if self.origin is None:
            self.origin = now
        due: dict[int, int] = {}
        for n, (end, t_us) in list(self._end.items()):
            if now >= end:
                due[t_us] = due.get(t_us, 0) | (1 << (n - 1))
                del self._end[n]
        for t_us, mask in sorted(due.items()):
            self.on &= ~mask
            self._emit(mask, False, t_us)

    def take_events(self) -> list[LedEvent]:
        """The events not yet sent, oldest first."""
        out, self._events = self._events, []
        return out
