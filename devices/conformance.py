"""Conformance kit: every check of ``docs/protocol.md`` (v2) observable from the host.

:func:`run_conformance` opens a controller by any pyserial URL (the simulator, a vendor's
board on ``/dev/ttyUSB0``, ``socket://host:port``) and runs the checks of :data:`CHECKS` in
order, each returning a :class:`CheckResult` (pass, fail, skip or n/a, with a measured figure).
The command line is ``ssvep-exo conformance URL [--on-stand]``.

Checks that send a verb able to move the exoskeleton (STAND, SIT, WALK, TURN; even a malformed
one, since a broken controller might execute it) run only with ``on_stand=True``: the
exoskeleton is on its stand, nobody in it. Without it they are reported as skipped, and the
other checks use only HELLO, HB, STATUS, STOP, ESTOP and RESET.

Each safety check is shown to catch what it claims by running it against the simulator with
one property broken on purpose (``ExoSimulator(faults=[...])``, see
``devices.simulator.FAULTS``); ``tests/test_devices_conformance.py`` does this.
"""

from __future__ import annotations

import contextlib
import random
import secrets
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import serial
import serial.threaded

from devices._link import ControllerLink
from devices.errors import DeviceError, PortError
from devices.leds import LedEvent
from devices.protocol import MOVING_STATES, PROTOCOL_VERSION, Frame, Telemetry, crc16, encode_frame

PASS, FAIL, SKIP, NA = "pass", "FAIL", "skip", "n/a"
MOVING = frozenset(MOVING_STATES)


@dataclass(frozen=True)
class Limits:
    """Tolerances the checks apply (the defaults are those of ``docs/protocol.md``).

    Attributes
    ----------
    watchdog_s : float
        The controller's watchdog time W.
    watchdog_report_s : float
        Longest time from the host's last HB write to the report of the watchdog halt.
    report_ms : int
        Largest ``since_ms`` of the first telemetry reporting a change the controller made
        by itself ("at once").
    reply_s : float
        Longest wait for an ACK/NAK.
    tel_interval_s : float
        Longest gap between periodic telemetry frames.
    """

    watchdog_s: float = 0.5
    watchdog_report_s: float = 0.6
    report_ms: int = 30
    reply_s: float = 0.25
    tel_interval_s: float = 0.15


@dataclass
class CheckResult:
    """The outcome of one check.

    Attributes
    ----------
    name : str
        The check's name (a key of :data:`CHECKS`).
    safety : bool
        True for checks whose failure can move, or keep moving, a person.
    status : str
        ``"pass"``, ``"FAIL"``, ``"skip"`` (needs ``on_stand``) or ``"n/a"`` (not applicable
        to this link).
    figure : str
        What was measured.
    detail : str
        Why it failed (or what was skipped).
    values : dict
        The measured numbers behind ``figure`` (e.g. ``{"ms": [...]}``), for scripts.
    """

    name: str
    safety: bool
    status: str
    figure: str = ""
    detail: str = ""
    values: dict = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        """True when the check failed."""
        return self.status == FAIL


class _CheckFailed(Exception):
    def __init__(self, detail: str, figure: str = "") -> None:
        super().__init__(detail)
        self.detail, self.figure = detail, figure


def _require(ok: bool, detail: str, figure: str = "") -> None:
    if not ok:
        raise _CheckFailed(detail, figure)


