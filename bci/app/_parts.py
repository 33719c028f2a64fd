"""Adapters between the closed loop and the parts it wires (sources, stream, decoder, device).

Each function builds or talks to one part from the session configuration, so that
:mod:`bci.app.closed_loop` reads as the wiring diagram and the parts' own APIs stay in one
place.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bci._logging import logger
from bci.acquisition import EEGStream
from bci.acquisition._metadata import channel_labels
from bci.acquisition.markers import find_cue_stream
from bci.app.config import MIN_STEP_S, SessionConfig
from bci.app.menus import CommandMenus, select, supervisor_mapping
from bci.decoders import make_decoder
from bci.decoders.population import NO_CALIBRATION, PopulationRessFBCCA, no_calibration_prior
from bci.errors import BCIError, ConfigError, StreamError
from bci.labels import REST_LABEL, class_labels, freq_label, is_rest, normalize_label
from bci.online import DecisionPolicy
from bci.recording import SessionRecorder
from bci.sources import RecordingPlayer, SyntheticEEG
from calibration.profile import SubjectProfile
from devices.exoskeleton import ExoskeletonDriver
from devices.safety import SafetySupervisor
from devices.simulator import ExoSimulator

# ---------------------------------------------------------------------- signal side


def open_player(cfg: SessionConfig, *, name: str, source_id: str):
    """Open (not start) the synthetic source or the file replay on LSL; return it.

    The outlets exist after this, so the inlets can connect before the first sample and
    the first cue are published; call ``start()`` then.
    """

    src = cfg.source
    if src.kind == "synthetic":
        try:
            player = SyntheticEEG(src.schedule, name=name, source_id=source_id, speed=src.speed,
                                  snr=src.snr, seed=src.seed)
        except ValueError as exc:
            raise ConfigError(f"{cfg.origin}: 'source.schedule' is invalid: {exc}") from None
    else:
        if not src.replay_file:
            raise ConfigError("source.kind is 'replay' but no file is given: pass --replay FILE.")
        player = RecordingPlayer(src.replay_file, name=name, source_id=source_id,
                                 speed=src.speed)
    player.open()
    return player


def player_finished(player) -> bool:
    """True once the source has published its last sample."""
    ev = getattr(player, "finished", None)
    return bool(ev is not None and ev.is_set())


def open_stream(cfg: SessionConfig, *, name: str, source_id: str, channels, profile=None,
                stop_event=None):
    """Find and connect the EEG stream (pinned by source id and host when given).

    With a subject ``profile`` the stream is checked against it
    (:meth:`~calibration.profile.SubjectProfile.check_compatible`): missing channels or
    another sampling rate raise :class:`calibration.errors.ProfileError`. Setting
    ``stop_event`` ends the search (:class:`bci.acquisition.SearchStopped`).
    """

    src = cfg.source

    def connect(picks):
        return EEGStream(
            name=name or None, stype=src.stream_type or None, source_id=source_id or None,
            hostname=src.host or None, channels=list(picks) if picks else None,
            stall_timeout=src.stall_timeout_s,
        ).connect(timeout=src.timeout_s, stop_event=stop_event)

    try:
        stream = connect(channels)
    except StreamError:
        if profile is None:
            raise
        _check_profile_on_stream(profile, connect)  # a ProfileError when it does not fit
        raise
    return stream  # prepare_decoder checks the sampling rate against the profile


def _check_profile_on_stream(profile, connect) -> None:
    """The profile's channels could not be selected: check it against all the channels."""

    try:
        whole = connect(None)
    except BCIError:
        return  # the stream itself is the problem: keep the original error
    try:
        if any(lab is not None for lab in channel_labels(whole.info)):
            profile.check_compatible(whole.ch_names, whole.sfreq)
    finally:
        whole.disconnect()


#: Seconds of EEG judged by the unit plausibility check before the loop starts.
UNIT_CHECK_S = 2.0


def wait_for_data(stream, window_s: float, timeout: float, stop_event) -> None:
    """Wait until the stream holds a full window (StreamError after ``timeout`` s).

    When the stream declares no unit for some channels, the first :data:`UNIT_CHECK_S`
    seconds are checked against the assumed microvolts
    (:meth:`~bci.acquisition.EEGStream.check_amplitude`: a StreamError when implausible).
    """

    n = int(round(window_s * float(stream.sfreq)))
    if stream.assumed_unit_channels:
        n = max(n, int(round(UNIT_CHECK_S * float(stream.sfreq))))
    deadline = time.monotonic() + timeout
    while stream.n_buffered < n:
        if stop_event.is_set():
            return
        if time.monotonic() > deadline:
            raise StreamError(
                f"The EEG stream was found but delivered {stream.n_buffered} of the {n} "
                f"samples of one window in {timeout:g} s: check that the headset is streaming.")
        stop_event.wait(0.05)
    stream.check_amplitude(UNIT_CHECK_S)


