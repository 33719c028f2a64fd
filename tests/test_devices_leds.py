"""The LED-stimulus extension (docs/protocol.md, section 12): argument rules, the simulated
controller's lights and their events, the driver's LED methods."""

from __future__ import annotations

import threading
import time

import pytest

from devices.errors import CommandRejected
from devices.exoskeleton import ExoskeletonDriver
from devices.leds import (
    ALL_LIGHTS,
    LedEvent,
    format_freq,
    format_phase,
    led_arg_refusal,
    lights_of,
    mask_of,
    parse_decimal,
)
from devices.protocol import Frame, FrameParser
from devices.simulator import ControllerModel, ExoSimulator


def run(model: ControllerModel, *frames: tuple, t: float = 0.0) -> list[Frame]:
    """Feed frames (seq, verb, *args) at time t; return the ACK/NAK replies."""
    parser = FrameParser()
    out = []
    for seq, verb, *args in frames:
        for raw in model.handle(Frame(seq, verb, tuple(str(a) for a in args)), t):
            out += parser.feed(raw)
    return [f for f in out if f.verb in ("ACK", "NAK")]


def answer(model: ControllerModel, seq: int, verb: str, *args, t: float = 0.0) -> str:
    (reply,) = run(model, (seq, verb, *args), t=t)
    return "ACK" if reply.verb == "ACK" else reply.args[1]


def events(model: ControllerModel) -> list[tuple[str, str, int]]:
    frames = []
    for raw in model.take_led_events():
        frames += FrameParser().feed(raw)
    return [(f.args[0], f.args[1], int(f.args[2])) for f in frames]


@pytest.mark.parametrize(("text", "decimals", "value"), [
    ("13", 3, 13.0), ("13.5", 3, 13.5), ("33.333", 3, 33.333), ("0.5", 1, 0.5),
    ("13.0001", 3, None), ("013", 3, None), (".5", 3, None), ("5.", 3, None),
    ("+5", 3, None), ("-5", 3, None), ("1e2", 3, None), ("1234567890", 3, None),
])
def test_decimal_arguments_follow_the_integer_rule(text, decimals, value):
    assert parse_decimal(text, decimals) == value


@pytest.mark.parametrize(("verb", "args", "reason"), [
    ("LEDSET", ("1", "13"), ""), ("LEDSET", ("5", "100", "359.9"), ""),
    ("LEDSET", ("1",), "BAD_ARGS"), ("LEDSET", ("1", "13", "0", "1"), "BAD_ARGS"),
    ("LEDSET", ("01", "13"), "BAD_ARGS"), ("LEDSET", ("1", "13.0001"), "BAD_ARGS"),
    ("LEDSET", ("1", "13", "90.05"), "BAD_ARGS"),
    ("LEDSET", ("6", "13"), "OUT_OF_RANGE"), ("LEDSET", ("0", "13"), "OUT_OF_RANGE"),
    ("LEDSET", ("1", "0.999"), "OUT_OF_RANGE"), ("LEDSET", ("1", "100.001"), "OUT_OF_RANGE"),
    ("LEDSET", ("1", "13", "360"), "OUT_OF_RANGE"),
    ("LEDON", ("7",), ""), ("LEDON", ("31", "600000"), ""), ("LEDON", ("0",), "OUT_OF_RANGE"),
    ("LEDON", ("32",), "OUT_OF_RANGE"), ("LEDON", ("7", "0"), "OUT_OF_RANGE"),
    ("LEDON", ("7", "600001"), "OUT_OF_RANGE"), ("LEDON", ("7", "1.5"), "BAD_ARGS"),
    ("LEDON", (), "BAD_ARGS"), ("LEDOFF", ("7", "10"), "BAD_ARGS"), ("LEDOFF", ("31",), ""),
])
def test_argument_rules(verb, args, reason):
    # the same table as the firmware's C tests (devices/firmware/tests/test_core.c)
    assert led_arg_refusal(verb, args) == reason