# ---------------------------------------------------------------------- the checks
@dataclass
class _Kit:
    url: str
    on_stand: bool
    runs: int
    limits: Limits
    baudrate: int
    link: ControllerLink
    progress: Callable[[str], None]
    notes: dict = field(default_factory=dict)

    def reply(self, verb: str, *args: object, seq: int | None = None) -> Frame | None:
        return self.link.command(verb, *args, seq=seq, timeout=self.limits.reply_s * 2)

    def expect(self, reason: str | None, verb: str, *args: object,
               seq: int | None = None) -> None:
        """Send and require ACK (reason None) or NAK with ``reason``."""
        r = self.reply(verb, *args, seq=seq)
        what = f"{verb}{',' if args else ''}{','.join(map(str, args))}"
        _require(r is not None, f"no reply to {what}")
        got = "ACK" if r.verb == "ACK" else f"NAK {r.args[1] if len(r.args) > 1 else '?'}"
        want = "ACK" if reason is None else f"NAK {reason}"
        _require(got == want, f"{what} answered {got}, expected {want}")

    def state(self) -> Telemetry:
        tel = self.link.status()
        _require(tel is not None, "no telemetry after STATUS")
        return tel

    def session(self) -> None:
        _require(self.link.hello() is not None, "HELLO was not acknowledged")

    def settle(self) -> Telemetry:
        """A fresh session, not latched, not moving (RESET/STOP as needed)."""
        self.session()
        self.link.command("STOP")
        tel = self.state()
        if tel.state in ("ESTOP", "FAULT"):
            self.link.command("RESET")
            tel = self.state()
        return tel

    def wait_tel(self, pred: Callable[[Telemetry], bool], timeout: float,
                 since: int) -> tuple[float, Telemetry] | None:
        def match(f: Frame) -> bool:
            tel = Telemetry.from_frame(f) if f.verb == "TEL" else None
            return tel is not None and pred(tel)

        hit = self.link.wait(match, timeout, since)
        return None if hit is None else (hit[0], Telemetry.from_frame(hit[1], hit[0]))

    def walking(self) -> None:
        """(on stand) Standing, then a 10-step walk in progress."""
        tel = self.state()
        if tel.state in MOVING:
            self.expect(None, "STOP")
            tel = self.state()
        if tel.state == "SITTING":
            self.expect(None, "STAND")
            _require(self.wait_tel(lambda t: t.state == "STANDING", 10.0, self.link.mark())
                     is not None or self.state().state == "STANDING", "STAND did not stand up")
        start = self.link.mark()
        self.expect(None, "WALK", 10)
        _require(self.wait_tel(lambda t: t.state == "WALKING", 2.0, start) is not None,
                 "WALK,10 did not start walking")


def _check_telemetry(kit: _Kit) -> tuple[str, str]:
    link = kit.link
    start = link.mark()
    time.sleep(1.2)
    tels = link.tel_since(start)
    bad = kit.link.parser.drops.get("bad_crc", 0) + kit.link.parser.drops.get("malformed", 0)
    _require(len(tels) >= 2, f"{len(tels)} valid TEL in 1.2 s before any HELLO (10 Hz expected)")
    gaps = [b[0] - a[0] for a, b in zip(tels, tels[1:])]
    med, worst = statistics.median(gaps), max(gaps)
    fig = f"{len(tels)} TEL in 1.2 s before HELLO; interval median {med * 1000:.0f} ms, " \
          f"max {worst * 1000:.0f} ms"
    _require(0.05 <= med <= 0.15, f"periodic telemetry at {1 / med:.1f} Hz, not 10 Hz", fig)
    _require(worst <= kit.limits.tel_interval_s, f"a {worst * 1000:.0f} ms gap in telemetry "
             f"(limit {kit.limits.tel_interval_s * 1000:.0f} ms)", fig)
    _require(bad == 0, f"{bad} frames from the controller failed the grammar or the CRC", fig)
    return PASS, fig


def _check_framing(kit: _Kit) -> tuple[str, str]:
    link = kit.link
    cases = 0

    def silent(raw: bytes, what: str) -> None:
        nonlocal cases
        start = link.mark()
        link.write(raw)
        hit = link.wait(lambda f: f.verb in ("ACK", "NAK"), 0.3, start)
        _require(hit is None, f"{what} was answered ({hit and hit[1].verb}); it must be dropped")
        cases += 1

    def body(seq: str, verb: str) -> bytes:
        b = f"{seq},{verb}".encode()
        return b"$" + b + b"*" + f"{crc16(b):04X}".encode() + b"\n"

    good = encode_frame(link.next_seq(), "STATUS")
    silent(good[:-5] + (b"0000" if not good.endswith(b"*0000\n") else b"0001") + b"\n",
           "STATUS with a wrong CRC")
    silent(body("007", "STATUS"), "a frame whose sequence number has a leading zero")
    silent(body("70000", "STATUS"), "a frame whose sequence number is above 65535")
    silent(b"$" + b"1" * 200 + b"\n", "an overlong line")
    silent(good.lower(), "a lower-case frame")
    start = link.mark()
    seq = link.next_seq()
    link.write(b"$12,STAT" + encode_frame(seq, "STATUS").replace(b"\n", b"\r\n"))
    hit = link.wait(lambda f: f.verb == "ACK" and f.args[:1] == (str(seq),), 0.5, start)
    _require(hit is not None, "a frame after a truncated one (or ending in CR LF) was not "
             "answered")
    cases += 1
    if kit.on_stand:
        tel = kit.settle()
        wire = bytearray(encode_frame(link.next_seq(), "STAND" if tel.state == "SITTING"
                                      else "SIT"))
        wire[2] ^= 0x01  # corrupt the sequence number: the CRC no longer matches
        silent(bytes(wire), "a motion verb with a wrong CRC")
        _require(kit.state().state == tel.state, "a corrupted frame changed the state")
    return PASS, f"{cases} malformed/corrupted cases dropped, resynchronised after each"


