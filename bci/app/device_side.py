"""The exoskeleton side of a session: simulator (when no port), driver, safety supervisor.

:meth:`DeviceSide.open` connects the exoskeleton and registers :meth:`DeviceSide.close` on
the session's exit stack, so that from then on every way out sends STOP and closes the link;
:meth:`DeviceSide.poll` copies the controller's telemetry to the record and the view.
"""

from __future__ import annotations

import contextlib

from bci.app import _parts
from bci.app.context import SessionContext, lsl_clock, safe_close


class DeviceSide:
    """The exoskeleton of a session (roles ``"all"`` and ``"bridge"``).

    Parameters
    ----------
    ctx : SessionContext

    Attributes
    ----------
    driver : devices.exoskeleton.ExoskeletonDriver | None
    supervisor : devices.safety.SafetySupervisor | None
    simulator : devices.simulator.ExoSimulator | None
        The simulated exoskeleton started when no port is configured.
    sim_url : str | None
        Its serial URL.
    """

    def __init__(self, ctx: SessionContext) -> None:
        self.ctx = ctx
        self.driver = None
        self.supervisor = None
        self.simulator = None
        self.sim_url: str | None = None
        self._closed = False

    def open(self, stack: contextlib.ExitStack) -> None:
        """Start the simulator if no port is given, open the driver, build the supervisor."""
        cfg, ctx = self.ctx.cfg, self.ctx
        port = cfg.device.port
        if not port:
            self.simulator = _parts.start_simulator(cfg)
            stack.callback(safe_close, self.simulator.stop)
            port = self.sim_url = self.simulator.url
            ctx.say(f"No exoskeleton port given: using the simulated exoskeleton on {port}")
        self.driver = _parts.open_driver(port, cfg)
        stack.callback(self.close)
        self.supervisor = _parts.make_supervisor(self.driver, cfg, ctx.record.mapping,
                                                 log=self._supervisor_log)
        ctx.log_event("device_open", {"port": port, "simulated": self.simulator is not None})

    def close(self) -> None:
        """STOP, then close the link (best effort, bounded time; idempotent)."""
        if self.driver is None or self._closed:
            return
        self._closed = True
        _parts.stop_and_close(self.driver, self.supervisor, log=self.ctx.log_event)
        self.ctx.log_event("device_closed", {})

    def poll(self) -> None:
        """Copy the latest telemetry (pose, posture) and the last ACK to the record and view."""
        if self.driver is None:
            return
        view = self.ctx.view
        tel = _parts.telemetry(self.driver)
        if tel is not None:
            self.ctx.record.add_pose(lsl_clock(), tel["x"], tel["y"], tel["heading"],
                                     tel["state"])
            view.posture = tel["state"]
            view.pose = (tel["x"], tel["y"], tel["heading"])
        view.last_ack = _parts.last_ack(self.driver)

    def _supervisor_log(self, event: str, data: dict) -> None:
        """The supervisor's log callback: session log + record (its own STOPs noted)."""
        data = dict(data or {})
        self.ctx.log_event(f"supervisor.{event}", data)
        self.ctx.record.add_event(lsl_clock(), f"supervisor.{event}", data)
        stop_reason = _parts.safety_stop_reason(event, data)
        if stop_reason and stop_reason != _parts.FINAL_STOP_REASON:
            self.ctx.record.add_event(lsl_clock(), "safety_stop", {"reason": stop_reason})
