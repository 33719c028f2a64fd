"""pyserial handler for ``exosim://``: start an in-process simulated controller and connect.

URL format::

    exosim://[name][?speed=<float>&step_s=<float>&watchdog_s=<float>&telemetry_hz=<float>]

The first open of a URL starts an :class:`~devices.simulator.ExoSimulator` on a free TCP port of
127.0.0.1 and keeps it running for the life of the process; later opens of the same URL
(reconnections) reach the same simulator, so its state survives a reconnection as a real
controller's would. ``name`` tells apart several simulators in one process. Unknown options
raise ValueError, as pyserial's own handlers do.
"""

from __future__ import annotations

import threading
import urllib.parse as urlparse

from serial.serialutil import SerialException
from serial.urlhandler import protocol_socket

from devices.simulator import ExoSimulator

_OPTIONS = {"speed": float, "step_s": float, "watchdog_s": float, "telemetry_hz": float}
_SIMULATORS: dict[str, object] = {}
_LOCK = threading.Lock()


def simulator_for(url: str):
    """Return the simulator serving ``url`` (starting it on first use)."""
    parts = urlparse.urlsplit(url)
    if parts.scheme != "exosim":
        raise SerialException(f"expected a URL starting with exosim://, got {url!r}")
    params = {}
    for option, values in urlparse.parse_qs(parts.query, True).items():
        if option not in _OPTIONS:
            raise ValueError(
                f"unknown option {option!r} in {url!r}; allowed: {', '.join(_OPTIONS)}"
            )
        params[option] = _OPTIONS[option](values[0])
    key = f"{parts.netloc}{parts.path}?{sorted(params.items())}"
    with _LOCK:
        sim = _SIMULATORS.get(key)
        if sim is None:
            sim = ExoSimulator(transport="tcp", host="127.0.0.1", port=0, **params).start()
            _SIMULATORS[key] = sim
    return sim


def stop_all() -> None:
    """Stop every simulator started through ``exosim://`` URLs."""
    with _LOCK:
        sims = list(_SIMULATORS.values())
        _SIMULATORS.clear()
    for sim in sims:
        sim.stop()


class Serial(protocol_socket.Serial):
    """A socket port connected to an in-process simulator."""

    def from_url(self, url: str):
        """Start (or find) the simulator for ``url``; return its (host, port)."""
        sim = simulator_for(url)
        return ("127.0.0.1", sim.port)