def _check_handshake(kit: _Kit) -> tuple[str, str]:
    nonce = "C0FFEE" + secrets.token_hex(2).upper()
    r = kit.reply("HELLO", PROTOCOL_VERSION, nonce)
    _require(r is not None and r.verb == "ACK", "HELLO,2,<nonce> was not acknowledged")
    _require(len(r.args) == 4 and r.args[1] == str(PROTOCOL_VERSION) and r.args[3] == nonce,
             f"the HELLO ACK must be 'ACK,<seq>,2,<name>,<nonce>' echoing {nonce}, got "
             f"{','.join(r.args)}")
    kit.expect("BAD_VERSION", "HELLO", 1)
    kit.expect("BAD_VERSION", "HELLO", 1, "ABC")
    kit.expect("BAD_ARGS", "HELLO", 2)
    kit.expect("BAD_ARGS", "HELLO", 2, "not-a-nonce")
    return PASS, f"controller {r.args[2]!r}, protocol {r.args[1]}, nonce echoed"


def _expire_session(kit: _Kit) -> Telemetry | None:
    """Open a session and let it expire (no HB); return the WATCHDOG telemetry."""
    kit.session()
    start = kit.link.mark()
    hit = kit.wait_tel(lambda t: t.fault in ("WATCHDOG", "ESTOP") or t.state == "FAULT",
                       kit.limits.watchdog_s + 1.5, start)
    return None if hit is None else hit[1]


def _check_session_required(kit: _Kit) -> tuple[str, str]:
    kit.settle()
    tel = _expire_session(kit)
    _require(tel is not None, "a session with no heartbeat never ended (no WATCHDOG report)")
    kit.expect("NO_SESSION", "HB")
    kit.expect("NO_SESSION", "RESET")
    kit.expect(None, "STATUS")
    kit.expect(None, "STOP")
    n = 4
    if kit.on_stand:
        before = kit.state().state
        verb = "STAND" if before == "SITTING" else "SIT"
        kit.expect("NO_SESSION", verb)
        kit.expect("NO_SESSION", "WALK", 1)
        _require(kit.state().state == before, f"{verb} outside a session changed the state")
        n += 2
    return PASS, f"{n} verbs refused or accepted as specified outside a session"


def _check_nak_reasons(kit: _Kit) -> tuple[str, str]:
    seen = set()
    tel = kit.settle()
    for reason, verb, args in [("UNKNOWN_VERB", "JUMP", ()), ("BAD_ARGS", "STOP", (1,)),
                               ("BAD_ARGS", "STATUS", ("X",)), ("BAD_VERSION", "HELLO", (9,))]:
        kit.expect(reason, verb, *args)
        seen.add(reason)
    if tel.state not in ("ESTOP", "FAULT"):
        kit.expect("ILLEGAL_STATE", "RESET")
        seen.add("ILLEGAL_STATE")
    kit.link.start_heartbeats()
    try:
        kit.expect(None, "ESTOP")
        if kit.on_stand:
            kit.expect("ESTOP_LATCHED", "STAND")
            seen.add("ESTOP_LATCHED")
        kit.expect(None, "RESET")
        if kit.on_stand:
            tel = kit.state()
            if tel.state != "SITTING":
                kit.expect(None, "SIT")
                kit.wait_tel(lambda t: t.state == "SITTING", 10.0, kit.link.mark())
            for reason, verb, args in [("OUT_OF_RANGE", "WALK", (11,)),
                                       ("BAD_ARGS", "WALK", ("03",)),
                                       ("BAD_ARGS", "TURN", ("X", 10)),
                                       ("OUT_OF_RANGE", "TURN", ("L", 91)),
                                       ("ILLEGAL_STATE", "WALK", (1,))]:
                kit.expect(reason, verb, *args)
                seen.add(reason)
            kit.walking()
            kit.expect("BUSY", "SIT")
            seen.add("BUSY")
            kit.expect(None, "STOP")
    finally:
        kit.link.stop_heartbeats()
    missing = sorted({"UNKNOWN_VERB", "BAD_ARGS", "OUT_OF_RANGE", "BAD_VERSION",
                      "ILLEGAL_STATE", "ESTOP_LATCHED", "BUSY"} - seen)
    fig = f"{len(seen)} reasons seen ({', '.join(sorted(seen))}); NO_SESSION, NOT_OWNER in " \
          f"their checks; LOW_BATTERY, FAULT cannot be provoked from the host"
    if missing:
        return PASS, fig + f"; not tried without --on-stand: {', '.join(missing)}"
    return PASS, fig


