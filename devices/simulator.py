"""A simulated exoskeleton controller that speaks ``docs/protocol.md`` over a pty or TCP.

:class:`ControllerModel` is the controller's logic (sessions and ownership, posture state
machine, step timing, 2-D pose, battery, watchdog, e-stop latch, duplicate suppression),
driven by frames and a clock. :class:`ExoSimulator` serves it on a real byte link (a
pseudo-terminal or a TCP port bound to 127.0.0.1 by default) from a background thread, so the
real driver and pyserial are exercised end to end.

Fault injection: ``faults=("dedup_stop", ...)`` makes the model break one property of the
protocol on purpose (see :data:`FAULTS`), so that the conformance kit
(:mod:`devices.conformance`) can be shown to catch each one.

Examples
--------
>>> with ExoSimulator(transport="tcp", speed=5.0) as sim:      # doctest: +SKIP
...     with ExoskeletonDriver(sim.url) as exo:
...         exo.stand(); exo.walk(2)
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass

from devices._check import check_option, check_range
from devices._transport import PtyLink, TcpLink
from devices.leds import ALL_LIGHTS, LedPanel, led_arg_refusal
from devices.protocol import (
    DEDUP_VERBS,
    HOST_VERBS,
    LED_VERBS,
    MOVING_STATES,
    N_ARGS,
    PROTOCOL_VERSION,
    TURN_DEG,
    WALK_STEPS,
    Frame,
    FrameParser,
    Telemetry,
    encode_frame,
    parse_int,
    valid_nonce,
)
from devices.trajectory import plot_trajectory, write_trajectory

logger = logging.getLogger("devices")

CONTROLLER_NAME = "EXOSIM"
MAX_CONNECTIONS = 4  # TCP: the owner and read-only connections; more are refused

# Deliberate protocol violations, one per property the conformance kit checks.
FAULTS = {
    "dedup_stop": "STOP and ESTOP are deduplicated like other verbs (a repeated STOP is "
                  "answered from memory and not executed)",
    "newest_client_wins": "a new TCP connection takes over the live session (and its motion)",
    "watchdog_any_frame": "any valid host frame feeds the watchdog, not only the session's HB",
    "late_telemetry": "halts the controller makes itself are reported by the next periodic "
                      "TEL only, not at once",
    "hello_keeps_motion": "a new HELLO opens a session without halting the motion in progress",
    "motion_without_session": "motion and posture verbs are executed outside a session",
    "reset_anywhere": "RESET is accepted in any state (also mid-walk)",
    "no_early_telemetry": "no telemetry before the first HELLO",
}


@dataclass(frozen=True)
class Halt:
    """A halt the controller made by itself (watchdog, end of session, fault).

    Attributes
    ----------
    time : float
        Monotonic time of the halt.
    reason : str
        ``"WATCHDOG"``, ``"SESSION_END"`` (the owner disconnected or a new HELLO arrived) or
        a fault code.
    silence_s : float
        Seconds since the last heartbeat of the session when the halt happened.
    state_before : str
        The state that was halted.
    """

    time: float
    reason: str
    silence_s: float
    state_before: str


@dataclass
class _Session:
    owner: int
    nonce: str
    opened: float
    last_hb: float


class ControllerModel:
    """The controller logic, independent of any link (not thread-safe: the caller locks).

    Connections are small integers (a serial line is connection 0); the link tells the
    model when one opens (:meth:`connect`) or closes (:meth:`disconnect`).

    Parameters
    ----------
    step_s : float, default=0.6
        Duration of one step in simulated seconds.
    speed : float, default=1.0
        Simulated seconds per real second (motion only; the watchdog runs in real time).
    watchdog_s : float, default=0.5
        Real seconds without a heartbeat of the session before the controller halts.
    turn_rate : float, default=45.0
        Turning speed in degrees per simulated second.
    step_length : float, default=0.5
        Metres per step.
    battery : float, default=100.0
        Initial charge in percent.
    low_battery : float, default=5.0
        Below this charge WALK/TURN are refused and a moving exoskeleton halts into FAULT.
    faults : iterable of str, default=()
        Deliberate protocol violations (keys of :data:`FAULTS`), for testing the
        conformance kit. Never use them otherwise.
    """

    def __init__(
        self,
        *,
        step_s: float = 0.6,
        speed: float = 1.0,
        watchdog_s: float = 0.5,
        turn_rate: float = 45.0,
        step_length: float = 0.5,
        battery: float = 100.0,
        low_battery: float = 5.0,
        faults=(),
    ) -> None:
        self.step_s = check_range(step_s, "step_s", 0.0, None, low_inclusive=False)
        self.speed = check_range(speed, "speed", 0.0, None, low_inclusive=False)
        self.watchdog_s = check_range(watchdog_s, "watchdog_s", 0.0, None, low_inclusive=False)
        self.turn_rate = check_range(turn_rate, "turn_rate", 0.0, None, low_inclusive=False)
        self.step_length = check_range(step_length, "step_length", 0.0, None)
        self.battery = check_range(battery, "battery", 0.0, 100.0)
        self.low_battery = check_range(low_battery, "low_battery", 0.0, 100.0)
        self.faults = frozenset(faults)
        unknown = sorted(self.faults - set(FAULTS))
        if unknown:
            raise ValueError(f"Unknown fault injection {unknown}; choose from "
                             f"{', '.join(sorted(FAULTS))}.")
        self.state = "SITTING"
        self.posture = "SIT"  # physical posture under the state: SIT or STAND
        self.steps = 0
        self.x = self.y = self.heading = 0.0
        self.session: _Session | None = None
        self.sessions = 0  # sessions opened so far
        self.connections: set[int] = set()
        self._fault_cause = "NONE"  # the cause of state FAULT
        self._watchdog_fault = False  # the last session ended by the watchdog
        self._steps_left = 0
        self._step_progress = 0.0
        self._turn_left = 0.0
        self._turn_sign = 1.0
        self._last_tick: float | None = None
        self.last_rx: float | None = None  # last valid host frame (any)
        self.last_hb: float | None = None  # last heartbeat of a session
        self.watchdog_trips = 0
        self.halts: list[Halt] = []
        self.executed: list[tuple[float, str, tuple[str, ...]]] = []
        self.duplicates = 0
        self._seen: OrderedDict[int, tuple[str, tuple[str, ...], str, tuple[str, ...]]] = \
            OrderedDict()
        self._tx_seq = 0
        self.leds = LedPanel()  # the stimulus lights (docs/protocol.md, section 12)
        self._key = (self.state, self.fault)
        self._changed_at: float | None = None
        self._report_due = False
        # (t, state, x, y, heading, steps, fault) at every state change, step and 5 degrees
        self.trajectory: deque[tuple] = deque(maxlen=200_000)
        self._t0: float | None = None
        self._last_key: tuple | None = None

    # ------------------------------------------------------------------ derived state
    @property
    def fault(self) -> str:
        """The fault reported in telemetry (docs/protocol.md, section 8)."""
        if self.state == "ESTOP":
            return "ESTOP"
        if self.state == "FAULT":
            return self._fault_cause
        if self.battery < self.low_battery:
            return "LOW_BATTERY"
        if self._watchdog_fault:
            return "WATCHDOG"
        return "NONE"

    def _note_change(self, now: float, *, by_controller: bool = False) -> None:
        """Start ``since_ms`` and ask for an immediate report when state or fault changed."""
        key = (self.state, self.fault)
        if self._changed_at is None:
            self._changed_at = now
        if key != self._key:
            self._key = key
            self._changed_at = now
            if not (by_controller and "late_telemetry" in self.faults):
                self._report_due = True
        self._record(now)

    def _record(self, now: float) -> None:
        if self._t0 is None:
            self._t0 = now
        key = (self.state, self.steps, round(self.heading / 5.0), self.fault)
        if key != self._last_key:
            self._last_key = key
            self.trajectory.append((round(now - self._t0, 4), self.state, round(self.x, 4),
                                    round(self.y, 4), round(self.heading % 360.0, 2),
                                    self.steps, self.fault))

    # ------------------------------------------------------------------ frames out
    def _next_seq(self) -> int:
        self._tx_seq = (self._tx_seq + 1) % 65536
        return self._tx_seq

    def _ack(self, seq: int, *info: object) -> bytes:
        return encode_frame(self._next_seq(), "ACK", seq, *info)

    def _nak(self, seq: int, reason: str) -> bytes:
        return encode_frame(self._next_seq(), "NAK", seq, reason)

    def telemetry(self, now: float | None = None) -> Telemetry:
        """Return the current state as telemetry (``since_ms`` counted up to ``now``)."""
        since = 0.0
        if now is not None and self._changed_at is not None:
            since = max(0.0, now - self._changed_at)
        return Telemetry(
            self.state,
            "MOVING" if self.state in MOVING_STATES else "IDLE",
            self.steps,
            self.x,
            self.y,
            self.heading % 360.0,
            self.battery,
            self.fault,
            round(since * 1000.0),
        )

    def telemetry_frame(self, now: float | None = None) -> bytes:
        """Return a ``TEL`` frame of the current state."""
        return encode_frame(self._next_seq(), "TEL", *self.telemetry(now).to_args())

    def take_report(self, now: float) -> bytes | None:
        """Return the ``TEL`` frame due at once after a change of state or fault, if any."""
        if not self._report_due:
            return None
        self._report_due = False
        return self.telemetry_frame(now)

    def take_led_events(self) -> list[bytes]:
        """Return the ``LEDEV`` frames of the light starts and stops not yet sent."""
        return [encode_frame(self._next_seq(), "LEDEV", *ev.to_args())
                for ev in self.leds.take_events()]

    def telemetry_allowed(self) -> bool:
        """False only while the ``no_early_telemetry`` fault holds telemetry back."""
        return "no_early_telemetry" not in self.faults or self.sessions > 0

    # ------------------------------------------------------------------ connections
    def connect(self, conn: int, now: float) -> bool:
        """A connection opened; return False when it must be refused (too many)."""
        self.tick(now)
        if "newest_client_wins" in self.faults and self.session is not None:
            self.session.owner = conn  # the broken behaviour: the newcomer inherits it all
        if len(self.connections) >= MAX_CONNECTIONS:
            return False
        self.connections.add(conn)
        return True

    def disconnect(self, conn: int, now: float) -> None:
        """A connection closed: the session it owned ends (halting any motion)."""
        self.connections.discard(conn)
        self.tick(now)
        if self.session is not None and self.session.owner == conn:
            self._end_session(now, "SESSION_END")
            self._note_change(now, by_controller=True)

    def _end_session(self, now: float, reason: str) -> None:
        s = self.session
        self.session = None
        self._seen.clear()
        self.leds.stop(ALL_LIGHTS, now)  # no flicker without the host that records it
        if self.state in MOVING_STATES:
            silence = now - s.last_hb if s is not None else math.inf
            self.halts.append(Halt(now, reason, silence, self.state))
            logger.warning("exo-sim: halt (%s) %.3f s after the last heartbeat", reason,
                           silence)
            self._halt_motion("STOPPED")

    # ------------------------------------------------------------------ frames in
    def handle(self, frame: Frame, now: float, conn: int = 0) -> list[bytes]:
        """Act on one verified host frame from connection ``conn`` at monotonic time ``now``.

        Returns the frames to send back to that connection (the ACK or NAK, and the TEL that
        answers STATUS). A change of state or fault is reported separately, to every
        connection, by :meth:`take_report`.
        """
        self.tick(now)
        self.last_rx = now
        s = self.session
        if "watchdog_any_frame" in self.faults and s is not None:
            s.last_hb = now  # the broken behaviour: any frame feeds the watchdog
        replies = self._handle(frame, now, conn)
        self._note_change(now)
        return replies

    def _handle(self, f: Frame, now: float, conn: int) -> list[bytes]:
        verb, args, seq = f.verb, f.args, f.seq
        if verb not in HOST_VERBS:
            return [self._nak(seq, "UNKNOWN_VERB")]
        reason = self._arg_refusal(verb, args)
        if reason:
            return [self._nak(seq, reason)]
        s = self.session
        if verb in ("STOP", "ESTOP", "STATUS"):  # no session needed, never deduplicated
            if verb != "STATUS" and "dedup_stop" in self.faults:
                cached = self._cached(seq, verb, args)
                if cached is not None:
                    return [cached]
            return self._remember(seq, verb, args, self._execute(f, now))
        if s is not None and s.owner != conn:
            return [self._nak(seq, "NOT_OWNER")]
        if verb == "HELLO":
            return [self._open_session(f, now, conn)]
        if s is None and not (verb != "HB" and "motion_without_session" in self.faults):
            return [self._nak(seq, "NO_SESSION")]
        if verb == "HB":
            s.last_hb = self.last_hb = now
            return [self._ack(seq)]
        cached = self._cached(seq, verb, args)
        if cached is not None:
            return [cached]
        return self._remember(seq, verb, args, self._execute(f, now))

    def _arg_refusal(self, verb: str, args: tuple[str, ...]) -> str:
        if verb in LED_VERBS:
            return led_arg_refusal(verb, args)
        if verb == "HELLO":
            if not args or args[0] != str(PROTOCOL_VERSION):
                return "BAD_VERSION"
            return "" if len(args) == 2 and valid_nonce(args[1]) else "BAD_ARGS"
        if len(args) != N_ARGS.get(verb, 0):
            return "BAD_ARGS"
        if verb == "WALK":
            n = parse_int(args[0])
            if n is None:
                return "BAD_ARGS"
            return "" if WALK_STEPS[0] <= n <= WALK_STEPS[1] else "OUT_OF_RANGE"
        if verb == "TURN":
            deg = parse_int(args[1])
            if args[0] not in ("L", "R") or deg is None:
                return "BAD_ARGS"
            return "" if TURN_DEG[0] <= deg <= TURN_DEG[1] else "OUT_OF_RANGE"
        return ""

    def _cached(self, seq: int, verb: str, args: tuple[str, ...]) -> bytes | None:
        """The remembered reply when this frame is a retransmission (with a new seq)."""
        hit = self._seen.get(seq)
        if hit is None or hit[0] != verb or hit[1] != args:
            return None
        self.duplicates += 1  # a retransmission: answer again, never execute twice
        return encode_frame(self._next_seq(), hit[2], *hit[3])

    def _remember(self, seq: int, verb: str, args: tuple[str, ...],
                  replies: list[bytes]) -> list[bytes]:
        remembered = DEDUP_VERBS + (("STOP", "ESTOP") if "dedup_stop" in self.faults else ())
        if verb in remembered and self.session is not None:
            reply = FrameParser().feed(replies[0])[0]
            self._seen[seq] = (verb, args, reply.verb, reply.args)
            while len(self._seen) > 64:
                self._seen.popitem(last=False)
        return replies

    def _open_session(self, f: Frame, now: float, conn: int) -> bytes:
        if self.session is not None or self.state in MOVING_STATES:
            if "hello_keeps_motion" in self.faults:
                self.session = None
                self._seen.clear()
            else:
                self._end_session(now, "SESSION_END")
        nonce = f.args[1]
        self.session = _Session(owner=conn, nonce=nonce, opened=now, last_hb=now)
        self.sessions += 1
        self._watchdog_fault = False
        self._seen.clear()
        return self._ack(f.seq, PROTOCOL_VERSION, CONTROLLER_NAME, nonce)

    def _execute(self, f: Frame, now: float) -> list[bytes]:
        verb, args, seq = f.verb, f.args, f.seq
        if verb == "STATUS":
            return [self._ack(seq), self.telemetry_frame(now)]
        if verb in LED_VERBS:  # the lights never move the exoskeleton: any state
            reason = self.leds.execute(verb, args, now)
            if reason:
                return [self._nak(seq, reason)]
            self.executed.append((now, verb, args))
            return [self._ack(seq)]
        if verb in ("STAND", "SIT", "WALK", "TURN"):
            reason = self._motion_refusal(verb)
            if reason:
                return [self._nak(seq, reason)]
        if verb == "RESET" and self.state not in ("ESTOP", "FAULT") \
                and "reset_anywhere" not in self.faults:
            return [self._nak(seq, "ILLEGAL_STATE")]
        self.executed.append((now, verb, args))
        if verb == "STOP":
            if self.state in MOVING_STATES:
                self._halt_motion("STOPPED")
        elif verb == "ESTOP":
            self._halt_motion("ESTOP")
        elif verb == "RESET":
            if self.state in ("ESTOP", "FAULT"):
                self.state = "SITTING" if self.posture == "SIT" else "STOPPED"
                self._fault_cause = "NONE"
        elif verb == "STAND":
            self.state, self.posture = "STANDING", "STAND"
        elif verb == "SIT":
            self.state, self.posture = "SITTING", "SIT"
        elif verb == "WALK":
            self.state = "WALKING"
            self._steps_left = int(args[0])
            self._step_progress = 0.0
        elif verb == "TURN":
            self.state = "TURNING"
            self._turn_sign = 1.0 if args[0] == "L" else -1.0
            self._turn_left = float(args[1])
        return [self._ack(seq)]

    def _motion_refusal(self, verb: str) -> str:
        """Return the NAK reason for a posture/motion command, or '' when it is legal."""
        if self.state == "ESTOP":
            return "ESTOP_LATCHED"
        if self.state == "FAULT":
            return "FAULT"
        if self.state in MOVING_STATES:
            return "BUSY"
        if verb in ("WALK", "TURN") and self.battery < self.low_battery:
            return "LOW_BATTERY"
        legal = ("SITTING",) if verb == "STAND" else ("STANDING", "STOPPED")
        return "" if self.state in legal else "ILLEGAL_STATE"

    def _halt_motion(self, new_state: str) -> None:
        self._steps_left = 0
        self._step_progress = 0.0
        self._turn_left = 0.0
        self.state = new_state

    # ------------------------------------------------------------------ time
    def tick(self, now: float) -> None:
        """Advance motion, battery and the watchdog to monotonic time ``now``."""
        last = self._last_tick
        self._last_tick = now
        if last is None or now <= last:
            self._note_change(now, by_controller=True)
            return
        self.leds.tick(now)
        dt = (now - last) * self.speed
        self.battery = max(0.0, self.battery - 0.002 * dt)
        if self.state == "WALKING":
            self._step_progress += dt / self.step_s
            while self._step_progress >= 1.0 and self._steps_left > 0:
                self._step_progress -= 1.0
                self._steps_left -= 1
                self.steps += 1
                h = math.radians(self.heading)
                self.x += self.step_length * math.cos(h)
                self.y += self.step_length * math.sin(h)
                self.battery = max(0.0, self.battery - 0.05)
            if self._steps_left == 0:
                self._halt_motion("STANDING")
        elif self.state == "TURNING":
            d = min(self._turn_left, self.turn_rate * dt)
            self._turn_left -= d
            self.heading = (self.heading + self._turn_sign * d) % 360.0
            if self._turn_left <= 1e-9:
                self._halt_motion("STANDING")
        if self.state in MOVING_STATES and self.battery < self.low_battery:
            self._self_halt(now, "LOW_BATTERY")
        s = self.session
        if s is not None and now - s.last_hb > self.watchdog_s:
            self.watchdog_trips += 1
            self._end_session(now, "WATCHDOG")
            self._watchdog_fault = True
        self._note_change(now, by_controller=True)

    def _self_halt(self, now: float, reason: str) -> None:
        s = self.session
        silence = now - s.last_hb if s is not None else math.inf
        self.halts.append(Halt(now, reason, silence, self.state))
        logger.warning("exo-sim: halt into FAULT (%s)", reason)
        self._halt_motion("FAULT")
        self._fault_cause = reason

    def inject_fault(self, code: str, now: float) -> None:
        """Put the controller in FAULT with vendor code ``code`` (tests of fault handling)."""
        self.tick(now)
        self._self_halt(now, code)
        self._note_change(now, by_controller=True)


class ExoSimulator:
    """Serve a :class:`ControllerModel` on a pseudo-terminal or a TCP port.

    Parameters
    ----------
    transport : {"tcp", "pty"}, default="tcp"
        The byte link.
    host : str, default="127.0.0.1"
        TCP address to bind (localhost unless told otherwise).
    port : int, default=0
        TCP port (0 picks a free one; see :attr:`url`).
    link : str | None
        For a pty, a symlink kept pointing at the current slave device (see
        :class:`devices._transport.PtyLink`).
    telemetry_hz : float, default=10.0
        Periodic telemetry rate.
    **model_params
        Passed to :class:`ControllerModel` (``step_s``, ``speed``, ``watchdog_s``,
        ``faults``, ...).

    Attributes
    ----------
    model : ControllerModel
        The controller state; read it under :attr:`lock` (or use :meth:`snapshot`).
    parser : devices.protocol.FrameParser
        Its ``drops`` count what the line carried that was not a frame (all connections).
    """

    def __init__(
        self,
        *,
        transport: str = "tcp",
        host: str = "127.0.0.1",
        port: int = 0,
        link: str | None = None,
        telemetry_hz: float = 10.0,
        **model_params,
    ) -> None:
        self.transport = check_option(transport, ("tcp", "pty"), "transport")
        self.host, self.port, self.link = host, port, link
        self.telemetry_hz = check_range(telemetry_hz, "telemetry_hz", 0.0, 1000.0,
                                        low_inclusive=False)
        self.model = ControllerModel(**model_params)
        self.parser = FrameParser()
        self._parsers: dict[int, FrameParser] = {}
        self.lock = threading.RLock()
        self._link: TcpLink | PtyLink | None = None
        self._thread: threading.Thread | None = None
        self._alive = False
        self.rx_frames = 0
        self.transmitting = True  # False: a link dead from the controller to the host
        self.receiving = True  # False: a link dead from the host to the controller

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> ExoSimulator:
        """Open the link and start serving in a daemon thread; return self."""
        if self._thread is not None:
            raise RuntimeError("The simulator is already running; call stop() first.")
        if self.transport == "tcp":
            self._link = TcpLink(self.host, self.port)
            self.port = self._link.port
        else:
            self._link = PtyLink(self.link)
        self._alive = True
        self._thread = threading.Thread(target=self._serve, name="exo-sim", daemon=True)
        self._thread.start()
        logger.info("exo-sim: serving on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving and close the link (the controller state is kept for inspection)."""
        self._alive = False
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        if self._link is not None:
            self._link.close()

    def __enter__(self) -> ExoSimulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """What a host passes to ``serial_for_url``: ``socket://host:port`` or the pty path."""
        if self._link is None:
            raise RuntimeError("The simulator is not started; call start() first.")
        return self._link.url

    @property
    def client_connected(self) -> bool:
        """True while a host is attached to the link."""
        return self._link is not None and self._link.connected

    def cut_link(self) -> None:
        """Drop every host connection (TCP) or replace the pty (a cut cable)."""
        with self.lock:
            if self._link is not None:
                now = time.monotonic()
                for conn in self._link.cut():
                    self._parsers.pop(conn, None)
                    if self.transport == "tcp":
                        self.model.disconnect(conn, now)
                self._report(now)

    def one_way(self, *, transmitting: bool = True, receiving: bool = True) -> None:
        """Break the link in one direction (or both): the controller stops transmitting
        (``transmitting=False``) or stops receiving (``receiving=False``); True restores."""
        with self.lock:
            self.transmitting, self.receiving = bool(transmitting), bool(receiving)

    def _write(self, data: bytes, conn: int | None = None) -> None:
        if self.transmitting:
            self._link.write(data, conn)

    def send_raw(self, data: bytes) -> None:
        """Write ``data`` as is to every connection (tests: noise on the line)."""
        with self.lock:
            if self._link is not None:
                self._link.write(data)

    def snapshot(self) -> Telemetry:
        """Return the controller state now (thread-safe)."""
        with self.lock:
            now = time.monotonic()
            self.model.tick(now)
            return self.model.telemetry(now)

    def executed(self) -> list[tuple[float, str, tuple[str, ...]]]:
        """Return a copy of the executed commands (monotonic time, verb, args)."""
        with self.lock:
            return list(self.model.executed)

    def trajectory(self) -> list[tuple]:
        """Return the recorded path: rows (t, state, x, y, heading, steps, fault)."""
        with self.lock:
            return list(self.model.trajectory)

    def save_trajectory(self, csv_path=None, png_path=None) -> None:
        """Write the path as CSV (``csv_path``) and/or draw it as a PNG (``png_path``)."""
        rows = self.trajectory()
        if csv_path is not None:
            write_trajectory(rows, csv_path)
        if png_path is not None:
            plot_trajectory(rows, png_path)

    def inject_fault(self, code: str = "MOTOR") -> None:
        """Put the controller in FAULT (it halts and reports ``code`` at once)."""
        with self.lock:
            now = time.monotonic()
            self.model.inject_fault(code, now)
            self._report(now)

    # ------------------------------------------------------------------ loop
    def _report(self, now: float) -> None:
        """Send the immediate TEL after a change of state or fault (to every connection)."""
        frame = self.model.take_report(now)
        if frame is not None and self.model.telemetry_allowed():
            self._write(frame)
        for event in self.model.take_led_events():
            self._write(event)

    def _on_event(self, kind: str, conn: int, data: bytes | None) -> None:
        link, model = self._link, self.model
        now = time.monotonic()
        if kind == "connect":
            if not model.connect(conn, now):
                logger.info("exo-sim: connection %d refused (%d already)", conn,
                            MAX_CONNECTIONS)
                link.refuse(conn)
                return
            self._parsers[conn] = FrameParser(drops=self.parser.drops)
            if model.telemetry_allowed():
                self._write(model.telemetry_frame(now), conn)
        elif kind == "disconnect":
            self._parsers.pop(conn, None)
            if self.transport == "tcp":  # a serial controller cannot see its host go
                model.disconnect(conn, now)
        else:
            parser = self._parsers.get(conn)
            if parser is None or not self.receiving:
                return
            for frame in parser.feed(data):
                self.rx_frames += 1
                self.parser.frames += 1
                for reply in model.handle(frame, now, conn):
                    self._write(reply, conn)
                self._report(now)  # a state change: its TEL right after the ACK

    def _serve(self) -> None:
        period = 1.0 / self.telemetry_hz
        next_tel = time.monotonic()
        drops_seen, next_drop_log = 0, 0.0
        while self._alive:
            if time.monotonic() >= next_drop_log:  # garbage on the line: logged once a second
                total = sum(self.parser.drops.values())
                if total > drops_seen:
                    logger.warning("exo-sim: discarded input (total by reason: %s)",
                                   dict(self.parser.drops))
                    drops_seen = total
                next_drop_log = time.monotonic() + 1.0
            link = self._link
            events = link.poll(max(0.0, min(0.005, next_tel - time.monotonic())))
            with self.lock:
                for kind, conn, data in events:
                    try:
                        self._on_event(kind, conn, data)
                    except OSError:
                        logger.exception("exo-sim: link failure")
                now = time.monotonic()
                self.model.tick(now)
                self._report(now)
                if now >= next_tel:
                    if self.model.telemetry_allowed():
                        self._write(self.model.telemetry_frame(now))
                    next_tel = max(next_tel + period, now)