def open_markers(cfg: SessionConfig, *, name: str, source_id: str, expect: bool):
    """Connect the source's cue stream if there is one, else None.

    ``<name>-markers`` (string markers) or mne-lsl's ``<name>-annotations``
    (:func:`bci.acquisition.markers.find_cue_stream`). Cues are used for the summary and the
    plots only; a live headset usually has none.
    """

    if not name:
        return None
    try:
        return find_cue_stream(name, hostname=cfg.source.host or None,
                               timeout=2.0 if expect else 1.0)
    except BCIError:
        if expect:
            logger.warning("No cue marker stream %r found", f"{name}-markers")
        return None


def pull_markers(markers) -> list[tuple[float, str]]:
    """New cues as ``(lsl_time, label)``."""
    try:
        return [(float(t), str(m)) for t, m in markers.pull()]
    except Exception:  # noqa: BLE001 - cues are for scoring only
        logger.exception("Reading the marker stream failed")
        return []


def open_recorder(path, stream, *, on_error=None):
    """Start the crash-safe XDF recording of EEG, cues and decisions.

    A write error (disk full) is reported through ``on_error`` and ends the recording only.
    """

    return SessionRecorder(path, stream=stream, on_error=on_error).start()


@dataclass
class DecoderSetup:
    """The decoding side of a session.

    Attributes
    ----------
    decoder : estimator
    policy : DecisionPolicy
    window_s : float
    channels : list of str
        Channels to select from the stream (empty: all).
    menus : dict | None
        Posture -> {target: command} from the profile (None: the configuration's).
    profile : SubjectProfile | None
    needs_fit : bool
        A training-free decoder still to be fitted for the stream's rate and channels.
    step_s : float
        Time between two decisions (the profile's calibrated step unless set explicitly).
    notes : list of str
        Warnings for the user (settings that override the profile's).
    """

    decoder: Any
    policy: Any
    window_s: float
    channels: list
    menus: dict | None = None
    profile: Any = None
    needs_fit: bool = False
    step_s: float = 0.1
    notes: list = field(default_factory=list)
    why: str = ""


def build_decoder(cfg: SessionConfig) -> DecoderSetup:
    """Return the :class:`DecoderSetup` of the session.

    With ``decoder.profile`` the subject profile gives the decoder, the decision policy
    (:meth:`~calibration.profile.SubjectProfile.build_policy`), the window, the step its
    threshold was calibrated for, the channels and the menus. Settings given explicitly
    (file or command line) win over the profile: ``decoder.window_s``, ``decoder.step_s`` and
    ``[menu.*]``; a window or step other than the profile's is noted (``notes``) and logged
    as a warning, because the thresholds were calibrated for the profile's. Otherwise, when
    ``decoder.method`` and ``decoder.params`` are not set and the lights are the population
    prior's, the population decoder (:func:`_population_setup`; a stream without its
    channels falls back to the training-free decoder when connected); else a training-free
    decoder (``decoder.method``, FBCCA by default) on ``decoder.freqs`` with the
    ``[policy]`` settings.
    """
    dec_cfg = cfg.decoder
    if dec_cfg.profile:
        return _profile_setup(cfg)
    why = ""
    if not (cfg.is_explicit("decoder.method") or dec_cfg.params):
        setup, why = _population_setup(cfg)
        if setup is not None:
            return setup
    return training_free_setup(cfg, why)


def training_free_setup(cfg: SessionConfig, why: str = "") -> DecoderSetup:
    """The training-free ``decoder.method`` on ``decoder.freqs`` with the ``[policy]``
    settings (``why``: the reason for the session's decoder line)."""
    dec_cfg = cfg.decoder

    window_s = float(dec_cfg.window_s)
    freqs = [float(f) for f in dec_cfg.freqs]
    try:
        decoder = make_decoder(dec_cfg.method, sfreq=256.0, freqs=freqs, **dec_cfg.params)
    except (TypeError, ValueError) as exc:  # e.g. a parameter the method does not take
        raise ConfigError(
            f"{cfg.origin}: decoder.params {dict(dec_cfg.params)!r} are not accepted by "
            f"decoder.method {dec_cfg.method!r} ({exc}); see docs/configuration.md."
        ) from None
    classes = [freq_label(f) for f in freqs]
    policy = make_policy(cfg, classes)
    return DecoderSetup(decoder, policy, window_s, list(dec_cfg.channels), needs_fit=True,
                        step_s=float(dec_cfg.step_s), why=why)