def _check_stop_always(kit: _Kit) -> tuple[str, str]:
    link = kit.link
    kit.settle()
    link.start_heartbeats()
    try:
        eseq = link.next_seq()
        kit.expect(None, "ESTOP", seq=eseq)
        _require(kit.state().state == "ESTOP", "ESTOP did not latch")
        kit.expect(None, "RESET")
        _require(kit.state().state != "ESTOP", "RESET did not leave ESTOP")
        kit.expect(None, "ESTOP", seq=eseq)  # the identical frame again
        _require(kit.state().state == "ESTOP",
                 f"an ESTOP repeating sequence number {eseq} was answered but not executed")
        kit.expect(None, "RESET")
        sseq = link.next_seq()
        kit.expect(None, "STOP", seq=sseq)
        kit.expect(None, "STOP", seq=sseq)
        fig = "ESTOP with a repeated sequence number executed again"
        if kit.on_stand:
            kit.walking()
            start = link.mark()
            kit.expect(None, "STOP", seq=sseq)
            hit = kit.wait_tel(lambda t: t.state not in MOVING, 1.0, start)
            _require(hit is not None and kit.state().state not in MOVING,
                     f"a STOP repeating sequence number {sseq} did not halt the walk")
            fig += "; a repeated STOP halted a walk"
    finally:
        link.stop_heartbeats()
    return PASS, fig


def _check_retransmission(kit: _Kit) -> tuple[str, str]:
    link = kit.link
    kit.settle()
    link.start_heartbeats()
    try:
        kit.expect(None, "ESTOP")
        rseq = link.next_seq()
        first = kit.reply("RESET", seq=rseq)
        _require(first is not None and first.verb == "ACK", "RESET in ESTOP was not ACKed")
        kit.expect(None, "ESTOP")
        again = kit.reply("RESET", seq=rseq)  # a retransmission of the first RESET
        _require(again is not None and again.verb == "ACK" and again.args == first.args,
                 "a retransmitted RESET was not answered with the remembered ACK")
        _require(again.seq != first.seq, "the repeated reply reused the controller's old "
                 "sequence number")
        _require(kit.state().state == "ESTOP", "a retransmitted RESET was executed again")
        kit.expect(None, "RESET")
        fig = "a retransmitted RESET answered from memory, not executed"
        if kit.on_stand:
            tel = kit.state()
            if tel.state == "SITTING":
                kit.expect(None, "STAND")
                kit.wait_tel(lambda t: t.state == "STANDING", 10.0, link.mark())
            steps0 = kit.state().steps
            wseq = link.next_seq()
            start = link.mark()
            kit.expect(None, "WALK", 1, seq=wseq)
            kit.expect(None, "WALK", 1, seq=wseq)  # while walking: ACK again, not BUSY
            hit = kit.wait_tel(lambda t: t.state not in MOVING and t.steps > steps0, 10.0,
                               start)
            _require(hit is not None, "WALK,1 did not complete")
            time.sleep(0.3)
            tel = kit.state()
            _require(tel.steps == steps0 + 1 and tel.state not in MOVING,
                     f"a retransmitted WALK,1 walked {tel.steps - steps0} steps")
            fig += "; a retransmitted WALK executed once"
    finally:
        link.stop_heartbeats()
    return PASS, fig


