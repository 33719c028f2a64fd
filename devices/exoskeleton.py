"""The host-side driver of the exoskeleton controller (protocol: ``docs/protocol.md``).

The port is opened with :func:`serial.serial_for_url`, so a device path, ``socket://host:port``,
``rfc2217://``, ``loop://`` and ``exosim://`` (an in-process simulator) all work the same way.
Threads, as in pyserial's ``ReaderThread``:

- a reader (daemon, ``alive`` flag, readiness ``Event``) parses frames, wakes the command
  waiting for that ACK/NAK, records telemetry, and calls ``connection_lost`` on a read error;
- a monitor sends ``HB`` at a fixed period on the monotonic clock, declares the link dead when
  no telemetry arrived for ``link_timeout`` seconds (or a write failed, or the port vanished),
  and reconnects with exponential backoff;
- an event dispatcher calls the listeners (:meth:`ExoskeletonDriver.add_listener`) in order,
  so a listener may itself call :meth:`ExoskeletonDriver.send`.

Commands are never queued across a link loss: :meth:`~ExoskeletonDriver.send` fails at once
with :class:`~devices.errors.LinkLostError` while the link is down, and a command in flight when
the link drops is abandoned, never retransmitted on the new connection. After reconnecting, the
driver handshakes and sends ``STOP``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import serial

from devices._check import check_range, ensure_int
from devices.commands import Command
from devices.errors import CommandRejected, CommandTimeout, DeviceError, LinkLostError, PortError
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


@dataclass
class _Waiter:
    verb: str
    event: threading.Event = field(default_factory=threading.Event)
    reply: Frame | None = None
    lost: bool = False


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


class _Reader(threading.Thread):
    """Reads one connection until told to stop or the port fails."""

    def __init__(self, driver: ExoskeletonDriver, ser, gen: int) -> None:
        super().__init__(name=f"exo-reader-{gen}", daemon=True)
        self.driver, self.ser, self.gen = driver, ser, gen
        self.alive = True
        self.ready = threading.Event()

    def run(self) -> None:
        self.ready.set()
        while self.alive:
            try:
                data = self.ser.read(self.ser.in_waiting or 1)
            except Exception as exc:  # noqa: BLE001 - any failure means the link is gone
                if self.alive:
                    self.driver._connection_lost(self.gen, str(exc) or repr(exc))
                break
            if data:
                self.driver._on_bytes(data)

    def stop(self) -> None:
        self.alive = False
        with contextlib.suppress(Exception):
            self.ser.cancel_read()
        if threading.current_thread() is not self:
            self.join(timeout=1.0)


class ExoskeletonDriver:
    """Talk to the exoskeleton controller over a serial URL.

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
    link_timeout : float, default=0.5
        The link is declared dead when no telemetry arrived for this long (5 telemetry periods
        at the controller's 10 Hz).
    reconnect : bool, default=True
        Reconnect with exponential backoff (0.1 s doubling to ``reconnect_max_s``) after a loss.
    reconnect_max_s : float, default=2.0
        Longest wait between reconnection attempts.

    Attributes
    ----------
    telemetry : Telemetry | None
        The last telemetry received.
    last_reply : Reply | None
        The last ACK/NAK received for a command.
    link_state : str
        ``"closed"``, ``"up"`` or ``"lost"``.
    parser : FrameParser
        Receiver; ``parser.drops`` counts what the line carried that was not a valid frame.
    """

    def __init__(
        self,
        url: str,
        *,
        baudrate: int = 115200,
        ack_timeout: float = 0.25,
        retries: int = 2,
        heartbeat_period: float = 0.1,
        link_timeout: float = 0.5,
        reconnect: bool = True,
        reconnect_max_s: float = 2.0,
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
        self._reset_variables()

    def _reset_variables(self) -> None:
        self.telemetry: Telemetry | None = None
        self.last_reply: Reply | None = None
        self.link_state = "closed"
        self.link_reason = ""
        self.parser = FrameParser()
        self.controller_info: tuple[str, ...] = ()
        self.reconnects = 0
        self.heartbeats_sent = 0
        self._ser = None
        self._reader: _Reader | None = None
        self._gen = 0
        self._seq = 0
        self._pending: dict[int, _Waiter] = {}
        self._lock = threading.RLock()
        self._wlock = threading.Lock()
        self._alive = False
        self._wake = threading.Event()
        self._monitor: threading.Thread | None = None
        self._events: queue.Queue = queue.Queue()
        self._dispatcher: threading.Thread | None = None
        self._listeners: list[Listener] = []
        self._last_tel = 0.0
        self._tel_cond = threading.Condition()

    # ------------------------------------------------------------------ lifecycle
    def open(self) -> ExoskeletonDriver:
        """Open the port, handshake (``HELLO``) and start the threads; return self.

        Raises
        ------
        PortError
            The port is missing, busy, refused or cannot be opened.
        CommandTimeout
            Nothing answered the handshake.
        """
        if self._alive:
            raise RuntimeError("The driver is already open; call close() first.")
        self._alive = True
        self._dispatcher = threading.Thread(target=self._dispatch, name="exo-events",
                                            daemon=True)
        self._dispatcher.start()
        try:
            self._connect()
        except BaseException:
            self._alive = False
            self._events.put(None)
            raise
        self._monitor = threading.Thread(target=self._run_monitor, name="exo-monitor",
                                         daemon=True)
        self._monitor.start()
        return self

    def close(self, *, stop: bool = True, timeout: float = 0.5) -> None:
        """Send ``STOP`` (best effort, at most ``timeout`` s), then close the port and threads."""
        if not self._alive:
            return
        if stop and self.link_state == "up":
            try:
                self._transact("STOP", (), timeout=timeout / 2, retries=1)
            except DeviceError as exc:
                logger.warning("exo: STOP before closing failed: %s", exc)
        self._alive = False
        self._wake.set()
        if self._monitor is not None:
            self._monitor.join(timeout=2.0)
        self._teardown()
        self.link_state = "closed"
        self._events.put(None)
        if self._dispatcher is not None:
            self._dispatcher.join(timeout=2.0)

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
        "verb"}``), ``"link_lost"`` (``{"reason"}``), ``"link_up"`` (``{"reconnected"}``).
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
            waiter = _Waiter(verb)
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
        if waiter.lost:
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

    def _on_bytes(self, data: bytes) -> None:
        now = time.monotonic()
        for frame in self.parser.feed(data):
            if frame.verb == "TEL":
                tel = Telemetry.from_frame(frame, now)
                if tel is None:
                    self.parser.drops["bad_telemetry"] += 1
                    continue
                with self._tel_cond:
                    self.telemetry = tel
                    self._last_tel = now
                    self._tel_cond.notify_all()
                self._emit("telemetry", {"telemetry": tel})
            elif frame.verb in ("ACK", "NAK") and frame.args and frame.args[0].isdigit():
                seq = int(frame.args[0])
                with self._lock:
                    waiter = self._pending.get(seq)
                if waiter is None or waiter.event.is_set():
                    continue  # heartbeat ACKs, late duplicates
                waiter.reply = frame
                ok = frame.verb == "ACK"
                self.last_reply = Reply(ok, seq, waiter.verb, frame.args[1:], now)
                waiter.event.set()
                info = {"seq": seq, "verb": waiter.verb, "args": frame.args[1:]}
                if not ok:
                    info["reason"] = frame.args[1] if len(frame.args) > 1 else "UNKNOWN"
                self._emit("ack" if ok else "nak", info)
            else:
                self.parser.drops["unexpected"] += 1

    def _connect(self) -> None:
        try:
            ser = serial.serial_for_url(self.url, baudrate=self.baudrate, timeout=0.05,
                                        write_timeout=0.5, exclusive=True)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise port_error(self.url, exc) from exc
        with contextlib.suppress(Exception):
            ser.reset_input_buffer()
        sock = getattr(ser, "_socket", None)  # socket:// : no Nagle delay on small frames
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self._gen += 1
            self._ser = ser
            self.parser.reset()
            self.link_state = "connecting"
            self._reader = _Reader(self, ser, self._gen)
            self._reader.start()
        self._reader.ready.wait(1.0)
        try:
            reply = self._transact("HELLO", (PROTOCOL_VERSION,), handshake=True)
        except CommandRejected as exc:
            self._teardown()
            self.link_state = "lost" if self._monitor is not None else "closed"
            raise DeviceError(
                f"The controller at {self.url!r} does not speak protocol version "
                f"{PROTOCOL_VERSION} ({exc.reason}); update its firmware or this program."
            ) from exc
        except DeviceError:
            self._teardown()
            self.link_state = "lost" if self._monitor is not None else "closed"
            raise
        with self._lock:
            self.controller_info = reply.args
            self.link_state = "up"
            self.link_reason = ""
            self._last_tel = time.monotonic()
        logger.info("exo: connected to %s (%s)", self.url, ",".join(reply.args))

    def _teardown(self) -> None:
        """Detach the connection, fail pending waiters, then stop the reader and close."""
        with self._lock:
            reader, ser = self._reader, self._ser
            self._reader, self._ser = None, None
            self._gen += 1
            for waiter in self._pending.values():
                waiter.lost = True
                waiter.event.set()
        # outside the lock: the reader may be waiting for it in _on_bytes
        if reader is not None:
            reader.stop()
        if ser is not None:
            with contextlib.suppress(Exception):
                ser.close()

    def _connection_lost(self, gen: int, reason: str) -> None:
        with self._lock:
            if gen != self._gen or self.link_state != "up":
                return
            self.link_state = "lost"
            self.link_reason = reason
            logger.warning("exo: link to %s lost: %s", self.url, reason)
            self._emit("link_lost", {"reason": reason})
        self._teardown()
        self._wake.set()

    def _run_monitor(self) -> None:
        next_t = time.monotonic()
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
                gen = self._gen
                if now - self._last_tel > self.link_timeout:
                    self._connection_lost(
                        gen, f"no telemetry for {now - self._last_tel:.2f} s"
                    )
                    next_attempt = now
                else:
                    seq = self._next_seq()
                    with contextlib.suppress(LinkLostError):
                        self._write(encode_frame(seq, "HB"), gen)
                        self.heartbeats_sent += 1
            elif state == "lost" and self.reconnect and now >= next_attempt:
                try:
                    self._connect()
                except DeviceError as exc:
                    logger.info("exo: reconnection to %s failed (%s); next try in %.1f s",
                                self.url, exc, backoff)
                    next_attempt = time.monotonic() + backoff
                    backoff = min(backoff * 2, self.reconnect_max_s)
                else:
                    self.reconnects += 1
                    logger.warning("exo: reconnected to %s; sending STOP, no command replayed",
                                   self.url)
                    with contextlib.suppress(DeviceError):
                        self._transact("STOP", ())
                    self._emit("link_up", {"reconnected": True})
                    next_t = time.monotonic()
            next_t += self.heartbeat_period
            delay = next_t - time.monotonic()
            if delay < -self.heartbeat_period:  # fell far behind (loaded machine): resync
                next_t = time.monotonic()
                delay = 0.0
            if delay > 0 and self._wake.wait(delay):
                self._wake.clear()
                next_t = time.monotonic()

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
