"""The closed loop: EEG source -> EEGStream -> OnlineLoop -> SafetySupervisor -> driver.

:class:`ClosedLoopSession` wires the parts for one of three roles:

- ``"all"``: decode the EEG and drive the exoskeleton in one process;
- ``"decoder"``: decode and publish decisions on the LSL decisions stream, move nothing;
- ``"bridge"``: listen to a decisions stream and drive the exoskeleton through the safety
  supervisor (the decoder may run on another machine).

Every session writes a folder ``<output>/<YYYYmmdd-HHMMSS>-<role>/`` with the recording
(``recording.xdf``: EEG, cues and decisions), the log (``session.jsonl``: decisions and every
supervisor event), the summary (``summary.json``) and the plots (``scores.png``, ``path.png``).
On every exit path (end of the source, ``duration_s``, a signal, an input stalled for
``source.max_stall_s``, an error) the exoskeleton is sent STOP and the link is closed before
the files are finished.

Exit codes (see :data:`bci.app.exits.EXIT_CODES`): 0 the session ended normally, 1 the session
ran but failed (the online loop failed; the demo's commands were not all executed), 2 a user
error (configuration, stream, port, profile), 3 the input stalled for ``source.max_stall_s``,
128 + the signal's number when stopped by SIGHUP (129), SIGINT (130), SIGQUIT (131) or
SIGTERM (143).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from bci._logging import route_liblsl_log
from bci.app import session_files
from bci.app.bridge import Bridge, DecisionsListener
from bci.app.config import SessionConfig
from bci.app.context import SessionContext, lsl_clock, safe_close
from bci.app.decoding import DecodingSide
from bci.app.device_side import DeviceSide
from bci.app.exits import (
    EXIT_CODES,
    EXIT_FAILED_CHECK,
    EXIT_OK,
    EXIT_SIGINT,
    EXIT_SIGTERM,
    EXIT_USER_ERROR,
    exit_code,
    is_user_error,
    stop_on_signals,
    user_error_line,
)
from bci.app.live_view import GuardedOutput, LiveView, ViewState
from bci.app.record import SessionRecord
from bci.app.source_watch import SourceWatch
from bci.labels import freq_label
from bci.online import SessionLog


@dataclass
class SessionResult:
    """What a session produced.

    Attributes
    ----------
    exit_code : int
        See :data:`EXIT_CODES`.
    folder : Path
        The session folder.
    files : dict of str to Path
        ``"recording"``, ``"log"``, ``"summary"``, ``"scores_plot"``, ``"path_plot"`` (those
        written).
    summary : dict
        :func:`bci.app.summary.summarize` result.
    stopped_by : str
        ``"end of source"``, ``"duration"``, ``"source stalled"``, a signal's name
        (``"SIGINT"``, ``"SIGTERM"``, ...), ``"error"``.
    record : SessionRecord
    """

    exit_code: int
    folder: Path
    files: dict[str, Path] = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    stopped_by: str = ""
    record: SessionRecord | None = None


class ClosedLoopSession:
    """One closed-loop session, configured by a :class:`SessionConfig`.

    Parameters
    ----------
    config : SessionConfig
        Every setting (see ``docs/configuration.md``).
    out : file-like, default=sys.stdout
        Where the live view, the messages and the summary go.
    stop_event : threading.Event | None
        Set it to end the session from another thread (signal handlers set it too).
    install_signal_handlers : bool, default=True
        Turn the stop signals (:data:`bci.app.exits.STOP_SIGNALS`) into an orderly stop
        (only from the main thread).

    Notes
    -----
    Use :meth:`run`; it returns a :class:`SessionResult` and never leaves the exoskeleton
    moving: on every exit path STOP is sent and the link closed before the files are closed.
    User errors raise :class:`bci.errors.BCIError` / :class:`devices.errors.DeviceError`.
    The parts: :class:`~bci.app.decoding.DecodingSide` (EEG in, decisions out),
    :class:`~bci.app.device_side.DeviceSide` (exoskeleton), :class:`~bci.app.bridge.Bridge`
    (decisions to the supervisor) and :class:`~bci.app.bridge.DecisionsListener` (decisions
    from another machine).
    """

    def __init__(
        self,
        config: SessionConfig,
        *,
        out: TextIO | None = None,
        stop_event: threading.Event | None = None,
        install_signal_handlers: bool = True,
    ) -> None:
        self.cfg = config
        self.out = GuardedOutput(out if out is not None else sys.stdout)
        self.stop_event = stop_event or threading.Event()
        self.install_signal_handlers = install_signal_handlers
        self.role = config.session.role
        self.record = SessionRecord()
        self.view = ViewState(role=self.role)
        self.stopped_by = ""
        self.files: dict[str, Path] = {}
        self.summary: dict = {}
        self.folder: Path | None = None
        self.ctx: SessionContext | None = None
        self.decoding: DecodingSide | None = None
        self.device: DeviceSide | None = None
        self.watch: SourceWatch | None = None
        self._live: LiveView | None = None

    # ------------------------------------------------------------------ the parts, for callers
    @property
    def loop(self):
        """The online loop (None before it starts, or in the bridge role)."""
        return None if self.decoding is None else self.decoding.loop

    @property
    def stream(self):
        """The EEG stream (None before it connects, or in the bridge role)."""
        return None if self.decoding is None else self.decoding.stream

    @property
    def source_player(self):
        """The synthetic or replayed source the session publishes, else None."""
        return None if self.decoding is None else self.decoding.source_player

    @property
    def driver(self):
        """The exoskeleton driver (None before it opens, or in the decoder role)."""
        return None if self.device is None else self.device.driver

    # ------------------------------------------------------------------ output and stop
    def say(self, text: str) -> None:
        """Print a message line (above the live view)."""
        if self._live is not None:
            self._live.message(text)
        else:
            self.out.write(text + "\n")
            self.out.flush()

    def request_stop(self, why: str = "stop requested") -> None:
        """End the session (thread-safe; the first reason given is kept)."""
        if not self.stopped_by:
            self.stopped_by = why
        self.stop_event.set()

    # ------------------------------------------------------------------ the story
    def run(self) -> SessionResult:
        """Run until the source ends, ``duration_s`` passes, or a stop is requested."""
        self.folder = session_files.new_folder(self.cfg.session.output, self.role)
        self.ctx = SessionContext(self.cfg, self.folder, self.record, self.view,
                                  self.stop_event, self.say, self.request_stop)
        error: BaseException | None = None
        try:
            with stop_on_signals(self.request_stop, enabled=self.install_signal_handlers), \
                    contextlib.ExitStack() as stack:
                self._wire(stack)
                self.record.t0 = lsl_clock()
                self._main_loop()
        except BaseException as exc:  # noqa: BLE001 - record, clean up above, re-raise
            error = exc
            self.stopped_by = self.stopped_by or "error"
            raise
        finally:
            self.record.t_end = lsl_clock()
            if self._live is not None:
                self._live.close()
                self._live = None
            if error is None or not is_user_error(error):
                self._finish_files()
            else:
                session_files.remove_if_empty(self.folder, self.record)
        return SessionResult(
            exit_code=exit_code(self.stopped_by), folder=self.folder, files=dict(self.files),
            summary=self.summary, stopped_by=self.stopped_by, record=self.record)

    def _wire(self, stack: contextlib.ExitStack) -> None:
        """Open the parts of the session's role, in an order that fails safe.

        A bad profile fails before anything is opened; the exoskeleton opens before decoding
        starts, so that STOP is sent on every exit. On the way out (the exit stack runs last
        in, first out): the threads stop (no new command), then STOP and the link closed,
        then the streams and the files.
        """
        ctx = self.ctx
        stack.callback(self._stop_threads)
        self._open_log(stack)
        decodes = self.role in ("all", "decoder")
        drives = self.role in ("all", "bridge")
        if decodes:
            self.decoding = DecodingSide(ctx)
        bridge = None
        if drives:
            self.device = DeviceSide(ctx)
            self.device.open(stack)
            bridge = Bridge(ctx, self.device.supervisor)
        max_stall_s = self.cfg.source.max_stall_s
        if decodes:
            self.decoding.open(stack, on_decision=bridge.submit if bridge else None)
            self.watch = SourceWatch(ctx, "EEG stream", self.decoding.silent_for, max_stall_s)
        else:
            listener = DecisionsListener(ctx, bridge)
            listener.open(stack)
            self.watch = SourceWatch(ctx, "decisions stream", listener.silent_for, max_stall_s)
        if bridge is not None:
            bridge.start()
        if self.cfg.session.live_view:
            self._live = LiveView(self.out)
        if self.device is not None:
            stack.callback(self.device.close)
        stack.callback(self._stop_threads)

    def _open_log(self, stack: contextlib.ExitStack) -> None:
        self.ctx.log = SessionLog(self.folder / "session.jsonl")
        stack.callback(safe_close, self.ctx.log.close)
        self.files["log"] = self.ctx.log.path
        self.ctx.log_event("session_start", {"role": self.role, "config": self.cfg.to_dict()})

    def _main_loop(self) -> None:
        """Until asked to stop: cues, telemetry, the end of the source, the live view."""
        duration = self.cfg.session.duration_s or None
        start = time.monotonic()
        while not self.stop_event.is_set():
            self.view.elapsed_s = time.monotonic() - start
            if duration is not None and self.view.elapsed_s >= duration:
                self.request_stop("duration")
                break
            if self.decoding is not None:
                self.decoding.pull_cues()
            if self.device is not None:
                self.device.poll()
            self.watch.check()
            if self.decoding is not None and self.decoding.source_done():
                self.request_stop("end of source")
                break
            if self._live is not None:
                self._live.draw(self.view)
            self.stop_event.wait(0.1 if self._live is None or not self._live.tty else 0.2)
        if self._live is not None:
            self._live.draw(self.view)

    def _stop_threads(self) -> None:
        self.stop_event.set()
        self.ctx.workers.join()

    # ------------------------------------------------------------------ the end
    def _finish_files(self) -> None:
        decoding, device = self.decoding, self.device
        extra = {"stopped_by": self.stopped_by, "role": self.role}
        if device is not None and device.sim_url:
            extra["simulator"] = device.sim_url
        if decoding is not None and decoding.loop is not None:
            extra["loop_counts"] = dict(decoding.loop.counts)
        if decoding is not None and decoding.record_error:
            extra["recording_error"] = decoding.record_error
        if self.watch is not None:
            extra["stalls"] = self.watch.summary()
        if decoding is not None and decoding.recorder is not None:
            self.files["recording"] = self.folder / "recording.xdf"
        speed = float(self.cfg.source.speed) if self.source_player is not None else 1.0
        self.summary, written = session_files.write_results(
            self.folder, self.record, extra=extra, drove=device is not None, say=self.say,
            speed=speed)
        self.files.update(written)

    def report(self) -> str:
        """Summary text and the paths of the files written."""
        return session_files.report_text(self.stopped_by, self.summary, self.files)


def quiet_console(verbosity: int = 0) -> None:
    """Keep the terminal for the live view: liblsl's log to the ``bci`` logger, and (at verbosity 0)
    only errors from the package loggers (refusals and stops are in the view, the summary
    and the session log).
    """
    route_liblsl_log()
    if verbosity == 0:
        for name in ("bci", "devices", "calibration"):
            logging.getLogger(name).setLevel(logging.ERROR)


def run_session(config: SessionConfig, *, out: TextIO | None = None,
                stop_event: threading.Event | None = None) -> SessionResult:
    """Run a closed-loop session and print its report; return the result.

    Parameters
    ----------
    config : SessionConfig
        The settings.
    out : file-like, default=sys.stdout
        Where to print.
    stop_event : threading.Event | None
        Set to stop the session from another thread.

    Returns
    -------
    result : SessionResult
    """
    session = ClosedLoopSession(config, out=out, stop_event=stop_event)
    result = session.run()
    session.out.write(session.report() + "\n")
    session.out.flush()
    return result


__all__ = [
    "EXIT_CODES",
    "EXIT_FAILED_CHECK",
    "EXIT_OK",
    "EXIT_SIGINT",
    "EXIT_SIGTERM",
    "EXIT_USER_ERROR",
    "ClosedLoopSession",
    "SessionResult",
    "freq_label",
    "quiet_console",
    "run_session",
    "user_error_line",
]
