"""What is attached: the serial ports pyserial sees (LSL discovery is in ``bci.acquisition``)."""

from __future__ import annotations

from serial.tools import list_ports


def list_serial_ports() -> list[dict]:
    """Return the serial ports pyserial sees, as dicts (device, description, hwid)."""
    return [
        {"device": p.device, "description": p.description or "", "hwid": p.hwid or ""}
        for p in sorted(list_ports.comports(), key=lambda p: p.device)
    ]
