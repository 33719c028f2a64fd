"""Wire format between the host and the exoskeleton controller (see ``docs/protocol.md``).

A frame is one ASCII line::

    $<seq>,<VERB>[,<arg>...]*<crc16>\\n

``seq`` is a decimal sequence number 0..65535 without leading zero, ``VERB`` 1-8 upper-case
letters, each argument 1-16 characters from ``[A-Za-z0-9_.+-]``, and ``crc16`` four upper-case
hex digits of the CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, xorout 0)
computed over the bytes between ``$`` and ``*`` (both excluded). A ``\\r`` before ``\\n`` is
tolerated.

:class:`FrameParser` is the streaming receiver used on both sides: it never raises, keeps a
bounded buffer and counts every dropped byte run or line by reason in :attr:`FrameParser.drops`.
"""

from __future__ import annotations

import binascii
import re
from collections import Counter
from dataclasses import dataclass, field

PROTOCOL_VERSION = 2
MAX_FRAME = 128  # bytes, including '$' and the line end
MAX_SEQ = 65535

# Verbs of the LED-stimulus extension (docs/protocol.md, section 12; see devices.leds).
LED_VERBS = ("LEDSET", "LEDON", "LEDOFF")
# Host -> controller verbs.
HOST_VERBS = ("HELLO", "STAND", "SIT", "WALK", "TURN", "STOP", "ESTOP", "RESET", "HB",
              "STATUS") + LED_VERBS
# Verbs that need the sender to own the open session (docs/protocol.md, section 4).
SESSION_VERBS = ("STAND", "SIT", "WALK", "TURN", "RESET", "HB") + LED_VERBS
# Verbs that move the exoskeleton (never sent by the conformance kit without --on-stand).
MOTION_VERBS = ("STAND", "SIT", "WALK", "TURN")
# Verbs the controller remembers to answer retransmissions without executing them twice.
DEDUP_VERBS = ("STAND", "SIT", "WALK", "TURN", "RESET") + LED_VERBS
# Number of arguments each host verb takes.
N_ARGS = {"HELLO": 2, "WALK": 1, "TURN": 2}
# Controller -> host verbs.
CONTROLLER_VERBS = ("ACK", "NAK", "TEL", "LEDEV")

WALK_STEPS = (1, 10)  # inclusive bounds of WALK <steps>
TURN_DEG = (1, 90)  # inclusive bounds of TURN <L|R> <deg>

# Controller states reported in telemetry (the posture state machine).
STATES = ("SITTING", "STANDING", "WALKING", "TURNING", "STOPPED", "FAULT", "ESTOP")
MOVING_STATES = ("WALKING", "TURNING")

# NAK reason codes.
REASONS = {
    "UNKNOWN_VERB": "the verb is not part of the protocol",
    "BAD_ARGS": "wrong number or format of arguments",
    "OUT_OF_RANGE": "an argument is outside its bounds",
    "ILLEGAL_STATE": "the command is not legal in the current posture",
    "BUSY": "a motion is in progress; send STOP first",
    "ESTOP_LATCHED": "emergency stop is latched; send RESET",
    "FAULT": "the controller is in fault; send RESET",
    "LOW_BATTERY": "battery too low for motion",
    "BAD_VERSION": "unsupported protocol version",
    "NOT_OWNER": "another connection owns the controller's session",
    "NO_SESSION": "no session is open; send HELLO first",
}
# Fault codes defined by the protocol (others are vendor codes).
FAULTS = ("NONE", "WATCHDOG", "ESTOP", "LOW_BATTERY")

_ARG_RE = re.compile(rb"^[A-Za-z0-9_.+\-]{1,16}$")
_INT_RE = re.compile(r"^(0|[1-9][0-9]{0,8})$")
_NONCE_RE = re.compile(r"^[A-Za-z0-9]{1,16}$")
_DELIM_RE = re.compile(rb"[$\n]")
_VERB_RE = re.compile(r"^[A-Z]{1,8}$")
_FRAME_RE = re.compile(
    rb"^\$(?P<body>(?P<seq>0|[1-9][0-9]{0,4}),(?P<verb>[A-Z]{1,8})"
    rb"(?P<args>(?:,[A-Za-z0-9_.+\-]{1,16})*))\*(?P<crc>[0-9A-F]{4})$"
)


