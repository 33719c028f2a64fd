"""The EEG side of a session: source, stream, recording, online loop, decisions outlet.

:class:`DecodingSide` is built before anything is opened (a bad profile or decoder setting
fails first, see :func:`bci.app._parts.build_decoder`); :meth:`DecodingSide.open` then
publishes the synthetic or replayed source, connects the EEG stream, checks the decoder
against it, starts the XDF recording and the online loop. Each decision goes to the record,
the view, the recording, the LSL decisions outlet and, when the session drives the
exoskeleton, to the :class:`~bci.app.bridge.Bridge`.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable

from bci._logging import report_thread_error
from bci.acquisition import SearchStopped
from bci.app import _parts
from bci.app.context import SessionContext, safe_close
from bci.decoders.population import PopulationRessFBCCA
from bci.errors import StreamError
from bci.labels import class_labels, freq_label, is_rest
from bci.online import DecisionsOutlet, OnlineLoop


class DecodingSide:
    """EEG in, decisions out (roles ``"all"`` and ``"decoder"``).

    Parameters
    ----------
    ctx : SessionContext

    Attributes
    ----------
    setup : bci.app._parts.DecoderSetup
        Decoder, policy, window, step, channels, menus (from the profile or the settings).
    source_player : SyntheticEEG | RecordingPlayer | None
        The source this session publishes (synthetic or replay), else None.
    stream : bci.acquisition.EEGStream | None
    markers : bci.acquisition.MarkerStream | None
        The source's cue markers, where there are some.
    recorder : bci.recording.SessionRecorder | None
    outlet : bci.online.DecisionsOutlet | None
    loop : bci.online.OnlineLoop | None
    record_error : str | None
        Why the recording stopped, if it failed (the session goes on without it).
    """

    def __init__(self, ctx: SessionContext) -> None:
        self.ctx = ctx
        self.setup = _parts.build_decoder(ctx.cfg)
        if self.setup.profile is not None:
            ctx.use_menus(_parts.profile_menus(self.setup, ctx.cfg))
        self.source_player = None
        self.stream = None
        self.markers = None
        self.recorder = None
        self.outlet = None
        self.loop = None
        self.record_error: str | None = None
        self._on_decision: Callable | None = None
        self._finished_at: float | None = None

    @property
    def window_s(self) -> float:
        """Length of the decoded windows (s)."""
        return float(self.setup.window_s)

    def open(self, stack: contextlib.ExitStack, *, on_decision: Callable | None = None) -> None:
        """Open every part and start decoding; ``on_decision(d)`` also gets each decision.

        When the session is asked to stop while the EEG stream is looked for, nothing more
        is opened (no stream, recording or loop).
        """
        self._on_decision = on_decision
        name, source_id = self._publish_source(stack)
        self._describe_decoder()
        try:
            self._connect_stream(stack, name, source_id)
        except SearchStopped:  # a signal while looking: the session ends as in any phase
            self.ctx.say("Stopped while looking for the EEG stream.")
            return
        self._start_recording(stack)
        if self.source_player is not None:
            self.source_player.start()
        cfg = self.ctx.cfg
        _parts.wait_for_data(self.stream, self.window_s, cfg.source.timeout_s + self.window_s,
                             self.ctx.stop_event)
        self._start_loop(stack)

    # ------------------------------------------------------------------ steps of open()
    def _publish_source(self, stack: contextlib.ExitStack) -> tuple[str, str]:
        """Publish the synthetic or replayed EEG (not started yet); return its name, id."""
        cfg = self.ctx.cfg
        name, source_id = cfg.source.stream_name, cfg.source.source_id
        if cfg.source.kind in ("synthetic", "replay"):
            name = name or f"ssvep-exo-{cfg.source.kind}-{uuid.uuid4().hex[:8]}"
            source_id = source_id or name
            self.source_player = _parts.open_player(cfg, name=name, source_id=source_id)
            stack.callback(safe_close, self.source_player.close)
            self.ctx.say(f"Publishing {cfg.source.kind} EEG on LSL as {name!r} "
                         f"(source id {source_id!r}, speed x{cfg.source.speed:g})")
        return name, source_id

    def _describe_decoder(self) -> None:
        cfg, setup, ctx = self.ctx.cfg, self.setup, self.ctx
        if setup.profile is not None:
            ctx.say(f"Decoder: subject profile {cfg.decoder.profile} ({setup.profile.method}, "
                    f"{setup.window_s:g} s windows, a decision every {setup.step_s:g} s)")
            for note in setup.notes:
                ctx.say(f"Warning: {note}")
                ctx.log_event("profile_override", {"note": note})
        else:
            what = ("population RESS-FBCCA without calibration (rest class included)"
                    if isinstance(setup.decoder, PopulationRessFBCCA)
                    else f"training-free {cfg.decoder.method}")
            ctx.say(f"Decoder: {what} on "
                    f"{', '.join(freq_label(f) for f in cfg.decoder.freqs)} "
                    f"({setup.window_s:g} s windows)" + (f": {setup.why}" if setup.why else ""))
            for note in setup.notes:
                ctx.say(f"Warning: {note}")

    def _connect_stream(self, stack: contextlib.ExitStack, name: str, source_id: str) -> None:
        """Connect the EEG stream, fit or check the decoder on it, connect the cue markers."""
        cfg, ctx = self.ctx.cfg, self.ctx
        if self.source_player is None:  # a live headset may take a while to appear
            pins = [f"{what} {value!r}" for what, value in (
                ("name", name), ("type", cfg.source.stream_type), ("source id", source_id),
                ("host", cfg.source.host)) if value]
            ctx.say(f"Looking for the EEG stream ({', '.join(pins) or 'any'}; up to "
                    f"{cfg.source.timeout_s:g} s)")
        try:
            self.stream = _parts.open_stream(cfg, name=name, source_id=source_id,
                                             channels=self.setup.channels,
                                             profile=self.setup.profile,
                                             stop_event=ctx.stop_event)
        except StreamError as exc:
            if not isinstance(self.setup.decoder, PopulationRessFBCCA):
                raise
            # the stream does not offer the population prior's channels: training-free
            self.setup = _parts.training_free_setup(
                cfg, f"the stream does not offer the population prior's channels ({exc})")
            self._describe_decoder()
            self.stream = _parts.open_stream(cfg, name=name, source_id=source_id,
                                             channels=self.setup.channels,
                                             profile=self.setup.profile,
                                             stop_event=ctx.stop_event)
        stack.callback(safe_close, self.stream.disconnect)
        _parts.prepare_decoder(self.setup, self.stream)
        ch_names = list(self.stream.ch_names)
        ctx.say(f"EEG stream: {len(ch_names)} channels at {self.stream.sfreq:g} Hz "
                f"({', '.join(ch_names)})")
        ctx.view.ch_names = ch_names
        self.markers = _parts.open_markers(cfg, name=name, source_id=source_id,
                                           expect=self.source_player is not None)
        if self.markers is not None:
            stack.callback(safe_close, self.markers.disconnect)

    def _start_recording(self, stack: contextlib.ExitStack) -> None:
        path = self.ctx.folder / "recording.xdf"
        self.recorder = _parts.open_recorder(path, self.stream, on_error=self._on_record_error)
        if self.recorder is not None:
            stack.callback(safe_close, self.recorder.close)

    def _start_loop(self, stack: contextlib.ExitStack) -> None:
        """Open the decisions outlet, show the policy's rule, start the online loop.

        A synthetic or replayed source run at ``source.speed`` gets the policy and the step
        scaled to its clock (:func:`bci.app._parts.at_source_speed`), said once.
        """
        cfg, ctx, setup = self.ctx.cfg, self.ctx, self.setup
        policy = setup.policy  # in seconds of signal, as calibrated
        speed = float(cfg.source.speed) if self.source_player is not None else 1.0
        timing = _parts.at_source_speed(policy, setup.step_s, speed)
        if timing.note:
            ctx.say(timing.note)
            ctx.log_event("source_speed", {"speed": speed, "step_s": timing.step_s,
                                           "policy": timing.policy.to_dict()})
        classes = class_labels(setup.decoder.classes_)
        ctx.record.classes = list(classes)
        ctx.view.classes = list(classes)
        ctx.view.threshold = float(policy.threshold)
        ctx.view.rule = (
            f"a target's evidence over the best other class must add up to "
            f"{policy.threshold:.3g} within {policy.horizon_s:g} s"
            + (" of signal" if timing.note else "")
            + ("; the decoder's 'rest' class means no control"
               if any(is_rest(c) for c in classes) else ""))
        self.outlet = DecisionsOutlet(
            cfg.lsl.decisions_stream, source_id=cfg.lsl.decisions_source_id or None,
            classes=classes, meta={"window_s": setup.window_s, "step_s": timing.step_s,
                                   "role": cfg.session.role})
        stack.callback(safe_close, self.outlet.close)
        self.loop = OnlineLoop(
            self.stream, setup.decoder, timing.policy, window_s=setup.window_s,
            step_s=timing.step_s, on_decision=self._decided, outlet=self.outlet, log=ctx.log,
            max_lag_s=max(0.5, 2 * timing.step_s))
        ctx.workers.start("online-loop", self._run_loop)

    # ------------------------------------------------------------------ while running
    def _run_loop(self) -> None:
        try:
            self.loop.run(self.ctx.stop_event)
        except Exception:  # noqa: BLE001 - the session must end safely
            report_thread_error("The online loop failed")
            self.ctx.say("The online loop failed (see the log); stopping the exoskeleton.")
            self.ctx.request_stop("error")

    def _decided(self, d) -> None:
        """Called by the online loop's thread for every decision."""
        self.ctx.record.add_decision(d)
        self.ctx.view.show_decision(d)
        if self.recorder is not None:
            with contextlib.suppress(Exception):
                self.recorder.push_decision(d)
        if self._on_decision is not None:
            self._on_decision(d)

    def _on_record_error(self, exc: BaseException) -> None:
        self.ctx.say(f"Recording to {self.ctx.folder / 'recording.xdf'} failed ({exc}); the "
                     "session goes on without it.")
        self.ctx.log_event("recording_failed", {"error": repr(exc)})
        self.record_error = repr(exc)

    def pull_cues(self) -> None:
        """Copy the source's new cues to the record and the recording."""
        if self.markers is None:
            return
        for t, label in _parts.pull_markers(self.markers):
            self.ctx.record.add_cue(t, label)
            if self.recorder is not None:
                with contextlib.suppress(Exception):
                    self.recorder.push_marker(t, label)

    def silent_for(self) -> float | None:
        """Seconds without EEG while the stream is stalled or lost, else None (None too once
        the session's own source has published its last sample: that is its end)."""
        if self.stream is None or not self.stream.blind:
            return None
        if self.source_player is not None and _parts.player_finished(self.source_player):
            return None
        return float(self.stream.seconds_since_last_sample)

    def source_done(self, linger_s: float = 0.5) -> bool:
        """True ``linger_s`` after the session's own source published its last sample (the
        last windows are decoded meanwhile); always False for a live headset."""
        if self.source_player is None:
            return False
        now = time.monotonic()
        if self._finished_at is None and _parts.player_finished(self.source_player):
            self._finished_at = now
        return self._finished_at is not None and now - self._finished_at > linger_s
