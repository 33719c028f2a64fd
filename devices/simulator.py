"""A simulated exoskeleton controller that speaks ``docs/protocol.md`` over a pty or TCP.

:class:`ControllerModel` is the controller's logic (posture state machine, step timing, 2-D
pose, battery, watchdog, e-stop latch, duplicate suppression), driven by frames and a clock.
:class:`ExoSimulator` serves it on a real byte link (a pseudo-terminal or a TCP port bound
to 127.0.0.1 by default) from a background thread, so the real driver and pyserial are
exercised end to end.

Examples
--------
>>> with ExoSimulator(transport="tcp", speed=5.0) as sim:      # doctest: +SKIP
...     with ExoskeletonDriver(sim.url) as exo:
...         exo.stand(); exo.walk(2)
"""

from __future__ import annotations

import logging
import math
import select
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass

from devices._check import check_option, check_range
from devices._transport import PtyLink, TcpLink
from devices.protocol import (
    HOST_VERBS,
    MOVING_STATES,
    PROTOCOL_VERSION,
    TURN_DEG,
    WALK_STEPS,
    Frame,
    FrameParser,
    Telemetry,
    encode_frame,
)

logger = logging.getLogger("devices")

CONTROLLER_NAME = "EXOSIM"


@dataclass(frozen=True)
class Halt:
    """A halt the controller made by itself (watchdog, fault).

    Attributes
    ----------
    time : float
        Monotonic time of the halt.
    reason : str
        ``"WATCHDOG"`` or a fault code.
    silence_s : float
        Seconds since the last valid host frame when the halt happened.
    state_before : str
        The state that was halted.
    """

    time: float
    reason: str
    silence_s: float
    state_before: str


