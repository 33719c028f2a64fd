"""The closed loop: EEG source -> EEGStream -> OnlineLoop -> SafetySupervisor -> driver.

:class:`ClosedLoopSession` wires the parts for one of three roles:

- ``"all"``: decode the EEG and drive the exoskeleton in one process;
- ``"decoder"``: decode and publish decisions on the LSL decisions stream, move nothing;
- ``"bridge"``: listen to a decisions stream and drive the exoskeleton through the safety
  supervisor (the decoder may run on another machine).

Every session writes a folder ``<output>/<YYYYmmdd-HHMMSS>-<role>/`` with the recording
(``recording.xdf``: EEG, cues and decisions), the log (``session.jsonl``: decisions and every
supervisor event), the summary (``summary.json``) and the plots (``scores.png``, ``path.png``).
On every exit path (end of the source, ``duration_s``, Ctrl-C, SIGTERM, an error) the
exoskeleton is sent STOP and the link is closed before the files are finished.

Exit codes (see :data:`EXIT_CODES`): 0 the session ended normally, 1 the session ran but
failed (the online loop failed; the demo's commands were not all executed), 2 a user error
(configuration, stream, port, profile), 130 stopped by SIGINT (Ctrl-C), 143 stopped by SIGTERM.
"""

from __future__ import annotations

import contextlib
import queue
import signal
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from bci._logging import logger
from bci.app.config import SessionConfig
from bci.app.live_view import LiveView, ViewState
from bci.app.record import SessionRecord
from bci.app.summary import format_summary, summarize, write_summary
from bci.labels import class_labels, freq_label, is_rest

EXIT_OK = 0
EXIT_FAILED_CHECK = 1
EXIT_USER_ERROR = 2
EXIT_SIGINT = 130
EXIT_SIGTERM = 143
EXIT_CODES = {
    EXIT_OK: "the session ended normally",
    EXIT_FAILED_CHECK: "the session ran but failed: the online loop failed, or (demo) a "
                       "scheduled command was not executed or a command happened during rest",
    EXIT_USER_ERROR: "user error (configuration, stream, serial port, profile); one line on stderr",
    EXIT_SIGINT: "stopped by SIGINT (Ctrl-C); exoskeleton stopped, files closed",
    EXIT_SIGTERM: "stopped by SIGTERM; exoskeleton stopped, files closed",
}

