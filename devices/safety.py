"""The safety supervisor: which decoded choices may become motion.

The online loop calls :meth:`SafetySupervisor.on_selection` with each decided target label
and the ``on_health`` / ``on_stream_stalled`` / ``on_decoder_lag`` hooks when the signal side
degrades; the supervisor listens to the driver for telemetry, faults and link changes. Rules:

- a label maps to a :class:`~devices.commands.Command` through ``mapping``; ``"rest"`` (no
  control) and unmapped labels never move anything;
- ``STOP`` is always sent at once and pre-empts everything (it also cancels a pending
  confirmation);
- other commands are forwarded only when legal in the posture last reported by the controller
  (:data:`LEGAL`), while the link is up, no motion is in progress and no inhibit is active;
- posture changes (``STAND``, ``SIT``) need confirmation: the same command selected twice in a
  row (``"rest"`` in between is allowed) within ``confirm_window_s``;
- bad signal health, a stalled stream, a lagging decoder, a device fault or a lost link send
  ``STOP`` when the exoskeleton may be moving; bad health and a stalled stream also inhibit
  motion until ``on_health(True)``.

Everything (selections, forwards, refusals with their reason, ACK/NAK, stops) goes to ``log``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from devices._check import check_range, ensure_int
from devices.commands import Command
from devices.errors import CommandRejected, DeviceError

logger = logging.getLogger("devices")

# Commands legal in each controller state (STOP is always legal and not listed).
LEGAL: dict[str, frozenset[Command]] = {
    "SITTING": frozenset({Command.STAND}),
    "STANDING": frozenset({Command.SIT, Command.WALK, Command.TURN_LEFT, Command.TURN_RIGHT}),
    "STOPPED": frozenset({Command.SIT, Command.WALK, Command.TURN_LEFT, Command.TURN_RIGHT}),
    "WALKING": frozenset(),
    "TURNING": frozenset(),
    "FAULT": frozenset(),
    "ESTOP": frozenset(),
}
POSTURE_CHANGES = frozenset({Command.STAND, Command.SIT})

FORWARDED = "forwarded"
REFUSED = "refused"
AWAITING = "awaiting_confirmation"
IGNORED = "ignored"
REJECTED = "rejected"  # the controller answered NAK
FAILED = "failed"  # no ACK, or the link is down


@dataclass(frozen=True)
class Outcome:
    """What the supervisor did with one selection or event.

    Attributes
    ----------
    status : str
        ``"forwarded"``, ``"refused"`` (by the supervisor), ``"awaiting_confirmation"``,
        ``"ignored"`` (rest / no control), ``"rejected"`` (NAK from the controller) or
        ``"failed"`` (no ACK or link down).
    command : Command | None
        The command concerned.
    reason : str
        Why it was refused, rejected, failed or ignored ('' when forwarded).
    label : str | None
        The selected label, when the outcome answers a selection.
    """

    status: str
    command: Command | None = None
    reason: str = ""
    label: str | None = None

    @property
    def forwarded(self) -> bool:
        """True when the controller acknowledged the command."""
        return self.status == FORWARDED

    def as_dict(self) -> dict:
        """Return a JSON-able dict."""
        return {
            "status": self.status,
            "command": self.command.value if self.command else None,
            "reason": self.reason,
            "label": self.label,
        }


def plain_label(label: object) -> str:
    """The default label key: ``"rest"`` for the no-control class, else the stripped text.

    The application passes its own ``label_key`` (``bci`` canonicalises ``13``, ``"13"`` and
    ``"13 Hz"`` to ``"13.0Hz"``); ``devices`` knows no label convention beyond ``"rest"``.
    """
    text = str(label).strip()
    return "rest" if text.lower() == "rest" else text


class SafetySupervisor:
    """Gate between decoded selections and the exoskeleton driver.

    Parameters
    ----------
    driver : ExoskeletonDriver
        An open driver (anything with ``execute``, ``stop``, ``telemetry``, ``link_ok`` and
        ``add_listener``).
    mapping : dict of str to Command
        Target label -> command, e.g. ``{"13.0Hz": Command.WALK, "17.0Hz": Command.STOP}``.
        Values may be Command names/values (``"walk"``). ``"rest"`` may only map to STOP.
    walk_steps : int, default=2
        Steps sent with WALK (1..10).
    turn_deg : int, default=30
        Degrees sent with TURN (1..90).
    confirm_posture_changes : bool, default=True
        Require a second consecutive selection before STAND/SIT.
    confirm_window_s : float, default=6.0
        The second selection must come within this many seconds of the first.
    label_key : callable, default=plain_label
        Turns a mapping key or a decided label into the key they are matched by (must
        return ``"rest"`` for the no-control class).
    log : callable | None
        ``log(event, data)`` receives every event (``"selection"``, ``"forwarded"``,
        ``"refused"``, ``"awaiting_confirmation"``, ``"ignored"``, ``"rejected"``,
        ``"failed"``, ``"stop"``, ``"ack"``, ``"nak"``, ``"health"``, ``"stream_stalled"``,
        ``"decoder_lag"``, ``"device_fault"``, ``"link_lost"``, ``"link_up"``).
    """

    def __init__(
        self,
        driver,
        mapping: Mapping[str, Command | str],
        *,
        walk_steps: int = 2,
        turn_deg: int = 30,
        confirm_posture_changes: bool = True,
        confirm_window_s: float = 6.0,
        label_key: Callable[[object], str] = plain_label,
        log: Callable[[str, dict], None] | None = None,
    ) -> None:
        if not callable(label_key):
            raise TypeError(f"'label_key' must be callable, got {type(label_key).__name__}.")
        self._key = label_key
        if not isinstance(mapping, Mapping) or not mapping:
            raise ValueError("'mapping' must be a non-empty dict of target label -> Command.")
        self.mapping: dict[str, Command] = {}
        for label, cmd in mapping.items():
            try:
                cmd = cmd if isinstance(cmd, Command) else Command(str(cmd).lower())
            except ValueError:
                names = ", ".join(c.value for c in Command)
                raise ValueError(
                    f"The mapping gives {label!r} the unknown command {cmd!r}; use one of {names}."
                ) from None
            key = label_key(label)
            if key == "rest" and cmd is not Command.STOP:
                raise ValueError(
                    f"The no-control label {label!r} cannot map to {cmd.value!r}: looking at "
                    "nothing must never move the exoskeleton (map it to 'stop' or leave it out)."
                )
            self.mapping[key] = cmd
        self.walk_steps = ensure_int(walk_steps, "walk_steps")
        check_range(self.walk_steps, "walk_steps", 1, 10)
        self.turn_deg = ensure_int(turn_deg, "turn_deg")
        check_range(self.turn_deg, "turn_deg", 1, 90)
        self.confirm_posture_changes = bool(confirm_posture_changes)
        self.confirm_window_s = check_range(confirm_window_s, "confirm_window_s", 0.0, None,
                                            low_inclusive=False)
        self.driver = driver
        self._log = log
        self._lock = threading.Lock()
        self._pending: tuple[Command, float] | None = None
        self._inhibit: dict[str, str] = {}
        self._last_motion_t = -1e9
        self._last_cmd_t = -1e9
        self._fault = "NONE"
        driver.add_listener(self._on_driver_event)

    # ------------------------------------------------------------------ public hooks
    @property
    def inhibited(self) -> dict[str, str]:
        """Active motion inhibits: ``{"signal": reason, "stream": reason}``."""
        with self._lock:
            return dict(self._inhibit)

    def on_selection(self, label: str | None) -> Outcome:
        """Handle one decided target label (``"13.0Hz"``, ``"rest"`` or None).

        Returns
        -------
        outcome : Outcome
            Forwarded, refused (with reason), awaiting confirmation, ignored, rejected or failed.
        """
        key = None if label is None else self._key(label)
        self._emit("selection", {"label": label})
        if key is None or (key == "rest" and key not in self.mapping):
            return self._done(Outcome(IGNORED, None, "no control (rest)", label))
        cmd = self.mapping.get(key)
        if cmd is None:
            return self._done(Outcome(REFUSED, None, f"label {label!r} is not mapped", label))
        if cmd is Command.STOP:
            with self._lock:
                self._pending = None
            return self._send(cmd, label)
        reason = self._refusal(cmd)
        if reason:
            with self._lock:
                self._pending = None
            return self._done(Outcome(REFUSED, cmd, reason, label))
        if cmd in POSTURE_CHANGES and self.confirm_posture_changes:
            now = time.monotonic()
            with self._lock:
                pending = self._pending
                confirmed = (pending is not None and pending[0] is cmd
                             and now - pending[1] <= self.confirm_window_s)
                self._pending = None if confirmed else (cmd, now)
            if not confirmed:
                return self._done(Outcome(
                    AWAITING, cmd, f"select {cmd.value} again within "
                    f"{self.confirm_window_s:g} s to confirm", label))
        else:
            with self._lock:
                self._pending = None
        return self._send(cmd, label)

    def stop(self, reason: str = "requested") -> Outcome:
        """Send STOP now, whatever the state; return the outcome."""
        with self._lock:
            self._pending = None
        self._emit("stop", {"reason": reason})
        return self._send(Command.STOP, None, reason)

    def on_health(self, ok: bool, reason: str = "") -> Outcome | None:
        """Report signal health; bad health stops motion and inhibits it until ``ok`` again.

        ``on_health(True)`` also lifts the inhibit set by :meth:`on_stream_stalled`.
        """
        with self._lock:
            changed = (not ok) != ("signal" in self._inhibit) or bool(ok and self._inhibit)
            if ok:
                self._inhibit.clear()
            else:
                self._inhibit["signal"] = reason or "bad signal"
        if changed:
            self._emit("health", {"ok": bool(ok), "reason": reason})
        return None if ok else self._stop_if_moving(f"bad signal: {reason or 'unusable'}")

    def on_stream_stalled(self, reason: str = "EEG stream stalled") -> Outcome | None:
        """The EEG stream stopped delivering: stop motion, inhibit it until ``on_health(True)``."""
        with self._lock:
            new = "stream" not in self._inhibit
            self._inhibit["stream"] = reason
        if new:
            self._emit("stream_stalled", {"reason": reason})
        return self._stop_if_moving(reason)

    def on_decoder_lag(self, lag_s: float) -> Outcome | None:
        """The decoder fell ``lag_s`` seconds behind real time: stop motion (no inhibit)."""
        self._emit("decoder_lag", {"lag_s": float(lag_s)})
        return self._stop_if_moving(f"decoder {float(lag_s):.2f} s behind")

    # ------------------------------------------------------------------ internals
    def _refusal(self, cmd: Command) -> str:
        with self._lock:
            inhibit = dict(self._inhibit)
            last_cmd = self._last_cmd_t
        if inhibit:
            return "motion inhibited: " + "; ".join(f"{k}: {v}" for k, v in inhibit.items())
        if not getattr(self.driver, "link_ok", False):
            return "link to the exoskeleton is down"
        tel = self.driver.telemetry
        if tel is None:
            return "no telemetry from the exoskeleton yet"
        if tel.state in ("FAULT", "ESTOP"):
            return f"exoskeleton in {tel.state} (fault {tel.fault}): reset needed"
        if tel.received <= last_cmd:
            # judge on telemetry newer than our last command (the controller sends it at once)
            fresh = self.driver.wait_telemetry(lambda t: t.received > last_cmd, 0.3)
            if fresh is None:
                return "waiting for the exoskeleton to report the previous command"
            tel = fresh
        if cmd not in LEGAL.get(tel.state, frozenset()):
            if tel.moving:
                return f"{cmd.value} refused while {tel.state.lower()}: stop first"
            return f"{cmd.value} is not legal while {tel.state.lower()}"
        return ""

    def _maybe_moving(self) -> bool:
        tel = self.driver.telemetry
        with self._lock:
            last = self._last_motion_t
        if tel is None:
            return time.monotonic() - last < 5.0
        return tel.moving or tel.received <= last  # no report since the last motion command

    def _stop_if_moving(self, reason: str) -> Outcome | None:
        with self._lock:
            self._pending = None
        if not self._maybe_moving():
            return None
        self._emit("stop", {"reason": reason})
        return self._send(Command.STOP, None, reason)

    def _send(self, cmd: Command, label: str | None, why: str = "") -> Outcome:
        try:
            with self._lock:
                self._last_cmd_t = time.monotonic()
                if cmd.is_motion:
                    self._last_motion_t = self._last_cmd_t
            self.driver.execute(cmd, walk_steps=self.walk_steps, turn_deg=self.turn_deg)
        except CommandRejected as exc:
            return self._done(Outcome(REJECTED, cmd, exc.reason or str(exc), label))
        except DeviceError as exc:
            return self._done(Outcome(FAILED, cmd, str(exc), label))
        return self._done(Outcome(FORWARDED, cmd, why, label))

    def _done(self, outcome: Outcome) -> Outcome:
        level = logging.INFO if outcome.status in (FORWARDED, AWAITING, IGNORED) else \
            logging.WARNING
        logger.log(level, "safety: %s %s (%s)", outcome.status,
                   outcome.command.value if outcome.command else outcome.label, outcome.reason)
        self._emit(outcome.status, outcome.as_dict())
        return outcome

    def _emit(self, event: str, data: dict) -> None:
        if self._log is None:
            return
        try:
            self._log(event, data)
        except Exception:  # noqa: BLE001 - logging must never stop a STOP
            logger.exception("safety: log callback failed on %s", event)

    def _on_driver_event(self, event: str, data: dict) -> None:
        if event == "telemetry":
            tel = data["telemetry"]
            if tel.fault != self._fault:
                prev, self._fault = self._fault, tel.fault
                if tel.fault not in ("NONE", "WATCHDOG") or tel.state in ("FAULT", "ESTOP"):
                    self._emit("device_fault", {"fault": tel.fault, "state": tel.state,
                                                "previous": prev})
                    self.stop(f"device fault {tel.fault}")
        elif event in ("ack", "nak"):
            self._emit(event, {k: v for k, v in data.items()})
        elif event == "link_lost":
            with self._lock:
                self._pending = None
            self._emit("link_lost", {"reason": data.get("reason", ""),
                                     "note": "the driver sent one STOP (best effort); the "
                                     "controller's watchdog halts it if that was lost, and "
                                     "the new session after reconnection halts any motion"})
        elif event == "link_up":
            self._emit("link_up", dict(data))