class ControllerModel:
    """The controller logic, independent of any link (not thread-safe: the caller locks).

    Parameters
    ----------
    step_s : float, default=0.6
        Duration of one step in simulated seconds.
    speed : float, default=1.0
        Simulated seconds per real second (motion only; the watchdog runs in real time).
    watchdog_s : float, default=0.5
        Real seconds without a valid host frame before the controller halts.
    turn_rate : float, default=45.0
        Turning speed in degrees per simulated second.
    step_length : float, default=0.5
        Metres per step.
    battery : float, default=100.0
        Initial charge in percent.
    low_battery : float, default=5.0
        Below this charge motion is refused and a moving exoskeleton halts (fault LOW_BATTERY).
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
    ) -> None:
        self.step_s = check_range(step_s, "step_s", 0.0, None, low_inclusive=False)
        self.speed = check_range(speed, "speed", 0.0, None, low_inclusive=False)
        self.watchdog_s = check_range(watchdog_s, "watchdog_s", 0.0, None, low_inclusive=False)
        self.turn_rate = check_range(turn_rate, "turn_rate", 0.0, None, low_inclusive=False)
        self.step_length = check_range(step_length, "step_length", 0.0, None)
        self.battery = check_range(battery, "battery", 0.0, 100.0)
        self.low_battery = check_range(low_battery, "low_battery", 0.0, 100.0)
        self.state = "SITTING"
        self.posture = "SIT"  # physical posture under the state: SIT or STAND
        self.fault = "NONE"
        self.steps = 0
        self.x = self.y = self.heading = 0.0
        self._steps_left = 0
        self._step_progress = 0.0
        self._turn_left = 0.0
        self._turn_sign = 1.0
        self._last_tick: float | None = None
        self.last_rx: float | None = None
        self.watchdog_expired = False
        self.watchdog_trips = 0
        self.halts: list[Halt] = []
        self.executed: list[tuple[float, str, tuple[str, ...]]] = []
        self.duplicates = 0
        self._seen: OrderedDict[int, tuple[str, tuple[str, ...], list[bytes]]] = OrderedDict()
        self._tx_seq = 0
        # (t, state, x, y, heading, steps, fault) at every state change, step and 5 degrees
        self.trajectory: deque[tuple] = deque(maxlen=200_000)
        self._t0: float | None = None
        self._last_key: tuple | None = None

    def _record(self, now: float) -> None:
        if self._t0 is None:
            self._t0 = now
        key = (self.state, self.steps, round(self.heading / 5.0), self.fault)
        if key != self._last_key:
            self._last_key = key
            self.trajectory.append((round(now - self._t0, 4), self.state, round(self.x, 4),
                                    round(self.y, 4), round(self.heading % 360.0, 2),
                                    self.steps, self.fault))

    # ------------------------------------------------------------------ replies
    def _next_seq(self) -> int:
        self._tx_seq = (self._tx_seq + 1) % 65536
        return self._tx_seq

    def _ack(self, seq: int, *info: object) -> bytes:
        return encode_frame(self._next_seq(), "ACK", seq, *info)

    def _nak(self, seq: int, reason: str) -> bytes:
        return encode_frame(self._next_seq(), "NAK", seq, reason)

    def telemetry(self) -> Telemetry:
        """Return the current state as telemetry."""
        return Telemetry(
            self.state,
            "MOVING" if self.state in MOVING_STATES else "IDLE",
            self.steps,
            self.x,
            self.y,
            self.heading % 360.0,
            self.battery,
            self.fault,
        )

    def telemetry_frame(self) -> bytes:
        """Return a ``TEL`` frame of the current state."""
        return encode_frame(self._next_seq(), "TEL", *self.telemetry().to_args())

    # ------------------------------------------------------------------ frames
    def handle(self, frame: Frame, now: float) -> list[bytes]:
        """Act on one verified host frame at monotonic time ``now``; return reply frames."""
        self.tick(now)
        self.last_rx = now
        if self.watchdog_expired:
            self.watchdog_expired = False
            if self.fault == "WATCHDOG":
                self.fault = "NONE"
        if frame.verb == "HELLO":
            self._seen.clear()  # a new host session: sequence numbers start afresh
        cached = self._seen.get(frame.seq)
        if cached is not None and cached[0] == frame.verb and cached[1] == frame.args:
            self.duplicates += 1  # a retransmission: answer again, never execute twice
            return list(cached[2])
        replies = self._execute(frame, now)
        self._record(now)
        self._seen[frame.seq] = (frame.verb, frame.args, [r for r in replies if b",TEL," not in r])
        while len(self._seen) > 64:
            self._seen.popitem(last=False)
        return replies

    def _execute(self, f: Frame, now: float) -> list[bytes]:
        verb, args, seq = f.verb, f.args, f.seq
        if verb not in HOST_VERBS:
            return [self._nak(seq, "UNKNOWN_VERB")]
        nargs = {"HELLO": 1, "WALK": 1, "TURN": 2}.get(verb, 0)
        if len(args) != nargs:
            return [self._nak(seq, "BAD_ARGS")]
        if verb == "HB":
            return [self._ack(seq)]
        if verb == "HELLO":
            if args[0] != str(PROTOCOL_VERSION):
                return [self._nak(seq, "BAD_VERSION")]
            return [self._ack(seq, PROTOCOL_VERSION, CONTROLLER_NAME)]
        if verb == "STATUS":
            return [self._ack(seq), self.telemetry_frame()]
        if verb in ("STAND", "SIT", "WALK", "TURN"):
            reason = self._motion_refusal(verb, args)
            if reason:
                return [self._nak(seq, reason)]
        self.executed.append((now, verb, args))
        if verb == "STOP":
            if self.state in MOVING_STATES:
                self._halt_motion("STOPPED")
        elif verb == "ESTOP":
            self._halt_motion("ESTOP")
            self.fault = "ESTOP"
        elif verb == "RESET":
            if self.state in ("ESTOP", "FAULT"):
                self.state = "SITTING" if self.posture == "SIT" else "STOPPED"
            if self.fault != "LOW_BATTERY" or self.battery >= self.low_battery:
                self.fault = "NONE"
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
        # state-changing commands are followed at once by telemetry of the new state
        return [self._ack(seq), self.telemetry_frame()]

    def _motion_refusal(self, verb: str, args: tuple[str, ...]) -> str:
        """Return the NAK reason for a posture/motion command, or '' when it is legal."""
        if verb == "WALK":
            if not args[0].isdigit():
                return "BAD_ARGS"
            if not WALK_STEPS[0] <= int(args[0]) <= WALK_STEPS[1]:
                return "OUT_OF_RANGE"
        if verb == "TURN":
            if args[0] not in ("L", "R") or not args[1].isdigit():
                return "BAD_ARGS"
            if not TURN_DEG[0] <= int(args[1]) <= TURN_DEG[1]:
                return "OUT_OF_RANGE"
        if self.state == "ESTOP":
            return "ESTOP_LATCHED"
        if self.state == "FAULT":
            return "FAULT"
        if self.state in MOVING_STATES:
            return "BUSY"
        if verb in ("WALK", "TURN") and self.battery < self.low_battery:
            return "LOW_BATTERY"
        if self.state == "SITTING" and verb in ("WALK", "TURN"):
            return "ILLEGAL_STATE"
        return ""

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
            return
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
            self._self_halt(now, "LOW_BATTERY", "FAULT")
        if (
            self.last_rx is not None
            and not self.watchdog_expired
            and now - self.last_rx > self.watchdog_s
        ):
            self.watchdog_expired = True
            self.watchdog_trips += 1
            if self.state in MOVING_STATES:
                self._self_halt(now, "WATCHDOG", "STOPPED")
            if self.fault == "NONE":
                self.fault = "WATCHDOG"
        self._record(now)

    def _self_halt(self, now: float, reason: str, new_state: str) -> None:
        silence = now - self.last_rx if self.last_rx is not None else math.inf
        self.halts.append(Halt(now, reason, silence, self.state))
        logger.warning("exo-sim: halt (%s) after %.3f s without host frames", reason, silence)
        self._halt_motion(new_state)
        if reason != "WATCHDOG":
            self.fault = reason

    def inject_fault(self, code: str, now: float) -> None:
        """Put the controller in FAULT with ``code`` (for tests of fault handling)."""
        self.tick(now)
        self._self_halt(now, code, "FAULT")
        self._record(now)


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
        Telemetry rate.
    **model_params
        Passed to :class:`ControllerModel` (``step_s``, ``speed``, ``watchdog_s``, ...).

    Attributes
    ----------
    model : ControllerModel
        The controller state; read it under :attr:`lock` (or use :meth:`snapshot`).
    parser : devices.protocol.FrameParser
        The receiver (its ``drops`` count what the line carried that was not a frame).
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
        self.lock = threading.RLock()
        self._link: TcpLink | PtyLink | None = None
        self._thread: threading.Thread | None = None
        self._alive = False
        self.rx_frames = 0

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
        """Drop the current host connection (TCP) or replace the pty (a cut cable)."""
        with self.lock:
            if self._link is not None:
                self._link.cut()
                self.parser.reset()

    def snapshot(self) -> Telemetry:
        """Return the controller state now (thread-safe)."""
        with self.lock:
            self.model.tick(time.monotonic())
            return self.model.telemetry()

    def executed(self) -> list[tuple[float, str, tuple[str, ...]]]:
        """Return a copy of the executed commands (monotonic time, verb, args)."""
        with self.lock:
            return list(self.model.executed)

    def trajectory(self) -> list[tuple]:
        """Return the recorded path: rows (t, state, x, y, heading, steps, fault)."""
        with self.lock:
            return list(self.model.trajectory)

    def save_trajectory(self, csv_path, png_path=None) -> None:
        """Write the path as CSV and, when ``png_path`` is given, draw it as a PNG."""
        from devices.trajectory import plot_trajectory, write_trajectory

        rows = self.trajectory()
        write_trajectory(rows, csv_path)
        if png_path is not None:
            plot_trajectory(rows, png_path)

    def inject_fault(self, code: str = "MOTOR") -> None:
        """Put the controller in FAULT (it halts and reports ``code``)."""
        with self.lock:
            self.model.inject_fault(code, time.monotonic())

    # ------------------------------------------------------------------ loop
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
            fds = link.fds()
            try:
                ready = select.select(fds, [], [], 0.005)[0] if fds else []
            except (OSError, ValueError):
                ready = []  # the link was cut under us; next round uses the new fds
            if not fds:
                time.sleep(0.005)
            with self.lock:
                for fd in ready:
                    try:
                        data = link.on_readable(fd)
                    except OSError:
                        logger.exception("exo-sim: link read failed")
                        data = None
                    if data:
                        now = time.monotonic()
                        for frame in self.parser.feed(data):
                            self.rx_frames += 1
                            for reply in self.model.handle(frame, now):
                                link.write(reply)
                now = time.monotonic()
                self.model.tick(now)
                if now >= next_tel:
                    link.write(self.model.telemetry_frame())
                    next_tel = max(next_tel + period, now)
