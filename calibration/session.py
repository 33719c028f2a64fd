"""Calibration sessions: from recorded files, or live over LSL (see :mod:`calibration.live`).

:func:`calibrate_from_files` (and :func:`calibrate_raws` for recordings already loaded)
epochs the cued trials, cross-validates every candidate decoder x window length, picks the
best, sets the decision policy's evidence threshold for the false-activation budget
(commands per minute of rest, on the windows the online loop would decode, scored out of
fold), fits the chosen decoder on all the calibration data and returns a
:class:`~calibration.profile.SubjectProfile` and a
:class:`~calibration.report.CalibrationReport`. :func:`apply_profile` measures a profile on
another recording of the same user (accuracy, hits and false activations per minute of rest).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bci.datasets import cue_freqs, cue_table, epoch, load_recording, pick_channels
from bci.decoders import DEFAULT_METHODS, METHODS
from bci.evaluation.harness import N_FOLDS, SEED, out_of_fold_streams, score_stream
from bci.labels import REST_LABEL, class_labels, freq_label, label_to_freq
from calibration import selection as sel
from calibration.errors import CalibrationError
from calibration.profile import SubjectProfile
from calibration.report import CalibrationReport

logger = logging.getLogger("calibration")

#: Candidate window lengths (s), chosen leave-one-subject-out (docs/evaluation.md).
DEFAULT_WINDOWS = (2.0,)


def calibrate_from_files(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    methods: Sequence[str] | None = None,
    windows: Sequence[float] = DEFAULT_WINDOWS,
    max_false_per_min: float = sel.MAX_FALSE_PER_MIN,
    **kwargs,
) -> tuple[SubjectProfile, CalibrationReport]:
    """Build a subject profile from one or more recorded calibration sessions.

    This is what ``ssvep-exo calibrate --from-file`` runs, and what the pseudo-online
    evaluation (``ssvep-exo evaluate --online``) runs on each calibration session.

    Parameters
    ----------
    paths : path-like | sequence of path-like
        Recordings :func:`bci.datasets.load_recording` reads (e.g. a Kalunga ``*_raw.fif``,
        an XDF file from a live calibration).
    methods : sequence of str | None
        Candidate decoders (registry names); default :data:`bci.decoders.DEFAULT_METHODS`.
    windows : sequence of float, default=DEFAULT_WINDOWS
        Candidate window lengths (s).
    max_false_per_min : float, default=0.5
        The false-activation budget: commands allowed per minute while the user looks at
        nothing.
    **kwargs
        Passed to :func:`calibrate_raws` (``tmin``, ``channels``, ``step_s``, ``n_folds``,
        ``criterion``, ``menus``, ``policy_params``, ``output``).

    Returns
    -------
    profile : SubjectProfile
    report : CalibrationReport
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("'paths' must name at least one recording.")
    raws = [load_recording(p) for p in paths]
    return calibrate_raws(raws, methods=methods, windows=windows,
                          max_false_per_min=max_false_per_min,
                          sources=[str(p) for p in paths], **kwargs)