def crc16(data: bytes) -> int:
    """Return the CRC-16/CCITT-FALSE of ``data`` (``crc16(b"123456789") == 0x29B1``).

    This is :func:`binascii.crc_hqx` with the initial value 0xFFFF.

    Parameters
    ----------
    data : bytes
        The bytes to checksum.

    Returns
    -------
    crc : int
        The 16-bit checksum.
    """
    return binascii.crc_hqx(data, 0xFFFF)


def parse_int(text: str) -> int | None:
    """Return the value of a protocol integer argument, or None when it is not one.

    Plain decimal only: no sign, no leading zero, no decimal point (``"03"`` -> None).
    """
    return int(text) if _INT_RE.match(text) else None


def valid_nonce(text: str) -> bool:
    """True when ``text`` is a valid HELLO nonce (1-16 characters ``[A-Za-z0-9]``)."""
    return bool(_NONCE_RE.match(text))


@dataclass(frozen=True)
class Frame:
    """A decoded, checksum-verified frame.

    Attributes
    ----------
    seq : int
        Sequence number of the sender (0..65535).
    verb : str
        The verb (``"WALK"``, ``"ACK"``, ...).
    args : tuple of str
        The arguments as strings.
    """

    seq: int
    verb: str
    args: tuple[str, ...] = ()

    def encode(self) -> bytes:
        """Return the frame as wire bytes (see :func:`encode_frame`)."""
        return encode_frame(self.seq, self.verb, *self.args)


def encode_frame(seq: int, verb: str, *args: object) -> bytes:
    """Return the wire bytes of one frame, CRC and line end included.

    Parameters
    ----------
    seq : int
        Sequence number, 0..65535.
    verb : str
        1-8 upper-case letters.
    *args : object
        Arguments; each is turned into a string of 1-16 characters from ``[A-Za-z0-9_.+-]``.

    Returns
    -------
    frame : bytes
        E.g. ``b"$7,WALK,3*XXXX\\n"``.
    """
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= MAX_SEQ:
        raise ValueError(f"'seq' must be an int in [0, {MAX_SEQ}], got {seq!r} instead.")
    if not isinstance(verb, str) or not _VERB_RE.match(verb):
        raise ValueError(f"'verb' must be 1-8 upper-case letters, got {verb!r} instead.")
    parts = [str(seq).encode(), verb.encode()]
    for a in args:
        b = str(a).encode("ascii", "replace")
        if not _ARG_RE.match(b):
            raise ValueError(
                f"Frame argument {a!r} must be 1-16 characters from [A-Za-z0-9_.+-]."
            )
        parts.append(b)
    body = b",".join(parts)
    return b"$" + body + b"*" + f"{crc16(body):04X}".encode() + b"\n"