#: Bridge: no decision for this long means the decoder is gone -> STOP.
DECISIONS_TIMEOUT_S = 1.0


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
        ``"end of source"``, ``"duration"``, ``"SIGINT"``, ``"SIGTERM"``, ``"error"``.
    record : SessionRecord
    """

    exit_code: int
    folder: Path
    files: dict[str, Path] = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    stopped_by: str = ""
    record: SessionRecord | None = None


def _new_folder(output: str, role: str) -> Path:
    base = Path(output).expanduser()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for i in range(1000):
        folder = base / (f"{stamp}-{role}" + (f"-{i}" if i else ""))
        try:
            folder.mkdir(parents=True, exist_ok=False)
            return folder
        except FileExistsError:
            continue
        except OSError as exc:
            from bci.errors import BCIError

            raise BCIError(
                f"Cannot create the session folder in '{base}' ({exc.strerror}): choose a "
                "writable folder with --output."
            ) from None
    raise RuntimeError("could not create a unique session folder")


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
        Turn SIGINT/SIGTERM into an orderly stop (only from the main thread).

    Notes
    -----
    Use :meth:`run`; it returns a :class:`SessionResult` and never leaves the exoskeleton
    moving: on every exit path STOP is sent and the link closed before the files are closed.
    User errors raise :class:`bci.errors.BCIError` / :class:`devices.errors.DeviceError`.
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
        self.out = out if out is not None else sys.stdout
        self.stop_event = stop_event or threading.Event()
        self.install_signal_handlers = install_signal_handlers
        self.role = config.session.role
        self.menus = config.menus
        self.record = SessionRecord(menus=self.menus.to_dict())
        self.view = ViewState(role=self.role)
        self.stopped_by = ""
        self.files: dict[str, Path] = {}
        self.summary: dict = {}
        self.folder: Path | None = None
        self._queue: queue.Queue = queue.Queue()
        self._threads: list[threading.Thread] = []
        # parts (set while running)
        self.source_player = None
        self.stream = None
        self.markers = None
        self.recorder = None
        self.log = None
        self.outlet = None
        self.inlet = None
        self.loop = None
        self.simulator = None
        self.driver = None
        self.supervisor = None
        self.sim_url: str | None = None

    # ------------------------------------------------------------------ output
    def say(self, text: str) -> None:
        """Print a message line (above the live view)."""
        if self._live is not None:
            self._live.message(text)
        else:
            self.out.write(text + "\n")
            self.out.flush()

    _live: LiveView | None = None
    _driver_closed = False

    # ------------------------------------------------------------------ main
    def run(self) -> SessionResult:
        """Run until the source ends, ``duration_s`` passes, or a stop is requested."""
        cfg = self.cfg
        previous: dict[int, Any] = {}
        if self.install_signal_handlers and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, self._on_signal)
        self.folder = _new_folder(cfg.session.output, self.role)
        error: BaseException | None = None
        try:
            with contextlib.ExitStack() as stack:
                stack.callback(self._stop_threads)
                self._open_log(stack)
                if self.role in ("all", "decoder"):
                    self._setup_decoder()  # a bad profile fails before anything is opened
                if self.role in ("all", "bridge"):
                    self._open_device(stack)  # before decoding: STOP is sent on every exit
                if self.role in ("all", "decoder"):
                    self._open_signal_side(stack)
                else:
                    self._open_bridge_inlet(stack)
                if self.role in ("all", "bridge"):
                    t = threading.Thread(target=self._bridge_worker, name="bridge", daemon=True)
                    self._threads.append(t)
                    t.start()
                if cfg.session.live_view:
                    self._live = LiveView(self.out)
                # On the way out: threads first (no new command), then STOP + close the link,
                # then the streams and files (ExitStack runs callbacks last-in first-out).
                stack.callback(self._close_driver)
                stack.callback(self._stop_threads)
                self.record.t0 = _clock()
                self._main_loop()
        except BaseException as exc:  # noqa: BLE001 - record, clean up above, re-raise
            error = exc
            self.stopped_by = self.stopped_by or "error"
            raise
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.record.t_end = _clock()
            if self._live is not None:
                self._live.close()
                self._live = None
            if error is None or not _is_user_error(error):
                self._finish_files()
            else:
                self._remove_empty_folder()
        code = {"SIGINT": EXIT_SIGINT, "SIGTERM": EXIT_SIGTERM,
                "error": EXIT_FAILED_CHECK}.get(self.stopped_by, EXIT_OK)
        return SessionResult(
            exit_code=code, folder=self.folder, files=dict(self.files),
            summary=self.summary, stopped_by=self.stopped_by, record=self.record)

    def _on_signal(self, signum: int, frame: Any) -> None:
        name = "SIGINT" if signum == signal.SIGINT else "SIGTERM"
        if not self.stopped_by:
            self.stopped_by = name
        self.stop_event.set()

    def request_stop(self, why: str = "stop requested") -> None:
        """End the session (thread-safe)."""
        if not self.stopped_by:
            self.stopped_by = why
        self.stop_event.set()

    # ------------------------------------------------------------------ parts
    def _open_log(self, stack: contextlib.ExitStack) -> None:
        from bci.online import SessionLog

        self.log = SessionLog(self.folder / "session.jsonl")
        stack.callback(_safe_close, self.log.close)
        self.files["log"] = self.log.path
        self._log_event("session_start", {"role": self.role, "config": self.cfg.to_dict()})

    def _log_event(self, event: str, data: dict) -> None:
        if self.log is None:
            return
        try:
            self.log(event, data)
        except Exception:  # noqa: BLE001 - a failing disk must not stop the session
            logger.exception("Writing the session log failed")

    def _open_device(self, stack: contextlib.ExitStack) -> None:
        from bci.app import _parts

        cfg = self.cfg
        port = cfg.device.port
        if not port:
            self.simulator = _parts.start_simulator(cfg)
            stack.callback(_safe_close, self.simulator.stop)
            port = self.simulator.url
            self.sim_url = port
            self.say(f"No exoskeleton port given: using the simulated exoskeleton on {port}")
        self.driver = _parts.open_driver(port, cfg)
        stack.callback(self._close_driver)
        self.supervisor = _parts.make_supervisor(self.driver, cfg, self.menus,
                                                 log=self._supervisor_log)
        self._log_event("device_open", {"port": port, "simulated": self.simulator is not None})

    def _close_driver(self) -> None:
        """STOP, then close the link (best effort, bounded time; idempotent)."""
        from bci.app import _parts

        if self.driver is None or self._driver_closed:
            return
        self._driver_closed = True
        _parts.stop_and_close(self.driver, self.supervisor, log=self._log_event)
        self._log_event("device_closed", {})

    def _setup_decoder(self) -> None:
        from bci.app import _parts

        self.setup = _parts.build_decoder(self.cfg)
        if self.setup.menus:
            self.menus = _parts.profile_menus(self.setup, self.cfg)
            self.record.menus = self.menus.to_dict()

    def _open_signal_side(self, stack: contextlib.ExitStack) -> None:
        from bci.app import _parts

        cfg = self.cfg
        name, source_id = cfg.source.stream_name, cfg.source.source_id
        if cfg.source.kind in ("synthetic", "replay"):
            uid = uuid.uuid4().hex[:8]
            name = name or f"ssvep-exo-{cfg.source.kind}-{uid}"
            source_id = source_id or name
            self.source_player = _parts.open_player(cfg, name=name, source_id=source_id)
            stack.callback(_safe_close, self.source_player.close)
            self.say(f"Publishing {cfg.source.kind} EEG on LSL as {name!r} "
                     f"(source id {source_id!r}, speed x{cfg.source.speed:g})")
        setup = self.setup
        decoder, policy, window_s = setup.decoder, setup.policy, setup.window_s
        step_s = setup.step_s
        if setup.profile is not None:
            self.say(f"Decoder: subject profile {cfg.decoder.profile} ({setup.profile.method}, "
                     f"{setup.window_s:g} s windows, a decision every {step_s:g} s)")
            for note in setup.notes:
                self.say(f"Warning: {note}")
                self._log_event("profile_override", {"note": note})
        else:
            self.say(f"Decoder: training-free {cfg.decoder.method} on "
                     f"{', '.join(freq_label(f) for f in cfg.decoder.freqs)} "
                     f"({setup.window_s:g} s windows)")
        self.stream = _parts.open_stream(cfg, name=name, source_id=source_id,
                                         channels=setup.channels, profile=setup.profile)
        stack.callback(_safe_close, self.stream.disconnect)
        _parts.prepare_decoder(setup, self.stream)
        self.say(f"EEG stream: {len(self.stream.ch_names)} channels at {self.stream.sfreq:g} Hz "
                 f"({', '.join(self.stream.ch_names)})")
        self.view.ch_names = list(self.stream.ch_names)
        self.markers = _parts.open_markers(cfg, name=name, source_id=source_id,
                                           expect=self.source_player is not None)
        if self.markers is not None:
            stack.callback(_safe_close, self.markers.disconnect)
        self.recorder = _parts.open_recorder(self.folder / "recording.xdf", self.stream,
                                             on_error=self._on_record_error)
        if self.recorder is not None:
            stack.callback(_safe_close, self.recorder.close)
            self.files["recording"] = self.folder / "recording.xdf"
        if self.source_player is not None:
            self.source_player.start()
        _parts.wait_for_data(self.stream, window_s, cfg.source.timeout_s + window_s,
                             self.stop_event)
        from bci.online import DecisionsOutlet, OnlineLoop

        classes = class_labels(decoder.classes_)
        self.record.classes = list(classes)
        self.view.classes = list(classes)
        self.view.threshold = float(policy.threshold)
        self.view.rule = (
            f"a target's evidence over the best other class must add up to "
            f"{policy.threshold:.3g} within {policy.horizon_s:g} s"
            + ("; the decoder's 'rest' class means no control"
               if any(is_rest(c) for c in classes) else ""))
        self.outlet = DecisionsOutlet(
            cfg.lsl.decisions_stream, source_id=cfg.lsl.decisions_source_id or None,
            classes=classes, meta={"window_s": window_s, "step_s": step_s, "role": self.role})
        stack.callback(_safe_close, self.outlet.close)
        self.loop = OnlineLoop(
            self.stream, decoder, policy, window_s=window_s, step_s=step_s,
            on_decision=self._on_decision, outlet=self.outlet, log=self.log,
            max_lag_s=max(0.5, 2 * step_s))
        self.window_s = window_s
        t = threading.Thread(target=self._run_loop, name="online-loop", daemon=True)
        self._threads.append(t)
        t.start()

    window_s: float = 1.0

    def _on_record_error(self, exc: BaseException) -> None:
        self.say(f"Recording to {self.folder / 'recording.xdf'} failed ({exc}); the session "
                 "goes on without it.")
        self._log_event("recording_failed", {"error": repr(exc)})
        self.record_error = repr(exc)

    record_error: str | None = None

    def _run_loop(self) -> None:
        try:
            self.loop.run(self.stop_event)
        except Exception:  # noqa: BLE001 - the session must end safely
            logger.exception("The online loop failed")
            self.say("The online loop failed (see the log); stopping the exoskeleton.")
            self.request_stop("error")

    def _open_bridge_inlet(self, stack: contextlib.ExitStack) -> None:
        from bci.online import DecisionsInlet

        cfg = self.cfg
        self.inlet = DecisionsInlet(cfg.lsl.decisions_stream,
                                    source_id=cfg.lsl.decisions_source_id or None,
                                    timeout=cfg.source.timeout_s)
        stack.callback(_safe_close, self.inlet.close)
        self.say(f"Listening to decisions stream {cfg.lsl.decisions_stream!r}")
        t = threading.Thread(target=self._pull_decisions, name="decisions-inlet", daemon=True)
        self._threads.append(t)
        t.start()

    def _pull_decisions(self) -> None:
        last = time.monotonic()
        stalled = False
        while not self.stop_event.is_set():
            try:
                decisions = self.inlet.pull(timeout=0.1)
            except Exception:  # noqa: BLE001
                logger.exception("Reading the decisions stream failed")
                decisions = []
            for d in decisions:
                self.record.add_decision(d)
                self._update_view_from_decision(d)
                self._queue.put(d)
            now = time.monotonic()
            if decisions:
                last = now
                stalled = False
            elif not stalled and now - last > DECISIONS_TIMEOUT_S:
                stalled = True
                self._queue.put("decisions_stalled")

    # ------------------------------------------------------------------ decisions
    def _on_decision(self, d) -> None:
        """Called by the online loop's thread for every decision."""
        self.record.add_decision(d)
        self._update_view_from_decision(d)
        if self.recorder is not None:
            with contextlib.suppress(Exception):
                self.recorder.push_decision(d)
        if self.supervisor is not None:
            self._queue.put(d)

    def _update_view_from_decision(self, d) -> None:
        v = self.view
        if d.classes and not v.classes:
            v.classes = list(d.classes)
        if d.scores:
            v.scores = list(d.scores)
        v.evidence = float(getattr(d, "evidence", 0.0))
        v.n_decisions += 1
        v.latency_ms = 1000.0 * d.latency_s
        bad = {}
        for ch in d.health.flat_channels:
            bad[ch] = "flat"
        for ch in d.health.clipped_channels:
            bad[ch] = "clipped"
        for ch in d.health.nan_channels:
            bad[ch] = "NaN"
        v.bad_channels = bad
        v.stream_status = "stalled" if d.health.stalled else (
            "ok" if d.health.ok else "bad signal")
        if d.outcome is not None and not is_rest(d.outcome):
            v.decision = f"{d.outcome} selected"
        else:
            top = f" (top: {d.winner})" if d.winner else ""
            v.decision = f"no control: {d.reason}{top}"

    def _bridge_worker(self) -> None:
        """Apply decisions to the supervisor, in order, off the decoding thread."""
        from bci.app import _parts

        while not self.stop_event.is_set() or not self._queue.empty():
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            try:
                if item == "decisions_stalled":
                    self._log_event("decisions_stalled", {})
                    _parts.on_stall(self.supervisor, "decisions stream silent")
                    continue
                res = _parts.apply_decision(self.supervisor, item, menus=self.menus,
                                            driver=self.driver)
                if res is not None:
                    self._on_command(item, res)
            except Exception:  # noqa: BLE001 - keep the bridge alive; the driver stops on loss
                logger.exception("The safety supervisor failed on a decision")

    def _on_command(self, d, res: dict) -> None:
        """Record one selection's outcome (``res`` from :func:`_parts.apply_decision`)."""
        t = _clock()
        self.record.add_event(t, "command", res)
        cmd, result = res.get("command"), res.get("result")
        reason = res.get("reason") or ""
        text = f"{d.outcome} -> {cmd or 'nothing'}: {result}" + (f" - {reason}" if reason
                                                                   else "")
        self.view.last_command = text
        self._log_event("command", res)

    def _supervisor_log(self, event: str, data: dict) -> None:
        """The supervisor's log callback: session log + record."""
        data = dict(data or {})
        self._log_event(f"supervisor.{event}", data)
        self.record.add_event(_clock(), f"supervisor.{event}", data)
        from bci.app import _parts

        stop_reason = _parts.safety_stop_reason(event, data)
        if stop_reason and stop_reason != _parts.FINAL_STOP_REASON:
            self.record.add_event(_clock(), "safety_stop", {"reason": stop_reason})

    # ------------------------------------------------------------------ main loop
    def _main_loop(self) -> None:
        from bci.app import _parts

        cfg = self.cfg
        duration = cfg.session.duration_s or None
        start = time.monotonic()
        finished_at: float | None = None
        while not self.stop_event.is_set():
            now = time.monotonic()
            self.view.elapsed_s = now - start
            if duration is not None and now - start >= duration:
                self.request_stop("duration")
                break
            if self.markers is not None:
                for t, label in _parts.pull_markers(self.markers):
                    self.record.add_cue(t, label)
                    if self.recorder is not None:
                        with contextlib.suppress(Exception):
                            self.recorder.push_marker(t, label)
            if self.driver is not None:
                tel = _parts.telemetry(self.driver)
                if tel is not None:
                    self.record.add_pose(_clock(), tel["x"], tel["y"], tel["heading"],
                                         tel["state"])
                    self.view.posture = tel["state"]
                    self.view.pose = (tel["x"], tel["y"], tel["heading"])
                    self.view.menu = self.menus.menu(tel["state"])
                    self.view.menu_line = self.menus.describe(tel["state"])
                self.view.last_ack = _parts.last_ack(self.driver)
            if self.source_player is not None and finished_at is None \
                    and _parts.player_finished(self.source_player):
                finished_at = now
            if finished_at is not None and now - finished_at > 0.5:
                self.request_stop("end of source")
                break
            if self._live is not None:
                self._live.draw(self.view)
            self.stop_event.wait(0.1 if self._live is None or not self._live.tty else 0.2)
        if self._live is not None:
            self._live.draw(self.view)

    def _stop_threads(self) -> None:
        self.stop_event.set()
        for t in self._threads:
            t.join(timeout=3.0)
            if t.is_alive():
                logger.warning("Thread %s did not stop in time", t.name)

    # ------------------------------------------------------------------ end
    def _finish_files(self) -> None:
        self.summary = summarize(self.record)
        self.summary["stopped_by"] = self.stopped_by
        self.summary["role"] = self.role
        if self.sim_url:
            self.summary["simulator"] = self.sim_url
        if self.loop is not None:
            self.summary["loop_counts"] = dict(self.loop.counts)
        if self.record_error:
            self.summary["recording_error"] = self.record_error
        try:
            self.files["summary"] = write_summary(self.summary, self.folder / "summary.json")
        except OSError as exc:
            self.say(f"Could not write the summary: {exc}")
        try:
            from bci.app.session_plots import plot_path, plot_scores

            if self.role in ("all", "decoder", "bridge") and self.record.decisions:
                self.files["scores_plot"] = plot_scores(self.record, self.folder / "scores.png")
            if self.role in ("all", "bridge"):
                self.files["path_plot"] = plot_path(self.record, self.folder / "path.png")
        except Exception as exc:  # noqa: BLE001 - plots are a convenience
            logger.exception("Plotting failed")
            self.say(f"Could not draw the plots: {exc}")

    def _remove_empty_folder(self) -> None:
        """After a user error before anything ran, leave no half-empty session folder."""
        import shutil

        if self.folder is not None and not self.record.decisions and \
                {p.name for p in self.folder.iterdir()} <= {"session.jsonl"}:
            shutil.rmtree(self.folder, ignore_errors=True)

    def report(self) -> str:
        """Summary text and the paths of the files written."""
        lines = ["", f"Session ended ({self.stopped_by or 'end'}).", format_summary(self.summary),
                 "Files written:"]
        names = {"recording": "recording", "log": "session log", "summary": "summary",
                 "scores_plot": "scores plot (PNG)", "path_plot": "path plot (PNG)"}
        for key, label in names.items():
            if key in self.files and Path(self.files[key]).exists():
                lines.append(f"  {label:<18} {self.files[key]}")
        return "\n".join(lines)