def _population_setup(cfg: SessionConfig) -> tuple[DecoderSetup | None, str]:
    """The population decoder with no calibration (rest class included,
    :data:`bci.decoders.population.NO_CALIBRATION`) when the lights fit its prior, else None
    (the training-free ``decoder.method``); and why (for the session's decoder line)."""
    dec_cfg = cfg.decoder
    freqs = [float(f) for f in dec_cfg.freqs]
    meta, why = no_calibration_prior(freqs, list(dec_cfg.channels))
    if meta is None:
        return None, why
    window_s = float(NO_CALIBRATION["window_s"])
    notes = []
    if cfg.is_explicit("decoder.window_s") and \
            not math.isclose(float(dec_cfg.window_s), window_s, rel_tol=1e-6):
        notes.append(f"decoder.window_s = {float(dec_cfg.window_s):g} s is ignored: the "
                     f"population decoder decodes {window_s:g} s windows (set decoder.method "
                     "to use a training-free decoder with other windows)")
    decoder = PopulationRessFBCCA(prior=NO_CALIBRATION["prior"], freqs=freqs,
                                  sfreq=float(meta["sfreq"]))
    # the decoder's classes (its score columns) are the prior's
    policy = DecisionPolicy(class_labels(meta["classes"]), **NO_CALIBRATION["policy"])
    why = (f"{why}; its channels {', '.join(meta['ch_names'])}; set decoder.method (e.g. "
           "fbcca) for a training-free decoder")
    return DecoderSetup(decoder, policy, window_s, list(meta["ch_names"]), needs_fit=True,
                        step_s=float(dec_cfg.step_s), notes=notes, why=why), why


def from_profile(profile) -> tuple[Any, Any, float, float | None, list[str]]:
    """What a subject profile gives the online loop: ``(decoder, policy, window_s,
    step_s, channels)`` (``step_s`` None for profiles made without a recorded step).

    ``ssvep-exo run`` and the pseudo-online evaluation (:mod:`bci.app.online_eval`) both
    build the loop from here.
    """
    cal_step = profile.extra.get("step_s") if isinstance(profile.extra, dict) else None
    if isinstance(cal_step, bool) or not isinstance(cal_step, (int, float)) or \
            not (math.isfinite(cal_step) and cal_step > 0):
        cal_step = None
    return (profile.build_decoder(), profile.build_policy(), float(profile.window_s),
            None if cal_step is None else float(cal_step), list(profile.ch_names))


def _profile_setup(cfg: SessionConfig) -> DecoderSetup:
    """The :class:`DecoderSetup` of a subject profile (see :func:`build_decoder`)."""

    dec_cfg = cfg.decoder
    profile = SubjectProfile.load(dec_cfg.profile)
    decoder, policy, window_s, cal_step, channels = from_profile(profile)
    notes: list[str] = []
    if cfg.is_explicit("decoder.window_s") and \
            not math.isclose(float(dec_cfg.window_s), window_s, rel_tol=1e-6):
        notes.append(
            f"decoder.window_s = {float(dec_cfg.window_s):g} s overrides the profile's "
            f"{window_s:g} s windows; its decoder and thresholds were calibrated on "
            f"{window_s:g} s windows (drop decoder.window_s / --window to use them)")
        window_s = float(dec_cfg.window_s)
    step_s = float(dec_cfg.step_s)
    if cal_step is not None:
        if not cfg.is_explicit("decoder.step_s"):
            step_s = float(cal_step)
        elif not math.isclose(step_s, float(cal_step), rel_tol=1e-6):
            notes.append(
                f"decoder.step_s = {step_s:g} s differs from the {float(cal_step):g} s step "
                f"the profile's threshold ({policy.threshold:.3g}) was calibrated at; commands "
                "will come at another pace and false activations may differ (drop "
                "decoder.step_s to use the profile's)")
    for note in notes:
        logger.warning("%s", note)
    menus = {k: dict(v) for k, v in profile.menus.items()} or None
    if cfg.explicit_menus:
        menus = cfg.menus.to_dict()
    return DecoderSetup(decoder, policy, window_s, channels, menus, profile,
                        step_s=step_s, notes=notes)


