"""The host-side driver of the exoskeleton controller (protocol: ``docs/protocol.md``, v2).

The port is opened with :func:`serial.serial_for_url`, so a device path, ``socket://host:port``,
``rfc2217://``, ``loop://`` and ``exosim://`` (an in-process simulator) all work the same way.
A device path is opened exclusively (``exclusive=True`` and ``TIOCEXCL``). Threads:

- a reader, pyserial's :class:`serial.threaded.ReaderThread` with :class:`FrameProtocol`,
  parses frames, wakes the command waiting for that ACK/NAK, records telemetry and the time
  the controller was last heard, and reports a read error;
- a heartbeat sender that does nothing but send ``HB`` every ``heartbeat_period`` on the
  monotonic clock, at the highest priority the OS grants (:mod:`devices._priority`), and only
  while the controller was heard within ``link_timeout`` (so a link dead in either direction
  ends in the controller's watchdog halt);
- a monitor that declares the link dead after ``link_timeout`` without a controller frame (or
  on a read/write error, or when the controller says the session ended), sends one STOP
  (best effort), and reconnects with exponential backoff (a new session: HELLO, then STOP);
- an event dispatcher that calls the listeners (:meth:`ExoskeletonDriver.add_listener`) in
  order, so a listener may itself call :meth:`ExoskeletonDriver.send`.

Commands are never queued across a link loss: :meth:`~ExoskeletonDriver.send` fails at once
with :class:`~devices.errors.LinkLostError` while the link is down, and a command in flight when
the link drops is abandoned, never retransmitted on the new connection.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import logging
import queue
import secrets
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import serial
import serial.threaded

try:  # POSIX: TIOCEXCL for exclusive ttys (Windows opens COM ports exclusively anyway)
    import fcntl
    import termios
except ImportError:  # pragma: no cover - Windows
    fcntl = termios = None

from devices._check import check_range, ensure_int
from devices._priority import raise_thread_priority
from devices.commands import Command
from devices.errors import CommandRejected, CommandTimeout, DeviceError, LinkLostError, PortError
from devices.leds import (
    ALL_LIGHTS,
    DURATION_MS,
    FREQ_RANGE,
    LedEvent,
    format_freq,
    format_phase,
    mask_of,
)
from devices.protocol import (
    PROTOCOL_VERSION,
    REASONS,
    TURN_DEG,
    WALK_STEPS,
    Frame,
    FrameParser,
    Telemetry,
    encode_frame,
)

logger = logging.getLogger("devices")

if "devices.urlhandler" not in serial.protocol_handler_packages:
    serial.protocol_handler_packages.append("devices.urlhandler")

Listener = Callable[[str, dict], None]
SESSION_LOST_REASONS = ("NO_SESSION", "NOT_OWNER")


@dataclass
class _Waiter:
    verb: str
    nonce: str = ""  # HELLO: the ACK must echo it
    event: threading.Event = field(default_factory=threading.Event)
    reply: Frame | None = None  # None after the event: the link was lost


@dataclass(frozen=True)
class Reply:
    """The controller's answer to one command.

    Attributes
    ----------
    ok : bool
        True for ACK, False for NAK.
    seq : int
        The host sequence number answered.
    verb : str
        The command's verb.
    args : tuple of str
        ACK info or ``(reason,)`` for a NAK.
    time : float
        Host monotonic time of arrival.
    """

    ok: bool
    seq: int
    verb: str
    args: tuple[str, ...]
    time: float


def port_error(url: str, exc: BaseException) -> PortError:
    """Return a :class:`PortError` that says what went wrong with ``url`` and what to do."""
    text = str(exc)
    code = getattr(exc, "errno", None)
    if code == errno.ENOENT or "No such file" in text:
        msg = f"Serial port {url!r} not found; list ports with `ssvep-exo devices`."
    elif code == errno.EBUSY or "exclusively lock" in text or "busy" in text.lower():
        msg = (f"Serial port {url!r} is busy (in use by another program); close that program "
               "or choose another port.")
    elif "exclusive" in text:
        msg = (f"Cannot open serial port {url!r} exclusively ({text}); another program could "
               "write to the controller, so the driver refuses to use it.")
    elif code == errno.EACCES or "Permission denied" in text:
        msg = (f"Permission denied on serial port {url!r}; add your user to the 'dialout' "
               "group (or run `ssvep-exo devices` to pick another port).")
    elif "Connection refused" in text or code == errno.ECONNREFUSED:
        msg = (f"Nothing is listening at {url!r}; start the controller or "
               "`ssvep-exo exo-sim --tcp PORT`.")
    elif isinstance(exc, ValueError):
        msg = (f"Cannot open {url!r}: {text}. Use a device path, socket://host:port, "
               "rfc2217://host:port, loop:// or exosim://.")
    else:
        msg = f"Cannot open serial port {url!r}: {text}"
    return PortError(msg)


def open_exclusive(url: str, **kwargs) -> serial.SerialBase:
    """Open ``url`` with :func:`serial.serial_for_url`; a device path exclusively.

    A tty is locked twice: ``exclusive=True`` (pyserial's advisory ``flock``, honoured by
    other programs that lock) and ``TIOCEXCL`` (the kernel then refuses every other open,
    except by root). Call :func:`release_exclusive` before closing.

    Raises
    ------
    PortError
        Missing, busy, refused, or exclusivity cannot be obtained.
    """
    try:
        ser = serial.serial_for_url(url, exclusive=True, **kwargs)
    except (serial.SerialException, OSError, ValueError) as exc:
        raise port_error(url, exc) from exc
    fd = getattr(ser, "fd", None)
    if isinstance(fd, int) and fcntl is not None:
        try:
            fcntl.ioctl(fd, termios.TIOCEXCL)
        except OSError as exc:
            with contextlib.suppress(Exception):
                ser.close()
            raise port_error(url, OSError(f"exclusive mode (TIOCEXCL) refused: {exc}")) \
                from exc
    return ser


def release_exclusive(ser) -> None:
    """Undo ``TIOCEXCL`` (it outlives the file on a pty) and close ``ser``; never raises."""
    fd = getattr(ser, "fd", None)
    if isinstance(fd, int) and fcntl is not None:
        with contextlib.suppress(OSError):
            fcntl.ioctl(fd, termios.TIOCNXCL)
    sock = getattr(ser, "_socket", None)
    if sock is not None:  # socket://: pyserial's close() sleeps 0.3 s after closing it
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        ser._socket, ser.is_open = None, False
        return
    with contextlib.suppress(Exception):
        ser.close()


class FrameProtocol(serial.threaded.Protocol):
    """The driver's end of pyserial's :class:`serial.threaded.ReaderThread`.

    Bytes go through the driver's :class:`~devices.protocol.FrameParser`; each verified frame
    goes to the driver tagged with the connection's generation, so frames of an old
    connection are never taken for the new one's.
    """

    def __init__(self, driver: ExoskeletonDriver, gen: int) -> None:
        self.driver, self.gen = driver, gen
        self.priority = ""

    def connection_made(self, transport) -> None:
        """Runs on the reader thread: raise its priority (it times the dead-link check)."""
        self.priority = raise_thread_priority() if self.driver.raise_priority else "default"

    def data_received(self, data: bytes) -> None:
        """Parse ``data`` and hand the frames to the driver."""
        self.driver._on_bytes(data, self.gen)

    def connection_lost(self, exc) -> None:
        """A read failed (``exc``) or the reader was stopped (None)."""
        if exc is not None:
            text = str(exc) or repr(exc)
            self.driver._connection_lost(
                self.gen, text if text.startswith("read failed") else f"read failed: {text}")


class _Reader(serial.threaded.ReaderThread):
    """pyserial's reader thread, stopped promptly also on ports without ``cancel_read``."""

    def stop(self) -> None:
        self.alive = False
        if hasattr(self.serial, "cancel_read"):
            with contextlib.suppress(Exception):
                self.serial.cancel_read()
        else:  # socket:// and friends: wake the select() in read()
            sock = getattr(self.serial, "_socket", None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        if threading.current_thread() is not self:
            self.join(0.5)


class _Heartbeat(threading.Thread):
    """Sends ``HB`` every period and does nothing else (see ``ExoskeletonDriver``)."""

    def __init__(self, driver: ExoskeletonDriver) -> None:
        super().__init__(name="exo-heartbeat", daemon=True)
        self.driver = driver
        self.stopped = threading.Event()
        self.priority = ""

    def run(self) -> None:
        drv = self.driver
        self.priority = raise_thread_priority() if drv.raise_priority else "default"
        drv.heartbeat_priority = self.priority
        logger.info("exo: heartbeat thread priority: %s", self.priority)
        period = drv.heartbeat_period
        next_t = time.monotonic()
        while not self.stopped.is_set():
            next_t += period
            delay = next_t - time.monotonic()
            if delay < -period:  # fell far behind: resync rather than send a burst
                next_t, delay = time.monotonic(), 0.0
            if delay > 0 and self.stopped.wait(delay):
                return
            drv._send_heartbeat()


class ExoskeletonDriver:
    """Talk to the exoskeleton controller over a serial URL (protocol version 2).

    Parameters
    ----------
    url : str
        Anything :func:`serial.serial_for_url` opens: ``/dev/ttyUSB0``, ``socket://127.0.0.1:7000``,
        ``rfc2217://host:port``, ``exosim://`` (starts an in-process simulator).
    baudrate : int, default=115200
        Line speed (ignored by network URLs).
    ack_timeout : float, default=0.25
        Seconds to wait for the ACK/NAK of one transmission.
    retries : int, default=2
        Retransmissions (same sequence number) after a missing ACK.
    heartbeat_period : float, default=0.1
        Seconds between ``HB`` frames.
    link_timeout : float, default=0.3
        The dead-link time D: with no frame from the controller for this long, heartbeats
        stop, one STOP is sent and the link is declared lost.
    reconnect : bool, default=True
        Reconnect with exponential backoff (0.1 s doubling to ``reconnect_max_s``) after a loss.
    reconnect_max_s : float, default=2.0
        Longest wait between reconnection attempts.
    raise_priority : bool, default=True
        Run the heartbeat sender and the reader at the highest priority the OS grants
        (:func:`devices._priority.raise_thread_priority`); False keeps the default.

    Attributes
    ----------
    telemetry : Telemetry | None
        The last telemetry received.
    last_reply : Reply | None
        The last ACK/NAK received for a command.
    link_state : str
        ``"closed"``, ``"connecting"``, ``"up"`` or ``"lost"``.
    parser : FrameParser
        Receiver; ``parser.drops`` counts what the line carried that was not a valid frame.
    heartbeat_times : collections.deque
        Monotonic times of the last heartbeats written (for measuring their gaps).
    heartbeat_priority : str
        The priority the heartbeat thread obtained (``"SCHED_FIFO 10"``, ``"nice -5"``, ...).
    """

    def __init__(
        self,
        url: str,
        *,
        baudrate: int = 115200,
        ack_timeout: float = 0.25,
        retries: int = 2,
        heartbeat_period: float = 0.1,
        link_timeout: float = 0.3,
        reconnect: bool = True,
        reconnect_max_s: float = 2.0,
        raise_priority: bool = True,
    ) -> None:
        if not isinstance(url, str) or not url:
            raise TypeError(f"'url' must be a non-empty str, got {url!r} instead.")
        self.url = url
        self.baudrate = ensure_int(baudrate, "baudrate")
        self.ack_timeout = check_range(ack_timeout, "ack_timeout", 0.0, 10.0, low_inclusive=False)
        self.retries = ensure_int(retries, "retries")
        check_range(self.retries, "retries", 0, 10)
        self.heartbeat_period = check_range(heartbeat_period, "heartbeat_period", 0.01, 1.0)
        self.link_timeout = check_range(link_timeout, "link_timeout", 0.05, 30.0)
        self.reconnect = bool(reconnect)
        self.reconnect_max_s = check_range(reconnect_max_s, "reconnect_max_s", 0.1, 60.0)
        self.raise_priority = bool(raise_priority)
        self._reset_variables()

    def _reset_variables(self) -> None:
        self.telemetry: Telemetry | None = None
        self.last_reply: Reply | None = None
        self.link_state = "closed"
        self.link_reason = ""
        self.parser = FrameParser()
        self.controller_info: tuple[str, ...] = ()
        self.session_nonce = ""
        self.reconnects = 0
        self.heartbeats_sent = 0
        self.heartbeat_times: collections.deque[float] = collections.deque(maxlen=100_000)
        self.heartbeat_priority = ""
        self._ser = None
        self._reader: _Reader | None = None
        self._gen = 0
        self._seq = 0
        self._pending: dict[int, _Waiter] = {}
        self._lock = threading.RLock()
        self._wlock = threading.Lock()
        self._alive = False
        self._closing = False
        self._wake = threading.Event()
        self._monitor: threading.Thread | None = None
        self._heartbeat: _Heartbeat | None = None
        self._events: queue.Queue = queue.Queue()
        self._dispatcher: threading.Thread | None = None
        self._listeners: list[Listener] = []
        self._last_heard = 0.0
        self._tel_cond = threading.Condition()

    # ------------------------------------------------------------------ lifecycle
    def open(self) -> ExoskeletonDriver:
        """Open the port, open a session (``HELLO``) and start the threads; return self.

        Raises
        ------
        PortError
            The port is missing, busy, refused or cannot be opened exclusively.
        CommandTimeout
            Nothing answered the handshake.
        DeviceError
            The controller speaks another protocol version, or another host owns its session.
        """
        if self._alive:
            raise RuntimeError("The driver is already open; call close() first.")
        self._alive, self._closing = True, False
        self._dispatcher = threading.Thread(target=self._dispatch, name="exo-events",
                                            daemon=True)
        self._dispatcher.start()
        try:
            self._connect()
        except BaseException:
            self._alive = False
            self._events.put(None)
            raise
        self._heartbeat = _Heartbeat(self)
        self._heartbeat.start()
        self._monitor = threading.Thread(target=self._run_monitor, name="exo-monitor",
                                         daemon=True)
        self._monitor.start()
        return self

    def close(self, *, stop: bool = True, timeout: float = 0.5) -> None:
        """Send ``STOP`` (best effort), then close the port and the threads.

        The whole call takes at most about ``timeout`` seconds, also when the controller does
        not answer: the STOP gets 60 % of it (two tries), the threads the rest.
        """
        if not self._alive:
            return
        deadline = time.monotonic() + timeout
        self._closing = True  # the monitor starts no reconnection from now on
        if stop and self.link_state == "up":
            try:
                self._transact("STOP", (), timeout=0.3 * timeout, retries=1)
            except DeviceError as exc:
                logger.warning("exo: STOP before closing failed: %s", exc)
        self._alive = False
        self._wake.set()
        for thread in (self._heartbeat, self._monitor):
            if thread is not None:
                if isinstance(thread, _Heartbeat):
                    thread.stopped.set()
                thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self._teardown()
        self.link_state = "closed"
        self._events.put(None)
        if self._dispatcher is not None and self._dispatcher is not threading.current_thread():
            self._dispatcher.join(timeout=max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> ExoskeletonDriver:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def link_ok(self) -> bool:
        """True while the link is up."""
        return self.link_state == "up"

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(event, data)`` for every driver event, on the event thread.

        Events: ``"telemetry"`` (``{"telemetry": Telemetry}``), ``"ack"`` / ``"nak"``
        (``{"seq", "verb", "args"}``; a NAK has ``"reason"``), ``"timeout"`` (``{"seq",
        "verb"}``), ``"link_lost"`` (``{"reason"}``), ``"link_up"`` (``{"reconnected"}``),
        ``"led"`` (``{"event": LedEvent}``: stimulus lights started or went dark).
        """
        if not callable(listener):
            raise TypeError(f"'listener' must be callable, got {type(listener).__name__}.")
        self._listeners.append(listener)

    # ------------------------------------------------------------------ commands
    def send(self, command: Command | str, *args: object, timeout: float | None = None,
             retries: int | None = None) -> Reply:
        """Send one command and wait for its ACK.

        Parameters
        ----------
        command : Command | str
            A protocol verb (``"WALK"``) or a :class:`Command` (``Command.WALK``; then ``args``
            are the protocol arguments, e.g. ``Command.TURN_LEFT, 30``).
        *args : object
            Protocol arguments.
        timeout : float | None
            Per-transmission ACK timeout (default ``ack_timeout``).
        retries : int | None
            Retransmissions (default ``retries``).

        Returns
        -------
        reply : Reply
            The ACK.

        Raises
        ------
        CommandRejected
            The controller answered NAK (``exc.reason`` holds the reason code).
        CommandTimeout
            No answer after all retries.
        LinkLostError
            The link is down, or went down while waiting (the command is not retried later).
        """
        verb, args = _to_verb(command, args)
        return self._transact(verb, args, timeout=timeout, retries=retries)

    def execute(self, command: Command, *, walk_steps: int = 2, turn_deg: int = 30) -> Reply:
        """Send a :class:`Command` with bounded motion arguments (see :meth:`send`)."""
        if not isinstance(command, Command):
            raise TypeError(f"'command' must be a Command, got {type(command).__name__}.")
        if command is Command.WALK:
            return self.walk(walk_steps)
        if command in (Command.TURN_LEFT, Command.TURN_RIGHT):
            return self.turn("L" if command is Command.TURN_LEFT else "R", turn_deg)
        return self.send(command.name)

    def stand(self) -> Reply:
        """Stand up (legal when sitting)."""
        return self.send("STAND")

    def sit(self) -> Reply:
        """Sit down (legal when standing still)."""
        return self.send("SIT")

    def walk(self, steps: int) -> Reply:
        """Walk ``steps`` steps (1..10)."""
        steps = ensure_int(steps, "steps")
        check_range(steps, "steps", *WALK_STEPS)
        return self.send("WALK", steps)

    def turn(self, direction: str, deg: int) -> Reply:
        """Turn ``"L"`` or ``"R"`` by ``deg`` degrees (1..90)."""
        if direction not in ("L", "R"):
            raise ValueError(f"'direction' must be 'L' or 'R', got {direction!r} instead.")
        deg = ensure_int(deg, "deg")
        check_range(deg, "deg", *TURN_DEG)
        return self.send("TURN", direction, deg)

    def led_set(self, light: int, freq: float, phase_deg: float = 0.0) -> Reply:
        """Set stimulus light ``light`` (1..5, off) to ``freq`` Hz (1..100, to the mHz) and
        a start phase in degrees (to the tenth): ``LEDSET`` (docs/protocol.md, section 12)."""
        mask_of(light)
        check_range(freq, "freq", *FREQ_RANGE)
        return self.send("LEDSET", light, format_freq(freq), format_phase(phase_deg))

    def led_on(self, lights: int | Sequence[int] | None = None,
               duration_s: float | None = None) -> Reply:
        """Start lights together (a light number or several; all by default); with
        ``duration_s`` they go dark by themselves after exactly that long (to the ms).
        Their start and end arrive as ``"led"`` events (:meth:`add_listener`)."""
        mask = ALL_LIGHTS if lights is None else mask_of(lights)
        if duration_s is None:
            return self.send("LEDON", mask)
        ms = round(check_range(duration_s, "duration_s", DURATION_MS[0] / 1000,
                               DURATION_MS[1] / 1000) * 1000)
        return self.send("LEDON", mask, ms)

    def led_off(self, lights: int | Sequence[int] | None = None) -> Reply:
        """Switch lights off (a light number or several; all by default)."""
        mask = ALL_LIGHTS if lights is None else mask_of(lights)
        return self.send("LEDOFF", mask)

    def stop(self) -> Reply:
        """Stop any motion (always accepted)."""
        return self.send("STOP")

    def estop(self) -> Reply:
        """Emergency stop; latches until :meth:`reset`."""
        return self.send("ESTOP")

    def reset(self) -> Reply:
        """Clear a latched e-stop or fault."""
        return self.send("RESET")

    def status(self, timeout: float = 1.0) -> Telemetry:
        """Ask for telemetry now and return it."""
        t0 = time.monotonic()
        self.send("STATUS")
        tel = self.wait_telemetry(lambda t: t.received >= t0, timeout=timeout)
        if tel is None:
            raise CommandTimeout(f"No telemetry from {self.url!r} after STATUS.")
        return tel

    def wait_telemetry(self, predicate: Callable[[Telemetry], bool],
                       timeout: float = 5.0) -> Telemetry | None:
        """Block until telemetry satisfies ``predicate``; return it, or None on timeout."""
        deadline = time.monotonic() + timeout
        with self._tel_cond:
            while True:
                tel = self.telemetry
                if tel is not None and predicate(tel):
                    return tel
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._tel_cond.wait(min(left, 0.05))

    # ------------------------------------------------------------------ internals
    def _next_seq(self) -> int:
        with self._lock:
            self._seq = self._seq % 65535 + 1  # 1..65535, continues across reconnections
            return self._seq

    def _transact(self, verb: str, args: tuple, *, timeout: float | None = None,
                  retries: int | None = None, handshake: bool = False) -> Reply:
        timeout = self.ack_timeout if timeout is None else timeout
        retries = self.retries if retries is None else retries
        with self._lock:
            if self.link_state != "up" and not handshake:
                raise LinkLostError(
                    f"The link to the controller at {self.url!r} is down "
                    f"({self.link_reason or 'not open'}); {verb} was not sent."
                )
            gen = self._gen
            seq = self._next_seq()
            waiter = _Waiter(verb, nonce=str(args[1]) if verb == "HELLO" else "")
            self._pending[seq] = waiter
        data = encode_frame(seq, verb, *args)
        try:
            for attempt in range(retries + 1):
                if attempt:
                    logger.info("exo: no ACK for %s seq %d, retransmitting (%d/%d)", verb, seq,
                                attempt, retries)
                self._write(data, gen)
                if waiter.event.wait(timeout):
                    break
            else:
                self._emit("timeout", {"seq": seq, "verb": verb})
                raise CommandTimeout(
                    f"No answer to {verb} from the controller at {self.url!r} after "
                    f"{retries + 1} tries of {timeout:.2f} s; check the link and the controller."
                )
        finally:
            with self._lock:
                self._pending.pop(seq, None)
        if waiter.reply is None:  # the link was lost before an answer came
            raise LinkLostError(
                f"The link to {self.url!r} was lost while waiting for the ACK of {verb}; "
                "it will not be retransmitted."
            )
        reply = waiter.reply
        if reply.verb == "NAK":
            reason = reply.args[1] if len(reply.args) > 1 else "UNKNOWN"
            raise CommandRejected(
                f"The controller refused {verb}: {reason} "
                f"({REASONS.get(reason, 'unknown reason')}).",
                reason,
            )
        return Reply(True, seq, verb, reply.args[1:], time.monotonic())

    def _write(self, data: bytes, gen: int) -> None:
        with self._wlock:
            ser = self._ser
            if ser is None or gen != self._gen or self.link_state not in ("up", "connecting"):
                raise LinkLostError(f"The link to {self.url!r} is down; nothing was sent.")
            try:
                ser.write(data)
                return
            except Exception as exc:  # noqa: BLE001
                failure = exc
        self._connection_lost(gen, f"write failed: {failure}")
        raise LinkLostError(f"Writing to {self.url!r} failed: {failure}")

    def _silence(self) -> float:
        """Seconds since the controller was last heard; 0 while its bytes wait unread (the
        host, not the link, is slow: e.g. the reader waits for the GIL), for at most one more
        dead-link time (unread noise must not keep a mute controller's link alive)."""
        silent = time.monotonic() - self._last_heard
        if self.link_timeout < silent <= 2 * self.link_timeout:
            ser = self._ser
            with contextlib.suppress(Exception):
                if ser is not None and ser.in_waiting:
                    return 0.0
        return silent

    def _send_heartbeat(self) -> None:
        """One HB, only while the link is up and the controller was heard within D."""
        gen = self._gen
        if self.link_state != "up" or self._silence() > self.link_timeout:
            return
        with contextlib.suppress(LinkLostError):
            self._write(encode_frame(self._next_seq(), "HB"), gen)
            self.heartbeat_times.append(time.monotonic())
            self.heartbeats_sent += 1

    def _on_bytes(self, data: bytes, gen: int) -> None:
        now = time.monotonic()
        for frame in self.parser.feed(data):
            if gen != self._gen:
                return  # a stale connection's reader
            self._last_heard = now
            if frame.verb == "TEL":
                tel = Telemetry.from_frame(frame, now)
                if tel is None:
                    self.parser.drops["bad_telemetry"] += 1
                    continue
                with self._tel_cond:
                    self.telemetry = tel
                    self._tel_cond.notify_all()
                self._emit("telemetry", {"telemetry": tel})
            elif frame.verb in ("ACK", "NAK") and frame.args and frame.args[0].isdigit():
                self._on_reply(frame, now, gen)
            elif frame.verb == "LEDEV":
                event = LedEvent.from_frame(frame, now)
                if event is None:
                    self.parser.drops["bad_led_event"] += 1
                else:
                    self._emit("led", {"event": event})
            else:
                self.parser.drops["unexpected"] += 1

    def _on_reply(self, frame: Frame, now: float, gen: int) -> None:
        seq = int(frame.args[0])
        ok = frame.verb == "ACK"
        reason = frame.args[1] if not ok and len(frame.args) > 1 else ""
        with self._lock:
            waiter = self._pending.get(seq)
        if waiter is not None and waiter.nonce and ok and frame.args[3:4] != (waiter.nonce,):
            self.parser.drops["stale_hello_ack"] += 1  # answers someone else's HELLO
            return
        if waiter is not None and not waiter.event.is_set():
            waiter.reply = frame
            self.last_reply = Reply(ok, seq, waiter.verb, frame.args[1:], now)
            waiter.event.set()
            info = {"seq": seq, "verb": waiter.verb, "args": frame.args[1:]}
            if not ok:
                info["reason"] = reason
            self._emit("ack" if ok else "nak", info)
        if reason in SESSION_LOST_REASONS and (waiter is None or waiter.verb != "HELLO"):
            self._connection_lost(gen, f"the controller ended the session ({reason})")

    def _connect(self) -> None:
        ser = open_exclusive(self.url, baudrate=self.baudrate, timeout=0.05,
                             write_timeout=0.1)
        with contextlib.suppress(Exception):
            ser.reset_input_buffer()
        sock = getattr(ser, "_socket", None)  # socket:// : no Nagle delay on small frames
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            if not self._alive or self._closing:
                release_exclusive(ser)
                raise LinkLostError(f"The driver for {self.url!r} was closed.")
            self._gen += 1
            gen = self._gen
            self._ser = ser
            self.parser.reset()
            self.link_state = "connecting"
            self._reader = _Reader(ser, lambda: FrameProtocol(self, gen))
            self._reader.name = f"exo-reader-{gen}"
            self._reader.start()
        try:
            self._reader.connect()
        except RuntimeError as exc:  # the port failed at once
            self._teardown()
            self.link_state = "lost" if self._monitor is not None else "closed"
            raise LinkLostError(f"The link to {self.url!r} failed at once: {exc}") from exc
        nonce = secrets.token_hex(4).upper()
        try:
            reply = self._transact("HELLO", (PROTOCOL_VERSION, nonce), handshake=True)
        except CommandRejected as exc:
            self._teardown()
            self.link_state = "lost" if self._monitor is not None else "closed"
            if exc.reason == "NOT_OWNER":
                raise DeviceError(
                    f"Another host owns the session of the controller at {self.url!r}; it "
                    "accepts commands from one host at a time (close the other program, or "
                    "wait for its session to end)."
                ) from exc
            raise DeviceError(
                f"The controller at {self.url!r} does not speak protocol version "
                f"{PROTOCOL_VERSION} ({exc.reason}); update its firmware or this program."
            ) from exc
        except DeviceError:
            self._teardown()
            self.link_state = "lost" if self._monitor is not None else "closed"
            raise
        with self._lock:
            closing = self._closing
        if closing:  # close() began meanwhile: do not bring the link up again
            self._teardown()
            raise LinkLostError(f"The driver for {self.url!r} is closing.")
        with self._lock:
            self.controller_info = reply.args[:2]
            self.session_nonce = nonce
            self.link_state = "up"
            self.link_reason = ""
            self._last_heard = time.monotonic()
        logger.info("exo: connected to %s (%s), session %s", self.url,
                    ",".join(reply.args[:2]), nonce)

    def _teardown(self) -> None:
        """Detach the connection, fail pending waiters, then stop the reader and close."""
        with self._lock:
            reader, ser = self._reader, self._ser
            self._reader, self._ser = None, None
            self._gen += 1
            for waiter in self._pending.values():
                waiter.event.set()  # unanswered waiters give up (reply stays None)
        # outside the lock: the reader may be waiting for it in _on_bytes
        if reader is not None:
            reader.stop()
        if ser is not None:
            release_exclusive(ser)

    def _connection_lost(self, gen: int, reason: str) -> None:
        """Mark the link lost (any thread); the monitor tears it down and reconnects."""
        with self._lock:
            if gen != self._gen or self.link_state != "up":
                return
            self.link_state = "lost"
            self.link_reason = reason
            ser = self._ser
            for waiter in self._pending.values():
                waiter.event.set()  # unanswered waiters give up (reply stays None)
        logger.warning("exo: link to %s lost: %s", self.url, reason)
        if ser is not None:  # best effort: the other direction may still work
            with self._wlock, contextlib.suppress(Exception):
                ser.write(encode_frame(self._next_seq(), "STOP"))
        self._emit("link_lost", {"reason": reason})
        self._wake.set()

    def _run_monitor(self) -> None:
        backoff = 0.1
        next_attempt = 0.0
        drops_seen, next_drop_log = 0, 0.0
        while self._alive:
            now = time.monotonic()
            if now >= next_drop_log:  # garbage on the line: logged at most once a second
                total = sum(self.parser.drops.values())
                if total > drops_seen:
                    logger.warning("exo: discarded input from %s (total by reason: %s)",
                                   self.url, dict(self.parser.drops))
                    drops_seen = total
                next_drop_log = now + 1.0
            state = self.link_state
            if state == "up":
                backoff = 0.1
                silent = self._silence()
                if silent > self.link_timeout:
                    self._connection_lost(
                        self._gen, f"nothing heard from the controller for {silent:.2f} s")
                    next_attempt = now
            elif state == "lost":
                if self._ser is not None:
                    self._teardown()
                if self.reconnect and not self._closing and now >= next_attempt:
                    self._reconnect_once(backoff)
                    next_attempt = time.monotonic() + backoff
                    backoff = min(backoff * 2, self.reconnect_max_s)
            if self._wake.wait(0.02):
                self._wake.clear()

    def _reconnect_once(self, backoff: float) -> None:
        try:
            self._connect()
        except DeviceError as exc:
            logger.info("exo: reconnection to %s failed (%s); next try in %.1f s",
                        self.url, exc, backoff)
            return
        self.reconnects += 1
        logger.warning("exo: reconnected to %s; sending STOP, no command replayed", self.url)
        with contextlib.suppress(DeviceError):
            self._transact("STOP", ())
        self._emit("link_up", {"reconnected": True})

    def _emit(self, event: str, data: dict) -> None:
        if self._listeners:
            self._events.put((event, data))

    def _dispatch(self) -> None:
        while True:
            item = self._events.get()
            if item is None:
                return
            for listener in list(self._listeners):
                try:
                    listener(*item)
                except Exception:  # noqa: BLE001 - a listener must not kill the driver
                    logger.exception("exo: listener %r failed on %s", listener, item[0])


def _to_verb(command: Command | str, args: tuple) -> tuple[str, tuple]:
    if isinstance(command, Command):
        if command is Command.TURN_LEFT:
            return "TURN", ("L", *args)
        if command is Command.TURN_RIGHT:
            return "TURN", ("R", *args)
        return command.name, args
    if not isinstance(command, str):
        raise TypeError(f"'command' must be a Command or str, got {type(command).__name__}.")
    return command.upper(), args