def test_masks_and_formatting():
    assert mask_of([1, 3]) == 0b101 and mask_of(5) == 16 and lights_of(0b10110) == (2, 3, 5)
    with pytest.raises(ValueError, match="1..5"):
        mask_of([6])
    with pytest.raises(ValueError, match="at least one"):
        mask_of([])
    assert [format_freq(f) for f in (13, 13.5, 33.3333, 99.9999)] == ["13", "13.5", "33.333",
                                                                       "100"]
    assert [format_phase(p) for p in (0, 90.04, -90, 359.96)] == ["0", "90", "270", "0"]
    ev = LedEvent.from_frame(Frame(4, "LEDEV", ("7", "ON", "4294967295")), 1.5)
    assert ev == LedEvent(7, True, 4294967295, 1.5) and ev.lights == (1, 2, 3)
    for bad in (("7", "on", "1"), ("0", "ON", "1"), ("7", "ON"), ("7", "ON", "-1")):
        assert LedEvent.from_frame(Frame(4, "LEDEV", bad)) is None


def test_lights_need_the_session_and_report_every_start_and_stop():
    m = ControllerModel(watchdog_s=100.0)
    assert answer(m, 1, "LEDSET", 1, 13) == "NO_SESSION"
    assert answer(m, 2, "HELLO", 2, "N1") == "ACK"
    assert answer(m, 3, "LEDSET", 1, 13) == "ACK"
    assert answer(m, 4, "LEDSET", 2, "17.5", 90) == "ACK"
    assert answer(m, 5, "LEDON", 3, 250, t=1.0) == "ACK"
    assert answer(m, 6, "LEDON", 2, t=1.1) == "ILLEGAL_STATE"  # already on
    assert answer(m, 7, "LEDSET", 1, 15, t=1.1) == "ILLEGAL_STATE"
    assert m.state == "SITTING"  # the lights never move the exoskeleton
    m.tick(1.3)
    (on, off) = events(m)
    assert on[:2] == ("3", "ON") and off[:2] == ("3", "OFF")
    assert off[2] - on[2] == 250_000  # a timed run lasts exactly its milliseconds
    # untimed: until LEDOFF (only the lights that are on are reported)
    assert answer(m, 8, "LEDON", 1, t=2.0) == "ACK"
    assert answer(m, 9, "LEDOFF", 31, t=2.5) == "ACK"
    assert [e[:2] for e in events(m)] == [("1", "ON"), ("1", "OFF")]
    assert answer(m, 10, "LEDOFF", 31, t=2.6) == "ACK" and events(m) == []


def test_a_retransmitted_ledon_is_answered_from_memory():
    m = ControllerModel(watchdog_s=100.0)
    assert answer(m, 1, "HELLO", 2, "N1") == "ACK"
    assert answer(m, 2, "LEDON", 1) == "ACK"
    assert answer(m, 2, "LEDON", 1) == "ACK"  # the same frame again: not executed twice
    assert len(events(m)) == 1
    assert answer(m, 3, "LEDON", 1) == "ILLEGAL_STATE"  # a new command


@pytest.mark.parametrize("end", ["hello", "watchdog"])
def test_the_end_of_the_session_switches_the_lights_off(end):
    m = ControllerModel(watchdog_s=0.5)
    assert answer(m, 1, "HELLO", 2, "N1") == "ACK"
    assert answer(m, 2, "LEDON", ALL_LIGHTS, t=0.1) == "ACK"
    if end == "hello":
        assert answer(m, 3, "HELLO", 2, "N2", t=0.2) == "ACK"
    else:
        m.tick(0.7)
    assert [e[:2] for e in events(m)] == [("31", "ON"), ("31", "OFF")]
    assert m.leds.on == 0


def test_driver_led_methods_and_events_over_a_pty():
    got: list[LedEvent] = []
    done = threading.Event()

    def listener(event, data):
        if event == "led":
            got.append(data["event"])
            if not data["event"].on:
                done.set()

    with ExoSimulator(transport="pty") as sim, ExoskeletonDriver(sim.url) as exo:
        exo.add_listener(listener)
        exo.led_set(1, 13)
        exo.led_set(2, 17.25, phase_deg=90)
        with pytest.raises(ValueError, match="1..5"):
            exo.led_set(6, 13)
        with pytest.raises(ValueError, match="freq"):
            exo.led_set(1, 0.5)
        t0 = time.monotonic()
        exo.led_on([1, 2], duration_s=0.2)
        with pytest.raises(CommandRejected) as err:
            exo.led_on(1)
        assert err.value.reason == "ILLEGAL_STATE"
        assert done.wait(5.0)
    on, off = got
    assert (on.mask, on.on, off.mask, off.on) == (3, True, 3, False)
    assert off.t_us - on.t_us == 200_000
    assert t0 <= on.received <= off.received
    assert sim.model.leds.freq[:2] == [13.0, 17.25] and sim.model.leds.phase[1] == 90.0