def profile_menus(setup: DecoderSetup, cfg: SessionConfig) -> CommandMenus:
    """The session's menus with a profile: the configuration's when given explicitly, else
    the profile's (or the defaults for its lights), checked against the supervisor's table."""
    targets = [c for c in setup.profile.labels if not is_rest(c)]
    where = cfg.origin + " [menu]" if cfg.explicit_menus else \
        f"the menus of profile {cfg.decoder.profile}"
    return CommandMenus.build(setup.menus, targets, where=where)


@dataclass
class LoopTiming:
    """The decision policy and step the online loop runs with, on the LSL clock.

    Attributes
    ----------
    policy : DecisionPolicy
    step_s : float
        Seconds between two decisions.
    note : str
        What was scaled, for the session's output ("" at speed 1).
    """

    policy: Any
    step_s: float
    note: str = ""


def at_source_speed(policy, step_s: float, speed: float) -> LoopTiming:
    """The policy and decision step for a source played ``speed`` times faster than real time.

    The policy's durations (:data:`bci.online.policy.DURATIONS`) and the step are seconds of
    signal: they were calibrated (or chosen) for decisions every ``step_s`` of signal, with
    evidence counted over ``horizon_s`` of signal. A source run at ``speed`` stamps its samples
    ``1 / speed`` s apart per second of signal on the LSL clock, which the loop and the
    policy run on, so both are divided by ``speed`` (:meth:`DecisionPolicy.for_speed`): each
    second of signal then gets as many decisions, and the same evidence, as at speed 1. The
    step is not divided below :data:`bci.app.config.MIN_STEP_S`; when it would be, the note
    says that the policy sees fewer windows per second of signal than it was set for. At
    speed 1 the policy and the step are returned as they are.
    """
    if speed == 1:
        return LoopTiming(policy, step_s)
    fast = policy.for_speed(speed)
    step = max(MIN_STEP_S, step_s / speed)
    note = (f"Speed x{speed:g}: the policy's timings and the decision step are seconds of "
            f"signal, so they run {speed:g} times faster: horizon {fast.horizon_s:.3g} s, "
            f"refractory {fast.refractory_s:.3g} s, release {fast.release_s:.3g} s and a "
            f"decision every {step:.3g} s of real time")
    if step > step_s / speed:
        note += (f" (not {step_s / speed:.3g} s: the shortest step is {MIN_STEP_S:g} s; a "
                 f"decision comes every {step * speed:.3g} s of signal instead of "
                 f"{step_s:g} s, so the policy sees fewer windows than it was set for)")
    return LoopTiming(fast, step, note)


def make_policy(cfg: SessionConfig, classes):
    """A :class:`bci.online.DecisionPolicy` from the ``[policy]`` section."""

    p = cfg.policy
    return DecisionPolicy(
        list(classes), threshold=p.threshold, drift=p.drift, clip=p.clip,
        horizon_s=p.horizon_s, refractory_s=p.refractory_s, release_s=p.release_s)


def fit_training_free(decoder, stream, window_s: float):
    """Fit a training-free decoder for the stream's rate and channel count."""
    n = int(round(window_s * float(stream.sfreq)))
    decoder.set_params(sfreq=float(stream.sfreq))
    decoder.fit(np.zeros((1, len(stream.ch_names), n)))
    return decoder


def prepare_decoder(setup: DecoderSetup, stream) -> None:
    """Check the profile against the live stream, or fit the training-free decoder."""
    if setup.profile is not None:
        setup.profile.check_compatible(stream.ch_names, stream.sfreq)
        if not math.isclose(setup.window_s, float(setup.profile.window_s), rel_tol=1e-6):
            n = int(round(setup.window_s * float(stream.sfreq)))
            try:  # the window length overrides the profile's: can its decoder take it?
                setup.decoder.decision_function(np.zeros((1, len(stream.ch_names), n)))
            except Exception as exc:  # noqa: BLE001 - any refusal is the setting's fault
                raise ConfigError(
                    f"The profile's {setup.profile.method} decoder (fitted on "
                    f"{setup.profile.window_s:g} s windows) cannot decode "
                    f"{setup.window_s:g} s windows ({exc}); drop decoder.window_s / --window "
                    "to use the profile's window."
                ) from None
    elif setup.needs_fit:
        try:
            fit_training_free(setup.decoder, stream, setup.window_s)
        except (TypeError, ValueError) as exc:  # a parameter value the decoder refuses
            raise ConfigError(
                f"The decoder settings (decoder.method, decoder.params, decoder.freqs) do not "
                f"work on this stream ({len(stream.ch_names)} channels at "
                f"{float(stream.sfreq):g} Hz): {exc}"
            ) from None
        setup.needs_fit = False