def calibrate_raws(
    raws: Sequence,
    *,
    methods: Sequence[str] | None = None,
    windows: Sequence[float] = DEFAULT_WINDOWS,
    max_false_per_min: float = sel.MAX_FALSE_PER_MIN,
    tmin: float = 2.0,
    channels: Sequence[str] | None = None,
    step_s: float = 0.1,
    n_folds: int = N_FOLDS,
    criterion: str = "accuracy",
    menus: Mapping[str, Mapping[str, str]] | None = None,
    policy_params: Mapping[str, object] | None = None,
    phases: Sequence[float] | None = None,
    rest_model: str = "head",
    output: str | os.PathLike | None = None,
    sources: Sequence[str] = (),
    seed: int = SEED,
) -> tuple[SubjectProfile, CalibrationReport]:
    """Model selection, threshold and fitting on loaded recordings (see
    :func:`calibrate_from_files`).

    Steps: cross-validate every candidate decoder x window on the cued windows
    (:func:`calibration.selection.cross_validate`) and keep the best; score the windows the
    online loop would decode over the calibration recordings out of fold
    (:func:`bci.evaluation.harness.out_of_fold_streams`, every ``step_s``) and set the
    decision policy's threshold for the false-activation budget
    (:func:`calibration.selection.choose_threshold`); fit the chosen decoder on all the
    calibration trials; write the profile.

    Parameters
    ----------
    raws : sequence of mne.io.Raw
        Recordings with cue annotations (same channels and sampling rate).
    methods, windows, max_false_per_min
        See :func:`calibrate_from_files`.
    tmin : float, default=2.0
        Start of the cued window after each cue (s); 2.0 is the Kalunga/MOABB convention.
    channels : sequence of str | None
        Channels to use (default: every EEG channel of the first recording).
    step_s : float, default=0.1
        Step of the online loop the threshold is set for (stored in the profile).
    n_folds : int, default=5
        Cross-validation folds.
    criterion : {"accuracy", "itr"}, default="accuracy"
        What the selection maximises (ties: the shorter window).
    menus : dict | None
        Posture -> {target label: command} (see ``docs/configuration.md``), stored in the
        profile; None: the application's defaults for the profile's lights.
    policy_params : dict | None
        Overrides of :data:`calibration.selection.POLICY_DEFAULTS` (``drift``, ``clip``,
        ``horizon_s``, ``refractory_s``, ``release_s``, ``margin``); the threshold is always
        chosen here.
    phases : sequence of float | None
        Stimulus phases (rad) per target, stored in the profile (default zeros).
    rest_model : {"head", "threshold"}, default="head"
        How no-control is recognised when the recordings have rest trials. ``"head"``: the
        decoder learns a rest class, and the policy's threshold is set on top; ``"threshold"``:
        the decoder classifies targets only and no-control is only the policy's threshold.
    output : path-like | None
        When given, the profile is saved there and the report's plots written there.
    sources : sequence of str
        Names of the recordings (stored in the profile).
    seed : int, default=42
        Cross-validation seed.
    """
    raws = list(raws)
    if not raws:
        raise ValueError("'raws' must hold at least one recording.")
    if rest_model not in ("head", "threshold"):
        raise ValueError(f"Invalid value for the 'rest_model' parameter. Allowed values are "
                         f"'head', 'threshold', but got {rest_model!r} instead.")
    if criterion not in ("accuracy", "itr"):
        raise ValueError(f"Invalid value for the 'criterion' parameter. Allowed values are "
                         f"'accuracy', 'itr', but got {criterion!r} instead.")
    if not (isinstance(max_false_per_min, (int, float)) and max_false_per_min >= 0):
        raise ValueError(f"'max_false_per_min' must be a number >= 0, got "
                         f"{max_false_per_min!r}.")
    named = bool(methods)
    methods = list(methods or DEFAULT_METHODS)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise CalibrationError(f"Unknown decoder method(s) {unknown}; choose from "
                               f"{', '.join(METHODS)}.")
    sfreq = float(raws[0].info["sfreq"])
    ch = list(channels) if channels is not None else [
        raws[0].ch_names[i] for i in pick_channels(raws[0], None)]
    for r in raws[1:]:
        if not math.isclose(r.info["sfreq"], sfreq):
            raise CalibrationError(f"The recordings have different sampling rates "
                                   f"({sfreq:g} and {r.info['sfreq']:g} Hz); calibrate them "
                                   "separately.")
    freqs = sorted({f for r in raws for f in cue_freqs(r)})
    if len(freqs) < 2:
        raise CalibrationError(f"Calibration needs cues of at least two stimulus frequencies; "
                               f"the recordings have {freqs}.")
    has_rest = any(REST_LABEL in set(np.asarray(cue_table(r)[1]).astype(str)) for r in raws)
    if not has_rest:
        raise CalibrationError(
            "The calibration recordings have no rest trials: the no-control threshold cannot "
            "be set. Record rest trials too (the user looks at none of the lights).")
    classes = [freq_label(f) for f in freqs]
    if rest_model == "head":
        classes.append(REST_LABEL)
    windows = _usable_windows(raws, windows, tmin)
    notes: list[str] = []
    phase = None
    templates = [m for m in methods if not METHODS[m].get("phase_invariant", True)]
    if templates and not named:
        methods, phase = _prune_templates(raws, methods, templates, tmin=tmin,
                                          window=max(windows), channels=ch, notes=notes)
    pp = {**sel.POLICY_DEFAULTS, **dict(policy_params or {})}

    records = sel.cross_validate(raws, methods=methods, windows=windows, freqs=freqs,
                                 channels=ch, classes=classes, tmin=tmin, n_folds=n_folds,
                                 seed=seed, notes=notes)
    key = "itr_bits_per_min" if criterion == "itr" else "accuracy"
    best = max(records, key=lambda r: (round(r[key], 6), -r["window_s"]))
    method, window = best["method"], best["window_s"]
    # The threshold: out-of-fold scores of the windows the online loop decodes.
    streams = out_of_fold_streams(
        sel.decoder(method, sfreq=sfreq, freqs=freqs), raws, tmin=tmin, window=window,
        classes=classes, channels=ch, train_span=METHODS[method].get("train_span"),
        step=step_s, n_folds=n_folds, seed=seed)
    pol, cal = sel.choose_threshold(streams, max_false_per_min=max_false_per_min, params=pp)
    curve = sel.threshold_curve(streams, pol.threshold, pp)
    if not cal["held"]:
        logger.warning("no threshold holds %.2f false activations/min on the calibration data "
                       "(best %.2f/min)", max_false_per_min, cal["false_activations_per_min"])
    tr = sel.trials(raws, method=method, tmin=tmin, window=window, channels=ch, classes=classes)
    decoder = sel.fit(method, tr, tr.trial, sfreq=sfreq, freqs=freqs)
    expected = {k: cal[k] for k in ("hit_rate", "wrong_command_rate",
                                    "false_activations_per_min", "median_time_to_command_s")}
    selected = {**best, "threshold": pol.threshold, "false_per_min":
                cal["false_activations_per_min"], **expected}
    info = METHODS[method]
    profile = SubjectProfile.from_decoder(
        decoder, method=method, ch_names=ch, sfreq=sfreq, window_s=window,
        freqs=freqs, phases=list(phases) if phases is not None else None,
        menus={k: dict(v) for k, v in (menus or {}).items()},
        policy=pol.to_dict(), cv_results=records, max_false_per_min=max_false_per_min,
        source_recordings=[str(s) for s in sources],
        extra={"step_s": step_s, "rest_model": rest_model, "tmin": tmin,
               "criterion": criterion,
               "policy_params": {k: pp[k] for k in ("drift", "clip", "margin")},
               "threshold_at_budget": cal["threshold_at_budget"],
               "selected": {k: selected[k] for k in ("accuracy", "itr_bits_per_min",
                                                     "threshold")},
               "calibration_replay": expected,
               "phase_invariant": bool(info.get("phase_invariant", True)),
               "phase_locking": phase.to_dict() if phase is not None else None,
               "calibrated": bool(info.get("calibrated", False))},
    )
    report = CalibrationReport(records=records, selected=selected, far_curve=curve,
                               max_false_per_min=max_false_per_min, notes=notes)
    if output is not None:
        profile.save(output)
        report.plot(output)
    return profile, report