@dataclass
class FrameParser:
    """Streaming frame receiver: feed it bytes, get verified frames back.

    It never raises. Bytes outside a frame, lines longer than ``max_frame``, malformed
    lines and lines with a wrong checksum are dropped and counted in :attr:`drops` by
    reason: ``"noise"`` (bytes outside any frame, counted in bytes), ``"overlong"``,
    ``"truncated"`` (a new ``$`` began before the line ended), ``"malformed"``,
    ``"bad_crc"``, ``"bad_seq"``.

    Parameters
    ----------
    max_frame : int, default=MAX_FRAME
        Longest accepted frame in bytes; the buffer never holds more.

    Attributes
    ----------
    drops : collections.Counter
        Drop counts by reason.
    frames : int
        Number of frames accepted.
    """

    max_frame: int = MAX_FRAME
    drops: Counter = field(default_factory=Counter)
    frames: int = 0
    _buf: bytearray = field(default_factory=bytearray, repr=False)
    _in_frame: bool = False
    _skipping: bool = False

    def reset(self) -> None:
        """Forget any partial line (the counters are kept)."""
        self._buf.clear()
        self._in_frame = False
        self._skipping = False

    def feed(self, data: bytes) -> list[Frame]:
        """Consume ``data`` and return the frames completed by it, in order."""
        out: list[Frame] = []
        try:
            self._consume(bytes(data), out)
        except Exception:  # pragma: no cover - defensive: the reader must never die
            self.drops["internal"] += 1
            self.reset()
        return out

    def _consume(self, data: bytes, out: list[Frame]) -> None:
        i, n = 0, len(data)
        while i < n:
            m = _DELIM_RE.search(data, i)
            j = m.start() if m else n
            seg = data[i:j]
            if self._in_frame:
                if len(self._buf) + len(seg) >= self.max_frame:
                    self.drops["overlong"] += 1
                    self._buf.clear()
                    self._in_frame = False
                    self._skipping = True  # ignore the rest of this line
                else:
                    self._buf += seg
            elif not self._skipping and seg:
                self.drops["noise"] += len(seg) - seg.count(b"\r")
            if m is None:
                return
            if data[j] == 0x24:  # '$' always starts a new frame
                if self._in_frame:
                    self.drops["truncated"] += 1
                self._buf.clear()
                self._buf.append(0x24)
                self._in_frame = True
                self._skipping = False
            else:  # '\n' ends a line
                if self._in_frame:
                    line = bytes(self._buf)
                    self._buf.clear()
                    self._in_frame = False
                    frame = self._decode(line[:-1] if line.endswith(b"\r") else line)
                    if frame is not None:
                        self.frames += 1
                        out.append(frame)
                self._skipping = False
            i = j + 1

    def _decode(self, line: bytes) -> Frame | None:
        m = _FRAME_RE.match(line)
        if m is None:
            self.drops["malformed"] += 1
            return None
        if crc16(m.group("body")) != int(m.group("crc"), 16):
            self.drops["bad_crc"] += 1
            return None
        seq = int(m.group("seq"))
        if seq > MAX_SEQ:
            self.drops["bad_seq"] += 1
            return None
        raw_args = m.group("args")
        args = tuple(raw_args[1:].decode().split(",")) if raw_args else ()
        return Frame(seq, m.group("verb").decode(), args)


@dataclass(frozen=True)
class Telemetry:
    """One controller telemetry report (``TEL`` frame).

    Attributes
    ----------
    state : str
        One of :data:`STATES`.
    motion : str
        ``"MOVING"`` or ``"IDLE"``.
    steps : int
        Steps taken since power-up.
    x, y : float
        Position in metres (start at 0, 0).
    heading : float
        Heading in degrees, 0..360, counter-clockwise from the initial +x direction.
    battery : float
        Battery charge in percent.
    fault : str
        ``"NONE"`` or a fault code (``"WATCHDOG"``, ``"ESTOP"``, ``"LOW_BATTERY"``, ...).
    since_ms : int
        Milliseconds since the state or the fault last changed (as the controller counts).
    received : float
        Host monotonic time (s) when it arrived (0 in frames not yet received).
    """

    state: str
    motion: str
    steps: int
    x: float
    y: float
    heading: float
    battery: float
    fault: str
    since_ms: int = 0
    received: float = 0.0

    @property
    def moving(self) -> bool:
        """True while the exoskeleton walks or turns."""
        return self.state in MOVING_STATES

    def to_args(self) -> tuple[str, ...]:
        """Return the ``TEL`` frame arguments."""
        return (
            self.state,
            self.motion,
            str(int(self.steps)),
            f"{self.x:.3f}",
            f"{self.y:.3f}",
            f"{self.heading:.1f}",
            f"{self.battery:.1f}",
            self.fault,
            str(min(int(self.since_ms), 4294967295)),
        )

    @classmethod
    def from_frame(cls, frame: Frame, received: float = 0.0) -> Telemetry | None:
        """Return the telemetry in a ``TEL`` frame, or None when it is not valid telemetry."""
        if frame.verb != "TEL" or len(frame.args) != 9:
            return None
        state, motion, steps, x, y, heading, battery, fault, since = frame.args
        if state not in STATES or motion not in ("MOVING", "IDLE"):
            return None
        if parse_int(steps) is None or parse_int(since) is None:
            return None
        try:
            return cls(
                state, motion, int(steps), float(x), float(y), float(heading),
                float(battery), fault, int(since), received,
            )
        except ValueError:
            return None

    def as_dict(self) -> dict:
        """Return the fields as a JSON-able dict."""
        return {
            "state": self.state, "motion": self.motion, "steps": self.steps, "x": self.x,
            "y": self.y, "heading": self.heading, "battery": self.battery, "fault": self.fault,
            "since_ms": self.since_ms,
        }