def _check_transitions(kit: _Kit) -> tuple[str, str]:
    link = kit.link
    kit.settle()
    link.start_heartbeats()
    done = []
    try:
        kit.expect(None, "ESTOP")
        _require(kit.state().state == "ESTOP", "ESTOP did not enter ESTOP")
        kit.expect(None, "STOP")
        _require(kit.state().state == "ESTOP", "STOP left the ESTOP latch")
        kit.expect(None, "RESET")
        after = kit.state().state
        _require(after in ("SITTING", "STOPPED"), f"RESET left ESTOP for {after}")
        kit.expect("ILLEGAL_STATE", "RESET")
        done += ["ESTOP", "STOP in ESTOP", "RESET", "RESET outside ESTOP"]
        if kit.on_stand:
            if after != "SITTING":
                kit.expect(None, "SIT")
            steps = [("STAND", (), "STANDING"), ("STAND", (), "ILLEGAL_STATE"),
                     ("WALK", (1,), "WALKING"), (None, (), "STANDING"),
                     ("TURN", ("L", 10), "TURNING"), (None, (), "STANDING"),
                     ("WALK", (3,), "WALKING"), ("RESET", (), "ILLEGAL_STATE"),
                     ("STOP", (), "STOPPED"), ("STAND", (), "ILLEGAL_STATE"),
                     ("SIT", (), "SITTING"), ("SIT", (), "ILLEGAL_STATE")]
            for verb, args, want in steps:
                start = link.mark()
                if verb is not None:
                    if want == "ILLEGAL_STATE":
                        kit.expect("ILLEGAL_STATE", verb, *args)
                        done.append(f"{verb} refused")
                        continue
                    kit.expect(None, verb, *args)
                hit = kit.wait_tel(lambda t, w=want: t.state == w, 10.0, start)
                _require(hit is not None, f"{verb or 'the motion'} did not lead to {want}")
                done.append(want)
    finally:
        link.stop_heartbeats()
    return PASS, f"{len(done)} transitions as specified"


def _watchdog_run(kit: _Kit, *, keep_talking: bool) -> tuple[float, int]:
    """One watchdog trip: returns (last HB -> report, since_ms of that report)."""
    link = kit.link
    kit.session()
    link.start_heartbeats()
    if kit.on_stand:
        kit.walking()
    time.sleep(0.3)
    start = link.mark()
    last = link.stop_heartbeats()
    deadline = time.monotonic() + kit.limits.watchdog_s + 2.0
    hit = None
    while hit is None and time.monotonic() < deadline:
        if keep_talking:  # a host that cannot hear: it keeps sending, but no HB
            link.send("STATUS")
        hit = kit.wait_tel(lambda t: t.fault == "WATCHDOG" and t.state not in MOVING,
                           0.05, start)
    _require(hit is not None, "the controller did not halt and report WATCHDOG within "
             f"{kit.limits.watchdog_s + 2:.1f} s of the last heartbeat"
             + (" while other frames kept arriving" if keep_talking else ""))
    t, tel = hit
    moving = [x for x in link.tel_since(start) if x[0] > t and x[1].state in MOVING]
    _require(not moving, "the controller moved again after its watchdog halt")
    return t - last, tel.since_ms


def _figure(values: list[float], unit: str = "ms", scale: float = 1000.0) -> str:
    v = sorted(values)
    return (f"min {v[0] * scale:.0f} / median {statistics.median(v) * scale:.0f} / "
            f"max {v[-1] * scale:.0f} {unit} over {len(v)} runs")


def _check_watchdog(kit: _Kit) -> tuple[str, str]:
    times, ages = [], []
    for i in range(kit.runs):
        kit.progress(f"watchdog run {i + 1}/{kit.runs}")
        dt, age = _watchdog_run(kit, keep_talking=False)
        times.append(dt)
        ages.append(age)
    kit.notes["report_ages_ms"] = ages
    kit.notes["watchdog"] = {"ms": [x * 1000 for x in times]}
    fig = "last HB -> halt reported: " + _figure(times)
    limit = kit.limits.watchdog_report_s
    _require(max(times) <= limit, f"halt reported {max(times) * 1000:.0f} ms after the last "
             f"heartbeat (limit {limit * 1000:.0f} ms)", fig)
    _require(min(times) >= kit.limits.watchdog_s * 0.9,
             f"halted {min(times) * 1000:.0f} ms after the last heartbeat: earlier than the "
             f"watchdog time", fig)
    return PASS, fig


def _check_halt_report(kit: _Kit) -> tuple[str, str]:
    ages = kit.notes.get("report_ages_ms")
    if not ages:
        raise _CheckFailed("needs the watchdog runs, which did not complete")
    kit.notes["halt_report"] = {"ms": list(ages)}
    fig = "since_ms of the first halt report: " + _figure([a / 1000 for a in ages])
    _require(max(ages) <= kit.limits.report_ms,
             f"a halt the controller made itself was reported {max(ages)} ms after it "
             f"happened (limit {kit.limits.report_ms} ms: at once)", fig)
    return PASS, fig