def _prune_templates(raws, methods: list[str], templates: list[str], *, tmin: float,
                     window: float, channels, notes: list[str]):
    """Drop the template decoders from the default candidates on free-running-light data.

    Template decoders score at chance when the response phase changes from trial to trial;
    :func:`calibration.selection.phase_check` tells. Returns the candidates and the check;
    the one-line explanation goes to ``notes`` (and the log).
    """
    phase = sel.phase_check(raws, tmin=tmin, window=window, channels=channels)
    if phase.locked is False:
        kept = [m for m in methods if m not in templates]
        note = (f"Cues are not phase-locked (ITC {phase.itc:.2f} vs chance "
                f"{phase.chance:.2f}, p={phase.p_value:.2g}): template decoders "
                f"({', '.join(templates)}) skipped; name them with --methods to try anyway.")
        notes.append(note)
        logger.info("%s", note)
        return kept, phase
    if phase.locked is None and phase.rows is not None:
        logger.info("too few trials to tell whether the cues are phase-locked; template "
                    "decoders %s stay among the candidates", templates)
    return methods, phase


def _usable_windows(raws, windows, tmin: float) -> list[float]:
    """Windows that fit between ``tmin`` after a cue and the next cue (median trial)."""
    windows = sorted({float(w) for w in windows})
    if not windows or any(not (w > 0) for w in windows):
        raise ValueError(f"'windows' must be positive lengths in seconds, got {windows!r}.")
    gaps = []
    for r in raws:
        on, _ = cue_table(r)
        if len(on) > 1:
            gaps.append(float(np.median(np.diff(on))))
    if not gaps:
        return windows
    room = min(gaps) - tmin
    ok = [w for w in windows if w <= room + 1e-9]
    if not ok:
        raise CalibrationError(
            f"No candidate window fits the trials: cues are {min(gaps):.2f} s apart and windows "
            f"start {tmin:g} s after the cue, leaving {room:.2f} s (windows {windows}). Use "
            "longer trials, a smaller tmin or shorter windows."
        )
    if len(ok) < len(windows):
        logger.warning("windows %s do not fit the %.2f s trials and are skipped",
                       [w for w in windows if w not in ok], min(gaps))
    return ok