def quiet_console(verbosity: int = 0) -> None:
    """Keep the terminal for the live view: liblsl's INFO lines off, and (at verbosity 0)
    only errors from the package loggers (refusals and stops are in the view, the summary
    and the session log).
    """
    import logging

    from bci._logging import quiet_liblsl

    quiet_liblsl()
    if verbosity == 0:
        for name in ("bci", "devices", "calibration"):
            logging.getLogger(name).setLevel(logging.ERROR)


def _safe_close(close) -> None:
    """Call a closer; an error (e.g. a full disk while flushing) is logged, never raised,
    so that every other part is still closed."""
    try:
        close()
    except Exception:  # noqa: BLE001
        logger.exception("Closing %r failed", getattr(close, "__qualname__", close))


def user_error_line(command: str, exc: BaseException) -> str:
    """The one line printed for a user error: ``ssvep-exo <command>: error: <message>``.

    Multi-line messages (e.g. the list of streams seen) are joined into one line.
    """
    from bci.cli import one_line

    return f"ssvep-exo {command}: error: {one_line(exc)}"


def _clock() -> float:
    import pylsl

    return pylsl.local_clock()


def _is_user_error(exc: BaseException) -> bool:
    from bci.errors import BCIError
    from devices.errors import DeviceError

    return isinstance(exc, (BCIError, DeviceError))


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
    (out or sys.stdout).write(session.report() + "\n")
    (out or sys.stdout).flush()
    return result


__all__ = ["EXIT_CODES", "ClosedLoopSession", "SessionResult", "freq_label", "run_session"]