# ---------------------------------------------------------------------- device side


def start_simulator(cfg: SessionConfig):
    """Start the simulated exoskeleton on a pseudo-terminal; return it (``.url``)."""

    return ExoSimulator(transport="pty", step_s=cfg.device.sim_step_s,
                        speed=cfg.device.sim_speed).start()


def open_driver(url: str, cfg: SessionConfig):
    """Open the exoskeleton driver on ``url`` (PortError when missing or busy)."""

    return ExoskeletonDriver(url, baudrate=cfg.device.baudrate).open()


def make_supervisor(driver, cfg: SessionConfig, menus: CommandMenus, *, log,
                    confirm_window_s: float | None = None):
    """The safety supervisor over ``driver``; the menus choose the commands it is given."""

    kw = {} if confirm_window_s is None else {"confirm_window_s": confirm_window_s}
    return SafetySupervisor(
        driver, supervisor_mapping(menus), walk_steps=cfg.device.walk_steps,
        turn_deg=cfg.device.turn_deg,
        confirm_posture_changes=cfg.device.confirm_posture_changes,
        label_key=normalize_label, log=log, **kw)


def apply_decision(supervisor, d, *, menus: CommandMenus, driver) -> dict | None:
    """Hand one decision to the supervisor; return the command event or None.

    A stalled stream, a failing decoder, decoder lag and bad signal go to the supervisor's
    stop rules (bad signal, stalls and decoder failures inhibit motion until a healthy window
    is decoded); a committed target becomes the command its light means in the current
    posture (:func:`bci.app.menus.select`); rest / no control moves nothing.
    """
    if d.reason == "stalled" or d.health.stalled:
        supervisor.on_stream_stalled("EEG stream stalled")
        return None
    if d.reason == "behind":
        lag = max(0.0, float(d.timestamp) - float(d.window_end)) if d.window_end == \
            d.window_end else float(d.latency_s)
        supervisor.on_decoder_lag(lag)
        return None
    if d.reason == "decoder_error":  # blind to the user's intent (a "stop" cannot be seen)
        supervisor.on_stream_stalled("decoder failed")
        return None
    if not d.health.ok:
        supervisor.on_health(False, "; ".join(d.health.problems()))
        return None
    if supervisor.inhibited:
        supervisor.on_health(True, "signal usable again")
    if d.outcome is None or is_rest(d.outcome):
        return None
    return {**select(menus, supervisor, driver, d.outcome), "t_decision": d.window_end}


def on_stall(supervisor, why: str) -> None:
    """Decisions stopped arriving (bridge): stop the exoskeleton and inhibit motion."""
    supervisor.on_stream_stalled(why)


def safety_stop_reason(event: str, data: dict) -> str | None:
    """The reason when a supervisor event is a STOP it decided by itself, else None."""
    if event == "stop":
        return str(data.get("reason", "stop"))
    return None


def telemetry(driver) -> dict | None:
    """The last telemetry as a dict (state, x, y, heading, ...), or None."""
    tel = getattr(driver, "telemetry", None)
    return None if tel is None else tel.as_dict()


def last_ack(driver) -> str:
    """Text of the last ACK/NAK."""
    r = getattr(driver, "last_reply", None)
    if r is None:
        return "-"
    age = time.monotonic() - r.time
    return (f"ACK {r.verb}" if r.ok else f"NAK {r.verb} {','.join(r.args)}") + f" ({age:.1f} s ago)"


FINAL_STOP_REASON = "session ending"


def stop_and_close(driver, supervisor, log=None) -> None:
    """Send STOP, note the exoskeleton's final state, close the link (bounded time).

    ``log(event, data)`` receives ``"final_stop"`` (the STOP's outcome) and
    ``"device_final_state"`` (the controller state after it, from telemetry).
    """
    if driver is None:
        return
    try:
        if supervisor is not None and driver.link_ok:
            out = supervisor.stop(FINAL_STOP_REASON)
            if log is not None:
                log("final_stop", out.as_dict())
            tel = driver.wait_telemetry(lambda t: not t.moving, timeout=1.0)
            tel = tel or driver.telemetry
            if log is not None and tel is not None:
                log("device_final_state", tel.as_dict())
    except Exception:  # noqa: BLE001 - closing must go on
        logger.exception("Stopping the exoskeleton at the end of the session failed")
    try:
        driver.close(stop=True, timeout=0.5)
    except Exception:  # noqa: BLE001 - closing must not raise on the way out
        logger.exception("Closing the exoskeleton driver failed")


__all__ = ["REST_LABEL"]