def apply_profile(profile: SubjectProfile, raw, *, tmin: float = 2.0,
                  step_s: float | None = None) -> dict:
    """Decode another recording with a profile; return accuracy and the policy's commands.

    Parameters
    ----------
    profile : SubjectProfile
        A profile (e.g. from :func:`calibration.session.calibrate_from_files`).
    raw : mne.io.Raw
        Another recording of the same user (cue annotations).
    tmin : float, default=2.0
        Start of the cued windows after each cue (s).
    step_s : float | None
        Step of the replayed windows (default: the step the profile was made for).

    Returns
    -------
    result : dict
        ``accuracy`` (all profile classes), ``accuracy_targets`` (targets only, argmax over
        target scores), ``n_trials``, and the scored replay of the profile's policy over the
        windows the online loop decodes (:func:`calibration.selection.replay`: ``hit_rate``,
        ``false_activations_per_min``, ...).
    """
    extra = profile.extra if isinstance(profile.extra, dict) else {}
    step_s = float(step_s if step_s is not None else extra.get("step_s", 0.1))
    profile.check_compatible(raw.ch_names, raw.info["sfreq"])
    dec = profile.build_decoder()
    classes = class_labels(dec.classes_)
    X, y, _ = epoch(raw, tmin=tmin, window=profile.window_s, channels=profile.ch_names,
                    classes=list(classes))
    y = np.asarray(y).astype(str)
    scores = dec.decision_function(X)
    pred = np.asarray(classes)[np.argmax(scores, axis=1)]
    tcols = [i for i, c in enumerate(classes) if c != REST_LABEL]
    tmask = y != REST_LABEL
    pred_t = np.asarray(classes)[tcols][np.argmax(scores[tmask][:, tcols], axis=1)]
    stream = score_stream(dec, raw, window=profile.window_s, step=step_s,
                          channels=profile.ch_names)
    rep = sel.replay([stream], profile.build_policy())
    return {
        "accuracy": float(np.mean(pred == y)),
        "accuracy_targets": float(np.mean(pred_t == y[tmask])) if tmask.any() else float("nan"),
        "n_trials": int(len(y)),
        **rep,
    }


# ---------------------------------------------------------------------------------- live

