"""From decisions to the exoskeleton: the bridge worker and the decisions-stream listener.

:class:`Bridge` hands decisions to the safety supervisor in order, in its own thread, so that
neither the decoding thread nor the LSL reader ever waits for the serial link. Decisions come
from the session's own online loop (role ``"all"``) or from another machine's decisions stream
through :class:`DecisionsListener` (role ``"bridge"``), which also reports a silent stream.
"""

from __future__ import annotations

import contextlib
import queue
import time

from bci._logging import logger, report_thread_error
from bci.acquisition import SearchStopped
from bci.app import _parts
from bci.app.context import SessionContext, lsl_clock, safe_close
from bci.online import DecisionsInlet

#: Bridge: no decision for this long means the decoder is gone -> STOP.
DECISIONS_TIMEOUT_S = 1.0

_STALLED = "decisions_stalled"  # queue item: the decisions stream went silent


class Bridge:
    """Applies decisions to the safety supervisor, in order, off the decoding thread.

    Parameters
    ----------
    ctx : SessionContext
    supervisor : devices.safety.SafetySupervisor
    """

    def __init__(self, ctx: SessionContext, supervisor) -> None:
        self.ctx = ctx
        self.supervisor = supervisor
        self._queue: queue.Queue = queue.Queue()

    def start(self) -> None:
        """Start the worker thread (it drains the queue after the stop event, then ends)."""
        self.ctx.workers.start("bridge", self._work)

    def submit(self, decision) -> None:
        """Queue one :class:`bci.online.Decision` (thread-safe)."""
        self._queue.put(decision)

    def decisions_stalled(self) -> None:
        """The decisions stream went silent: stop the exoskeleton (in order with decisions)."""
        self._queue.put(_STALLED)

    def _work(self) -> None:
        while not self.ctx.stop_event.is_set() or not self._queue.empty():
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            try:
                if item == _STALLED:
                    self.ctx.log_event("decisions_stalled", {})
                    _parts.on_stall(self.supervisor, "decisions stream silent")
                    continue
                res = _parts.apply_decision(self.supervisor, item, menus=self.ctx.menus,
                                            driver=self.supervisor.driver)
                if res is not None:
                    self._on_command(item, res)
            except Exception:  # noqa: BLE001 - keep the bridge alive; the driver stops on loss
                report_thread_error("The safety supervisor failed on a decision")

    def _on_command(self, d, res: dict) -> None:
        """Record one selection's outcome (``res`` from :func:`_parts.apply_decision`)."""
        self.ctx.record.add_event(lsl_clock(), "command", res)
        cmd, result = res.get("command"), res.get("result")
        reason = res.get("reason") or ""
        self.ctx.view.last_command = f"{d.outcome} -> {cmd or 'nothing'}: {result}" + (
            f" - {reason}" if reason else "")
        self.ctx.log_event("command", res)


class DecisionsListener:
    """The ``"bridge"`` role's input: another machine's LSL decisions stream.

    Parameters
    ----------
    ctx : SessionContext
    bridge : Bridge
        Where the decisions go.
    """

    def __init__(self, ctx: SessionContext, bridge: Bridge) -> None:
        self.ctx = ctx
        self.bridge = bridge
        self.inlet = None
        self._last = time.monotonic()

    def silent_for(self) -> float | None:
        """Seconds without a decision once that exceeds :data:`DECISIONS_TIMEOUT_S`, else
        None."""
        silent = time.monotonic() - self._last
        return silent if silent > DECISIONS_TIMEOUT_S else None

    def open(self, stack: contextlib.ExitStack) -> None:
        """Connect to the decisions stream and start reading it (nothing, when the session is
        asked to stop while the stream is looked for)."""
        cfg = self.ctx.cfg
        self.ctx.say(f"Looking for the decisions stream {cfg.lsl.decisions_stream!r} (up to "
                     f"{cfg.source.timeout_s:g} s)")
        try:
            self.inlet = DecisionsInlet(cfg.lsl.decisions_stream,
                                        source_id=cfg.lsl.decisions_source_id or None,
                                        timeout=cfg.source.timeout_s,
                                        stop_event=self.ctx.stop_event)
        except SearchStopped:  # a signal while looking: the session ends as in any phase
            self.ctx.say("Stopped while looking for the decisions stream.")
            return
        stack.callback(safe_close, self.inlet.close)
        self.ctx.say(f"Listening to decisions stream {cfg.lsl.decisions_stream!r}")
        self.ctx.workers.start("decisions-inlet", self._pull)

    def _pull(self) -> None:
        ctx = self.ctx
        self._last = time.monotonic()
        stalled = False
        while not ctx.stop_event.is_set():
            try:
                decisions = self.inlet.pull(timeout=0.1)
            except Exception:  # noqa: BLE001
                logger.exception("Reading the decisions stream failed")
                decisions = []
            for d in decisions:
                ctx.record.add_decision(d)
                ctx.view.show_decision(d)
                self.bridge.submit(d)
            now = time.monotonic()
            if decisions:
                self._last = now
                stalled = False
            elif not stalled and now - self._last > DECISIONS_TIMEOUT_S:
                stalled = True
                self.bridge.decisions_stalled()
