"""The firmware processes: start, serve telemetry from power-up, URL handler, clear errors."""

from __future__ import annotations

import time

import pytest
import serial

import devices.exoskeleton  # noqa: F401 - registers the exofw:// URL handler
from devices.firmware_process import FirmwareError, FirmwareProcess, firmware_command
from devices.led_trace import read_trace
from devices.urlhandler import protocol_exofw


def test_a_missing_build_says_how_to_build_it(tmp_path):
    with pytest.raises(FirmwareError, match="make firmware"):
        FirmwareProcess("avr", build_dir=tmp_path).start()
    with pytest.raises(ValueError, match="board"):
        firmware_command("pic")


def test_telemetry_from_power_up_before_any_hello(client):
    time.sleep(0.6)
    tel = client.received("TEL")
    assert len(tel) >= 3
    assert all(len(f.args) == 9 for _, f in tel)
    assert tel[-1][1].args[0] == "SITTING"
    gaps = [b[0] - a[0] for a, b in zip(tel, tel[1:])]
    assert max(gaps) < 0.3


def test_motor_enable_pin_follows_motion(client, firmware, board):
    """The motor-enable output is high exactly while the exoskeleton walks."""
    assert client.command("HELLO", 2, "T1").verb == "ACK"
    client.heartbeats(True)
    assert client.command("STAND").verb == "ACK"
    assert client.command("WALK", 1).verb == "ACK"
    time.sleep(1.0)
    client.heartbeats(False)
    firmware.stop()
    motor = read_trace(firmware.trace)["motor"]
    on = motor.t_ns[motor.value == 1]
    off = motor.t_ns[motor.value == 0]
    assert len(on) == 1
    assert off[-1] > on[0]
    # one step of 0.6 s
    assert abs((off[-1] - on[0]) * 1e-9 - 0.6) < 0.01


def test_exofw_url_opens_the_firmware_pty():
    port = serial.serial_for_url("exofw://host", baudrate=115200, timeout=0.5)
    try:
        assert port.port == "exofw://host"
        assert port.read(200).count(b"$") >= 1  # telemetry arrives
    finally:
        port.close()
        protocol_exofw.stop_all()
    with pytest.raises(ValueError, match="unknown board"):
        serial.serial_for_url("exofw://pic")
    with pytest.raises(ValueError, match="unknown option"):
        serial.serial_for_url("exofw://host?speed=2")


def test_vendor_fault_input_halts_into_fault(client, firmware):
    assert client.command("HELLO", 2, "F1").verb == "ACK"
    client.heartbeats(True)
    assert client.command("STAND").verb == "ACK"
    assert client.command("WALK", 5).verb == "ACK"
    firmware.vendor_fault(True)
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        tel = [f for _, f in client.received("TEL") if f.args[0] == "FAULT"]
        if tel:
            break
        time.sleep(0.02)
    assert tel and tel[0].args[7] == "MOTOR"
    assert client.command("RESET").args[1] == "FAULT"  # the cause persists
    firmware.vendor_fault(False)
    time.sleep(0.1)
    assert client.command("RESET").verb == "ACK"