@dataclass(frozen=True)
class CueSequence:
    """A randomised, balanced sequence of cued calibration trials.

    Trial ``k`` starts with its cue at ``onsets[k]`` (seconds from the start of the
    sequence): the cued tile is highlighted for ``cue_s``, the user attends it for
    ``trial_s`` (stimulation), then pauses for ``rest_s``. A lead-in of ``lead_s`` (no cue)
    comes first.

    Attributes
    ----------
    labels : tuple of str
        Cue of each trial (``"13.0Hz"`` ... or ``"rest"``).
    trial_s, cue_s, rest_s, lead_s : float
        Durations in seconds.
    """

    labels: tuple[str, ...]
    trial_s: float = 4.0
    cue_s: float = 0.0
    rest_s: float = 0.0
    lead_s: float = 2.0

    @classmethod
    def balanced(cls, freqs: Sequence[float], n_per_class: int, *, include_rest: bool = True,
                 trial_s: float = 4.0, cue_s: float = 0.0, rest_s: float = 0.0,
                 lead_s: float = 2.0, seed: int | None = None) -> CueSequence:
        """``n_per_class`` trials of each target (and rest), in random order."""
        if isinstance(n_per_class, bool) or not isinstance(n_per_class, int) or n_per_class < 2:
            raise ValueError(f"'n_per_class' must be an int >= 2 (cross-validation needs two "
                             f"trials per class), got {n_per_class!r}.")
        for name, v in (("trial_s", trial_s), ("cue_s", cue_s), ("rest_s", rest_s),
                        ("lead_s", lead_s)):
            if not (np.isfinite(v) and v >= (0.5 if name == "trial_s" else 0.0)):
                raise ValueError(f"'{name}' must be a number of seconds "
                                 f"{'>= 0.5' if name == 'trial_s' else '>= 0'}, got {v!r}.")
        labels = [freq_label(f) for f in freqs] + ([REST_LABEL] if include_rest else [])
        if len(set(labels)) < 2:
            raise ValueError(f"A calibration needs at least two classes, got {labels}.")
        seq = np.repeat(labels, n_per_class)
        np.random.default_rng(seed).shuffle(seq)
        return cls(tuple(str(s) for s in seq), float(trial_s), float(cue_s), float(rest_s),
                   float(lead_s))

    @property
    def period_s(self) -> float:
        """Cue-to-cue interval."""
        return self.cue_s + self.trial_s + self.rest_s

    @property
    def onsets(self) -> np.ndarray:
        """Cue times (s) from the start of the sequence."""
        return self.lead_s + self.period_s * np.arange(len(self.labels))

    @property
    def duration_s(self) -> float:
        """Total length (s)."""
        return self.lead_s + self.period_s * len(self.labels)

    @property
    def freqs(self) -> list[float]:
        """Target frequencies of the sequence, ascending."""
        return sorted({label_to_freq(lab) for lab in self.labels if lab != REST_LABEL})

    def schedule(self, tail_s: float = 0.0):
        """The :class:`bci.sources.Schedule` a simulated user following the cues would have
        (for :class:`bci.sources.SyntheticEEG`): rest during the lead-in and pauses, the cued
        class from the cue to the end of the stimulation, and ``tail_s`` of rest after the
        last trial (so that a live source outlasts the sequence)."""
        from bci.sources.schedule import Schedule

        segs = [(REST_LABEL, self.lead_s)] if self.lead_s > 0 else []
        for lab in self.labels:
            segs.append((lab, self.cue_s + self.trial_s))
            if self.rest_s > 0:
                segs.append((REST_LABEL, self.rest_s))
        if tail_s > 0:
            segs.append((REST_LABEL, float(tail_s)))
        return Schedule(segs)


