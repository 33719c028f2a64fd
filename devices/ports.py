"""What is attached: serial ports (pyserial's enumeration) and visible LSL streams."""

from __future__ import annotations

import logging

logger = logging.getLogger("devices")


def list_serial_ports() -> list[dict]:
    """Return the serial ports pyserial sees, as dicts (device, description, hwid)."""
    from serial.tools import list_ports

    return [
        {"device": p.device, "description": p.description or "", "hwid": p.hwid or ""}
        for p in sorted(list_ports.comports(), key=lambda p: p.device)
    ]


def list_lsl_streams(timeout: float = 1.0) -> list[dict]:
    """Return the LSL streams visible within ``timeout`` seconds, as dicts.

    Keys: name, type, channel_count, nominal_srate, source_id, hostname.
    """
    import pylsl

    infos = pylsl.resolve_streams(wait_time=timeout)
    return [
        {
            "name": i.name(),
            "type": i.type(),
            "channel_count": i.channel_count(),
            "nominal_srate": i.nominal_srate(),
            "source_id": i.source_id(),
            "hostname": i.hostname(),
        }
        for i in infos
    ]