def _check_one_way_link(kit: _Kit) -> tuple[str, str]:
    times = []
    for i in range(max(3, kit.runs // 5)):
        kit.progress(f"one-way link run {i + 1}")
        dt, _ = _watchdog_run(kit, keep_talking=True)
        times.append(dt)
    kit.notes["one_way_link"] = {"ms": [x * 1000 for x in times]}
    fig = "HB stop, STATUS every 50 ms -> halt reported: " + _figure(times)
    limit = kit.limits.watchdog_report_s
    _require(max(times) <= limit, f"halt reported {max(times) * 1000:.0f} ms after the last "
             f"heartbeat while other frames arrived (limit {limit * 1000:.0f} ms)", fig)
    return PASS, fig


def _check_new_session_halts(kit: _Kit) -> tuple[str, str]:
    link = kit.link
    kit.session()
    link.start_heartbeats()
    try:
        kit.walking()
        t0 = time.monotonic()
        _require(link.hello() is not None, "a second HELLO of the same host was refused")
        tel = kit.state()
        _require(tel.state not in MOVING,
                 f"still {tel.state} after a new HELLO: motion continued into a new session")
        fig = f"walk halted by a new HELLO ({(time.monotonic() - t0) * 1000:.0f} ms to STATUS)"
    finally:
        link.stop_heartbeats()
    return PASS, fig


def _is_network(url: str) -> bool:
    return urlsplit(url).scheme in ("socket", "rfc2217", "exosim")


def _check_second_client(kit: _Kit) -> tuple[str, str]:
    link = kit.link
    if not _is_network(kit.url):
        try:
            other = ControllerLink(kit.url, baudrate=kit.baudrate)
        except PortError as exc:
            return PASS, f"a second exclusive open is refused ({exc})"
        other.close()
        raise _CheckFailed("a second program opened the port while the kit held it")
    kit.session()
    link.start_heartbeats()
    other = None
    try:
        if kit.on_stand:
            kit.walking()
        try:
            other = ControllerLink(kit.url, baudrate=kit.baudrate, exclusive=False)
        except PortError:
            return PASS, "second connection refused"
        r = other.command("HELLO", PROTOCOL_VERSION, "B0B")
        if r is None and other.closed_reason is not None:
            return PASS, "second connection closed at once"
        _require(r is not None and r.verb == "NAK" and r.args[1:2] == ("NOT_OWNER",),
                 "a second connection's HELLO was "
                 + ("accepted" if r is not None and r.verb == "ACK" else "not refused "
                    "with NOT_OWNER") + " while a session lived")
        r = other.command("HB")
        _require(r is not None and r.verb == "NAK" and r.args[1:2] == ("NOT_OWNER",),
                 "a second connection's HB was accepted while a session lived")
        if kit.on_stand:
            r = other.command("WALK", 1)
            _require(r is not None and r.verb == "NAK", "a second connection's WALK was "
                     "accepted")
            tel = kit.state()
            _require(tel.state == "WALKING", f"the owner's walk became {tel.state} when a "
                     "read-only client connected (allowed, but then it must be refused)")
        r = link.command("HB")
        _require(r is not None and r.verb == "ACK", "the owner's heartbeat is no longer "
                 "accepted after a second connection")
        # the owner falls silent while the other client beats: the session must still expire
        start = link.mark()
        link.stop_heartbeats()
        stop = time.monotonic() + kit.limits.watchdog_s + 1.5
        hit = None
        while hit is None and time.monotonic() < stop:
            other.send("HB")
            hit = kit.wait_tel(lambda t: t.fault == "WATCHDOG" and t.state not in MOVING, 0.1,
                               start)
        _require(hit is not None, "the second connection's heartbeats kept the owner's "
                 "session alive")
        fig = "second connection read-only: HELLO, HB" + (", WALK" if kit.on_stand else "") \
            + " refused NOT_OWNER; its HB do not feed the watchdog"
        return PASS, fig
    finally:
        link.stop_heartbeats()
        if other is not None:
            other.close()


def _check_garbage(kit: _Kit) -> tuple[str, str]:
    link = kit.link
    tel0 = kit.settle()
    link.start_heartbeats()
    try:
        rng = random.Random(12)
        noise = bytes(rng.randrange(256) for _ in range(8192))
        start = link.mark()
        junk = noise + b"\n" + (b"$" + b"9" * 1000 + b"\n") * 4
        t0 = link.write(junk)
        time.sleep(0.2)
        # the controller reads the junk first: at the serial line's rate (10 bits a byte) that
        # takes longer than a reply (12 KB: 1.1 s at 115200 baud)
        wait = kit.limits.reply_s + len(junk) * 10 / kit.baudrate
        for _ in range(3):  # a STATUS caught in the junk's tail is dropped with it: ask again
            r = link.command("STATUS", timeout=wait)
            if r is not None:
                break
        _require(r is not None and r.verb == "ACK", "no answer to STATUS after 12 KB of noise")
        answered = time.monotonic() - t0
        tel = kit.state()
        _require(tel.state == tel0.state and tel.steps == tel0.steps,
                 "the noise changed the controller's state")
        n_tel = len(link.tel_since(start))
        _require(n_tel >= 2, "telemetry stopped after the noise")
    finally:
        link.stop_heartbeats()
    return PASS, f"12 KB of noise and overlong lines: state unchanged, STATUS answered " \
                 f"{answered * 1000:.0f} ms after the noise began"


# name: (function, safety, needs on_stand, what it checks)
def _led_event(kit: _Kit, on: bool, since: int, timeout: float) -> LedEvent | None:
    hit = kit.link.wait(lambda f: f.verb == "LEDEV" and f.args[1:2] == ("ON" if on else "OFF",),
                        timeout, since)
    return None if hit is None else LedEvent.from_frame(hit[1], hit[0])


def _check_leds(kit: _Kit) -> tuple[str, str]:
    """The LED-stimulus extension (section 12), when the controller has it."""
    link = kit.link
    kit.settle()
    r = kit.reply("LEDSET", 1, 13)
    _require(r is not None, "no reply to LEDSET,1,13")
    if r.verb == "NAK" and r.args[1:2] == ("UNKNOWN_VERB",):
        return SKIP, "no LED-stimulus extension (LEDSET answered NAK UNKNOWN_VERB)"
    _require(r.verb == "ACK", f"LEDSET,1,13 answered {','.join(r.args)}")
    for reason, args in [("OUT_OF_RANGE", (6, 13)), ("OUT_OF_RANGE", (1, "100.001")),
                         ("OUT_OF_RANGE", (1, 13, 360)), ("BAD_ARGS", (1, "013")),
                         ("BAD_ARGS", (1, "13.0001"))]:
        kit.expect(reason, "LEDSET", *args)
    kit.expect("BAD_ARGS", "LEDON")
    kit.expect("OUT_OF_RANGE", "LEDON", 32)
    kit.expect("OUT_OF_RANGE", "LEDON", 1, 0)
    link.start_heartbeats()
    try:
        start = link.mark()
        kit.expect(None, "LEDON", 1, 300)
        kit.expect("ILLEGAL_STATE", "LEDON", 1)
        kit.expect("ILLEGAL_STATE", "LEDSET", 1, 17)
        on = _led_event(kit, True, start, kit.limits.reply_s * 2)
        off = _led_event(kit, False, start, 0.3 + kit.limits.reply_s * 4)
        _require(on is not None and on.mask == 1, "no LEDEV,1,ON after LEDON,1,300")
        _require(off is not None and off.mask == 1, "no LEDEV,1,OFF 300 ms after LEDON,1,300")
        run_us = (off.t_us - on.t_us) % (1 << 32)
        _require(run_us == 300_000, f"a 300 ms run lasted {run_us} us by the controller's clock")
        start = link.mark()
        kit.expect(None, "LEDON", 3)
        _require(_led_event(kit, True, start, kit.limits.reply_s * 2) is not None,
                 "no LEDEV,3,ON after LEDON,3")
    finally:
        link.stop_heartbeats()
    start = link.mark()
    _require(link.hello() is not None, "HELLO was not acknowledged")
    gone = _led_event(kit, False, start, kit.limits.reply_s * 2)
    _require(gone is not None and gone.mask == 3, "a new session left the lights on")
    return PASS, (f"argument rules; LEDON,1,300 ran {run_us} us by the controller's clock, "
                  "reported ON and OFF; a new session switched the lights off")


CHECKS: dict[str, tuple[Callable[[_Kit], tuple[str, str]], bool, bool, str]] = {
    "telemetry": (_check_telemetry, False, False,
                  "periodic 10 Hz TEL from before HELLO, 9 fields, valid CRCs"),
    "framing": (_check_framing, True, False,
                "bad CRC, leading zeros, overlong, truncated, lower case: dropped, resync"),
    "handshake": (_check_handshake, False, False,
                  "HELLO,2,<nonce> ACKed with the nonce echoed; BAD_VERSION, BAD_ARGS"),
    "nak_reasons": (_check_nak_reasons, False, False, "each NAK reason, in the order given"),
    "session_required": (_check_session_required, True, False,
                         "outside a session only STOP, ESTOP, STATUS, HELLO work"),
    "stop_always": (_check_stop_always, True, False,
                    "STOP/ESTOP executed whatever their sequence number"),
    "retransmission": (_check_retransmission, True, False,
                       "identical frames answered from memory, executed once"),
    "transitions": (_check_transitions, False, False, "the state machine of section 9"),
    "watchdog": (_check_watchdog, True, False,
                 "halt after the last HB within the limit, repeated (min/median/max)"),
    "halt_report": (_check_halt_report, True, False,
                    "halts the controller makes itself reported at once (since_ms)"),
    "one_way_link": (_check_one_way_link, True, False,
                     "frames other than HB never feed the watchdog"),
    "new_session_halts": (_check_new_session_halts, True, True,
                          "a new HELLO halts the motion first"),
    "second_client": (_check_second_client, True, False,
                      "a second client cannot drive, open a session or feed the watchdog"),
    "garbage": (_check_garbage, True, False, "12 KB of noise: no action, still answering"),
    "leds": (_check_leds, False, False,
             "LED-stimulus extension (section 12), when present: arguments, timed run "
             "reported, lights off at a new session"),
}


def run_conformance(url: str, *, on_stand: bool = False, runs: int = 20,
                    limits: Limits | None = None, checks: list[str] | None = None,
                    baudrate: int = 115200,
                    progress: Callable[[str], None] | None = None) -> list[CheckResult]:
    """Run the checks against the controller at ``url``; return one result per check.

    Parameters
    ----------
    url : str
        A pyserial URL (device path, ``socket://host:port``, ...).
    on_stand : bool, default=False
        The exoskeleton is on its stand (nobody in it): checks may send motion verbs.
    runs : int, default=20
        Repetitions of the watchdog measurement.
    limits : Limits | None
        Tolerances (default: those of ``docs/protocol.md``).
    checks : list of str | None
        Run only these checks (``halt_report`` needs ``watchdog``).
    baudrate : int, default=115200
        Line speed for device paths.
    progress : callable | None
        Called with a short text as each check starts.

    Raises
    ------
    PortError
        The controller cannot be reached.
    ValueError
        An unknown check name.
    """
    names = list(CHECKS) if checks is None else list(checks)
    unknown = [n for n in names if n not in CHECKS]
    if unknown:
        raise ValueError(f"Unknown check(s) {unknown}; choose from {', '.join(CHECKS)}.")
    if "halt_report" in names and "watchdog" not in names:
        names.insert(names.index("halt_report"), "watchdog")
    if runs < 1:
        raise ValueError(f"'runs' must be at least 1, got {runs}.")
    say = progress or (lambda text: None)
    link = ControllerLink(url, baudrate=baudrate)
    kit = _Kit(url, bool(on_stand), int(runs), limits or Limits(), baudrate, link, say)
    results = []
    try:
        for name in names:
            fn, safety, needs_stand, _ = CHECKS[name]
            if needs_stand and not on_stand:
                results.append(CheckResult(name, safety, SKIP, "",
                                           "sends motion verbs: needs --on-stand"))
                continue
            say(name)
            try:
                status, figure = fn(kit)
                results.append(CheckResult(name, safety, status, figure,
                                           values=kit.notes.get(name, {})))
            except _CheckFailed as exc:
                results.append(CheckResult(name, safety, FAIL, exc.figure, exc.detail,
                                           values=kit.notes.get(name, {})))
            except (DeviceError, serial.SerialException, OSError) as exc:
                results.append(CheckResult(name, safety, FAIL, "", f"link failure: {exc}"))
            finally:
                with contextlib.suppress(Exception):
                    link.stop_heartbeats()
        with contextlib.suppress(Exception):
            link.command("STOP")
    finally:
        link.close()
    return results