def calibrate_live(
    *,
    name: str | None = None,
    source_id: str | None = None,
    freqs: Sequence[float] = (13.0, 17.0, 21.0),
    n_per_class: int = 8,
    trial_s: float = 5.0,
    cue_s: float = 0.0,
    rest_s: float = 0.0,
    include_rest: bool = True,
    sequence: CueSequence | None = None,
    start_at: float | None = None,
    stimulus: bool = False,
    refresh_rate: float | None = None,
    menus: Mapping[str, Mapping[str, str]] | None = None,
    output: str | os.PathLike,
    record_path: str | os.PathLike | None = None,
    signal_check: bool = True,
    check_s: float = 2.0,
    marker_name: str = "ssvep-exo-cues",
    connect_timeout: float = 10.0,
    seed: int | None = None,
    progress=None,
    **calibration_kw,
) -> tuple[SubjectProfile, CalibrationReport]:
    """Run a live calibration over LSL, record it, and build the profile from the recording.

    Steps: connect to the EEG stream (``name`` and/or ``source_id``); check the signal
    (:func:`calibration.signal_check.check_signal`, raising CalibrationError naming the
    electrodes to fix); record EEG and cues to ``record_path`` (XDF, via
    :class:`bci.recording.SessionRecorder`) while the cue sequence runs, with cue markers
    published over LSL (by the on-screen :class:`~calibration.stimulus.Stimulus` when
    ``stimulus``, timestamped at the frame flips; otherwise by a plain marker outlet at the
    scheduled times); then :func:`calibrate_from_files` on the recording.

    Parameters
    ----------
    name, source_id : str | None
        The EEG stream to use (at least one).
    freqs : sequence of float, default=(13, 17, 21)
        Target frequencies (ignored when ``sequence`` is given).
    n_per_class, trial_s, cue_s, rest_s, include_rest
        The trial sequence (see :meth:`CueSequence.balanced`), ignored with ``sequence``.
    sequence : CueSequence | None
        A ready sequence (e.g. the one a synthetic source follows).
    start_at : float | None
        LSL time at which the sequence starts (its lead-in); default: when recording starts.
    stimulus : bool, default=False
        Show the on-screen stimulus (pygame-ce) and let it publish the cues.
    refresh_rate : float | None
        Declared display refresh rate for the stimulus (default: measured).
    menus : dict | None
        Posture -> {target label: command}, stored in the profile (and shown on the
        stimulus tiles).
    output : path-like
        Directory for the profile, the report plots and (by default) the recording.
    record_path : path-like | None
        The XDF file (default ``output/calibration.xdf``).
    signal_check : bool, default=True
        Run the signal check first.
    check_s : float, default=2.0
        Seconds of EEG the signal check looks at.
    marker_name : str, default="ssvep-exo-cues"
        Name of the cue marker outlet.
    connect_timeout : float, default=10.0
        Seconds to look for the stream.
    seed : int | None
        Seed of the trial order.
    progress : callable | None
        Called with a one-line status per trial.
    **calibration_kw
        Passed to :func:`calibrate_raws` (``methods``, ``windows``, ``max_false_per_min``,
        ``tmin`` ...).
    """
    from bci.acquisition import EEGStream
    from bci.recording import SessionRecorder
    from calibration.signal_check import check_signal

    if name is None and source_id is None:
        raise ValueError("Give the EEG stream's 'name' or 'source_id'.")
    seq = sequence or CueSequence.balanced(freqs, n_per_class, include_rest=include_rest,
                                           trial_s=trial_s, cue_s=cue_s, rest_s=rest_s,
                                           seed=seed)
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    rec_path = Path(record_path) if record_path is not None else out / "calibration.xdf"
    say = progress or (lambda msg: logger.info("%s", msg))
    stream = EEGStream(name=name, source_id=source_id)
    stream.connect(timeout=connect_timeout)
    try:
        if signal_check:
            n = int(round(check_s * stream.sfreq))
            win = _wait_window(stream, n, timeout=check_s * 3 + 5)
            chk = check_signal(win.data, stream.sfreq, stream.ch_names)
            say(chk.message())
            chk.raise_if_bad()
        recorder = SessionRecorder(rec_path, stream=stream).start()
        try:
            if stimulus:
                t_end = _run_with_stimulus(seq, recorder, refresh_rate=refresh_rate,
                                           marker_name=marker_name, menus=menus,
                                           start_at=start_at, say=say)
            else:
                t_end = _run_with_outlet(seq, recorder, marker_name=marker_name,
                                         start_at=start_at, say=say)
            _wait_until(stream, t_end + 0.25, timeout=5.0)  # the last samples arrive late
        finally:
            recorder.close()
        if recorder.error is not None:
            raise CalibrationError(f"The calibration recording {str(rec_path)!r} failed: "
                                   f"{recorder.error}. Check the disk and try again.")
    finally:
        stream.disconnect()
    say(f"recording saved to {rec_path}")
    kw = dict(calibration_kw)
    tmin = kw.pop("tmin", seq.cue_s + min(1.0, seq.trial_s / 4))
    room = seq.cue_s + seq.trial_s - tmin
    windows = [w for w in kw.pop("windows", DEFAULT_WINDOWS) if w <= room + 1e-9]
    if not windows:
        raise CalibrationError(f"No window fits {seq.trial_s:g} s trials starting {tmin:g} s "
                               "after the cue; use longer trials or shorter windows.")
    return calibrate_from_files([rec_path], windows=windows, tmin=tmin, output=out,
                                menus=menus, **kw)


