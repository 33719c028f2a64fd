"""The LED flicker engine as the pins show it: exact frequencies, 50 % duty, edges on the tick
grid, phases, timed runs and the LEDEV events (section 12 of docs/protocol.md)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from devices.led_trace import TICK_NS, flicker_runs, measure_run, read_trace

TICK_S = TICK_NS * 1e-9


def _wait_events(client, n: int, timeout: float) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ev = client.received("LEDEV")
        if len(ev) >= n:
            return ev
        time.sleep(0.02)
    return client.received("LEDEV")


def _flicker(client, firmware, freqs: list[str], duration_ms: int) -> dict:
    assert client.command("HELLO", 2, "LED1").verb == "ACK"
    client.heartbeats(True)
    for i, f in enumerate(freqs, start=1):
        assert client.command("LEDSET", i, f).verb == "ACK"
    mask = (1 << len(freqs)) - 1
    assert client.command("LEDON", mask, duration_ms).verb == "ACK"
    events = _wait_events(client, 2, duration_ms / 1000 + 3.0)
    client.heartbeats(False)
    firmware.stop()
    return {"events": events, "trace": read_trace(firmware.trace)}


@pytest.mark.parametrize("freqs", [
    ["13", "17", "21", "1", "100"],                  # the demo's lights and the range's ends
    ["7.5", "33.333", "59.94", "99.999", "12.345"],  # fractional frequencies
])
def test_each_light_flickers_at_its_frequency_with_half_duty(client, firmware, freqs):
    out = _flicker(client, firmware, freqs, 4000)
    for i, f in enumerate(freqs, start=1):
        hz = float(f)
        runs = flicker_runs(out["trace"][f"led{i}"])
        assert len(runs) == 1
        m = measure_run(runs[0], hz)
        assert abs(m.freq_hz - hz) < 0.01, (f, m)
        # every period within one tick of nominal, duty 50 % within a tick per period
        assert m.period_min_s > 1 / hz - TICK_S - 1e-6 and m.period_max_s < 1 / hz + TICK_S + 1e-6
        assert abs(m.duty - 0.5) < TICK_S * hz + 1e-3
        # edges deviate from the ideal wave by the tick quantisation (< one tick, peak to peak)
        # plus the interrupt latency variation
        assert m.jitter_pp_s <= TICK_S + m.tick_latency_pp_s + 1e-7, (f, m)


def test_timed_run_lasts_exactly_and_is_reported(client, firmware):
    out = _flicker(client, firmware, ["13", "17", "21"], 2500)
    events = [f for _, f in out["events"]]
    assert [e.args[:2] for e in events] == [("7", "ON"), ("7", "OFF")]
    t_on, t_off = int(events[0].args[2]), int(events[1].args[2])
    assert t_off - t_on == 2_500_000  # microseconds of the controller's clock
    for i in (1, 2, 3):
        led = out["trace"][f"led{i}"]
        rises = led.t_ns[led.value == 1]
        last_edge = led.t_ns[-1]
        assert led.value[-1] == 0
        # all three started on the same tick and were dark again after exactly 2.5 s
        assert rises[0] == out["trace"]["led1"].t_ns[out["trace"]["led1"].value == 1][0]
        assert last_edge - rises[0] <= 2_500_000_000
    # the LEDEV times are the controller's tick times: the same offset for the start and end
    led1 = out["trace"]["led1"]
    offset_on = led1.t_ns[led1.value == 1][0] - t_on * 1000
    assert 0 <= offset_on < 2_000_000  # the board clock starts with the simulation (< 2 ms)


def test_phase_shifts_the_wave(client, firmware):
    assert client.command("HELLO", 2, "PH").verb == "ACK"
    client.heartbeats(True)
    assert client.command("LEDSET", 1, 10).verb == "ACK"
    assert client.command("LEDSET", 2, 10, 180).verb == "ACK"
    assert client.command("LEDSET", 3, 10, "90.5").verb == "ACK"
    assert client.command("LEDON", 7, 1000).verb == "ACK"
    _wait_events(client, 2, 4.0)
    firmware.stop()
    tr = read_trace(firmware.trace)
    r1 = tr["led1"].t_ns[tr["led1"].value == 1]
    f1 = tr["led1"].t_ns[(tr["led1"].value == 0) & (tr["led1"].t_ns > r1[0])]
    r2 = tr["led2"].t_ns[tr["led2"].value == 1]
    r3 = tr["led3"].t_ns[tr["led3"].value == 1]
    f3 = tr["led3"].t_ns[(tr["led3"].value == 0) & (tr["led3"].t_ns > r3[0])]
    # 180 degrees: light 2 rises when light 1 falls (within a tick)
    assert np.all(np.abs(r2[: len(f1)] - f1[: len(r2)]) <= TICK_NS)
    # 90.5 degrees: light 3 is on at the start and falls about 39.9 ms later (0.2486 period)
    assert r3[0] == r1[0]
    assert abs((f3[0] - r3[0]) * 1e-9 - (0.5 - 90.5 / 360) / 10) <= TICK_S


def test_lights_go_dark_when_the_session_ends(client, firmware):
    assert client.command("HELLO", 2, "S1").verb == "ACK"
    assert client.command("LEDSET", 1, 13).verb == "ACK"
    assert client.command("LEDON", 1).verb == "ACK"  # untimed, and no heartbeat: watchdog
    events = _wait_events(client, 2, 3.0)
    assert [f.args[:2] for _, f in events] == [("1", "ON"), ("1", "OFF")]
    tel = [f for _, f in client.received("TEL") if f.args[7] == "WATCHDOG"]
    assert tel
    firmware.stop()
    led = read_trace(firmware.trace)["led1"]
    assert led.value[-1] == 0
    dur = (led.t_ns[-1] - led.t_ns[led.value == 1][0]) * 1e-9
    assert 0 < dur <= 0.501  # the watchdog, armed by HELLO before LEDON, ended it


def test_event_arrives_after_the_edge_it_reports(client, firmware, board):
    if board != "avr":
        pytest.skip("the host build's LED clock is virtual; only simavr times the pins")
    out = _flicker(client, firmware, ["13"], 1000)
    (t_on_rx, ev_on), (t_off_rx, ev_off) = out["events"]
    led = out["trace"]["led1"]
    edge_on = led.wall_ns[led.value == 1][0] * 1e-9
    edge_off = led.wall_ns[-1] * 1e-9
    assert edge_on <= t_on_rx and edge_off <= t_off_rx