def _wait_window(stream, n: int, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        win = stream.latest_window(n)
        if win is not None:
            return win
        time.sleep(0.05)
    raise CalibrationError(
        f"The EEG stream sent less than {n / stream.sfreq:.1f} s of data in {timeout:.0f} s; "
        "check that the amplifier is streaming."
    )


def _wait_until(stream, t_lsl: float, timeout: float) -> None:
    """Wait until the stream has delivered samples up to LSL time ``t_lsl``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        win = stream.latest_window(1)
        if win is not None and win.t_end >= t_lsl:
            return
        time.sleep(0.05)
    logger.warning("the EEG stream did not deliver data up to the end of the sequence in "
                   "%.0f s; the last trial may be incomplete", timeout)


def _run_with_outlet(seq: CueSequence, recorder, *, marker_name: str, start_at,
                     say) -> float:
    """Publish each cue at its scheduled LSL time (plain marker outlet, no display)."""
    import pylsl

    info = pylsl.StreamInfo(marker_name, "Markers", 1, pylsl.IRREGULAR_RATE, pylsl.cf_string,
                            f"{marker_name}-{os.getpid()}")
    outlet = pylsl.StreamOutlet(info)
    t0 = pylsl.local_clock() if start_at is None else float(start_at)
    for k, (lab, on) in enumerate(zip(seq.labels, seq.onsets)):
        t = t0 + float(on)
        delay = t - pylsl.local_clock()
        if delay > 0:
            time.sleep(delay)
        outlet.push_sample([lab], t)
        recorder.push_marker(t, lab)
        say(f"trial {k + 1}/{len(seq.labels)}: {lab}")
    end = t0 + seq.duration_s
    delay = end - pylsl.local_clock()
    if delay > 0:
        time.sleep(delay)
    return end


def _run_with_stimulus(seq: CueSequence, recorder, *, refresh_rate, marker_name, menus,
                       start_at, say) -> float:
    """Run the cue sequence on the on-screen stimulus; its markers are recorded too."""
    import pylsl

    from calibration.stimulus import Target

    def caption(label: str) -> str:  # what the light means, over all postures
        cmds = dict.fromkeys(m[label] for m in (menus or {}).values() if label in m)
        return "/".join(cmds) or label

    targets = [Target(f, 0.0, caption(freq_label(f))) for f in seq.freqs]

    def record(marker: str, t: float) -> None:
        recorder.push_marker(t, marker)

    from calibration.stimulus import Stimulus

    with Stimulus(targets, refresh_rate=refresh_rate, marker_name=marker_name,
                  on_marker=record) as stim:
        t0 = pylsl.local_clock() if start_at is None else float(start_at)
        for k, (lab, on) in enumerate(zip(seq.labels, seq.onsets)):
            wait = t0 + float(on) - pylsl.local_clock()  # keep the cues on the schedule
            if wait > 0.5 / stim.refresh_rate:
                stim.show_static(wait)
            say(f"trial {k + 1}/{len(seq.labels)}: {lab}")
            stim.run_trial(lab, cue_s=seq.cue_s, stim_s=seq.trial_s, rest_s=seq.rest_s)
    return pylsl.local_clock()
