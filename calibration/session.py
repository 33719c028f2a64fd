"""Calibration from recordings: model selection, no-control threshold, profile.

:func:`calibrate_from_files` (and :func:`calibrate_raws` for recordings already loaded)
epochs the cued trials, cross-validates every candidate decoder x window length, picks the
best, chooses the no-control threshold (``min_margin`` of the decision policy) that holds
the false-activation rate (commands per minute of rest, on sliding windows scored
out-of-fold, as the online loop would issue them) under a target, fits the chosen decoder on
all the calibration data and returns a :class:`~calibration.profile.SubjectProfile` and a
:class:`~calibration.report.CalibrationReport`.

A live calibration (:mod:`calibration.live`) records a session and ends here;
:func:`calibration.apply.apply_profile` measures a profile on another recording of the same
user; :mod:`calibration.cues` holds the live calibration's cue sequence.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bci.datasets import cue_freqs, cue_spacing, cue_table, load_recording, pick_channels
from bci.decoders import DEFAULT_METHODS, METHODS
from bci.labels import REST_LABEL, freq_label
from bci.online.pseudo_online import DEFAULT_POLICY
from calibration import selection as sel
from calibration.errors import CalibrationError
from calibration.profile import SubjectProfile
from calibration.report import CalibrationReport

logger = logging.getLogger("calibration")

DEFAULT_WINDOWS = (0.5, 1.0, 2.0)
#: Below this share of target trials reaching a command, the calibrated policy is reported as
#: weak (a warning with the figure; the profile is still written).
WEAK_HIT_RATE = 0.5
#: Commands given to the targets in ascending frequency when no mapping is supplied.
DEFAULT_COMMANDS = ("walk", "stop", "sit", "stand", "turn_left", "turn_right")


def calibrate_from_files(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    methods: Sequence[str] | None = None,
    windows: Sequence[float] = DEFAULT_WINDOWS,
    far_target_per_min: float = 1.0,
    **kwargs,
) -> tuple[SubjectProfile, CalibrationReport]:
    """Build a subject profile from one or more recorded calibration sessions.

    Parameters
    ----------
    paths : path-like | sequence of path-like
        Recordings :func:`bci.datasets.load_recording` reads (e.g. a Kalunga ``*_raw.fif``,
        an XDF file from a live calibration).
    methods : sequence of str | None
        Candidate decoders (registry names); default :data:`bci.decoders.DEFAULT_METHODS`.
    windows : sequence of float, default=(0.5, 1.0, 2.0)
        Candidate window lengths (s).
    far_target_per_min : float, default=1.0
        Allowed commands per minute while the user looks at nothing.
    **kwargs
        Passed to :func:`calibrate_raws` (``tmin``, ``channels``, ``step_s``, ``guard_s``,
        ``n_folds``, ``criterion``, ``command_map``, ``policy_params``, ``output``).

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
                          far_target_per_min=far_target_per_min,
                          sources=[str(p) for p in paths], **kwargs)


def calibrate_raws(
    raws: Sequence,
    *,
    methods: Sequence[str] | None = None,
    windows: Sequence[float] = DEFAULT_WINDOWS,
    far_target_per_min: float = 1.0,
    tmin: float = 2.0,
    channels: Sequence[str] | None = None,
    step_s: float = 0.1,
    guard_s: float = 1.0,
    n_folds: int = 5,
    criterion: str = "accuracy",
    command_map: Mapping[str, str] | None = None,
    policy_params: Mapping[str, object] | None = None,
    phases: Sequence[float] | None = None,
    rest_model: str = "head",
    output: str | os.PathLike | None = None,
    sources: Sequence[str] = (),
    seed: int = 42,
    allow_no_rest: bool = False,
) -> tuple[SubjectProfile, CalibrationReport]:
    """Model selection and fitting on loaded recordings (see :func:`calibrate_from_files`).

    Parameters
    ----------
    raws : sequence of mne.io.Raw
        Recordings with cue annotations (same channels and sampling rate).
    tmin : float, default=2.0
        Start of the cued window after each cue (s); 2.0 is the Kalunga/MOABB convention.
    channels : sequence of str | None
        Channels to use (default: every EEG channel of the first recording).
    step_s : float, default=0.1
        Step of the sliding windows used to choose the threshold (the online loop's default
        step; stored in the profile as the step the threshold was chosen for).
    guard_s : float, default=1.0
        Sliding windows that start less than this after a cue are not counted (gaze shift).
    n_folds : int, default=5
        Cross-validation folds.
    criterion : {"accuracy", "itr"}, default="accuracy"
        What the selection maximises (ties: the shorter window).
    command_map : dict | None
        Target label -> command name; default: :data:`DEFAULT_COMMANDS` by ascending frequency.
    policy_params : dict | None
        Fixed DecisionPolicy parameters (``n_consecutive``, ``refractory_s``, ``release_s``;
        default :data:`bci.online.pseudo_online.DEFAULT_POLICY`, whose ``n_consecutive`` is
        for a 0.1 s step and is rescaled to keep the same dwell time at ``step_s``);
        ``min_margin`` is chosen here.
    phases : sequence of float | None
        Stimulus phases (rad) per target, stored in the profile (default zeros).
    rest_model : {"head", "threshold"}, default="head"
        How no-control is recognised when the recordings have rest trials. ``"head"``: the
        decoder learns a rest class (its rest head), and the policy's margin is tuned on top;
        ``"threshold"``: the decoder classifies targets only and no-control is only the
        policy's margin threshold, tuned on the rest trials.
    output : path-like | None
        When given, the profile is saved there and the report's plots written there.
    sources : sequence of str
        Names of the recordings (stored in the profile).
    seed : int, default=42
        Cross-validation seed.
    allow_no_rest : bool, default=False
        Accept recordings without rest (no-control) trials. Without them no threshold can
        be chosen that keeps the exoskeleton still while the user looks at nothing, so by
        default such recordings are refused (:class:`CalibrationError`).
    """
    raws = list(raws)
    if not raws:
        raise ValueError("'raws' must hold at least one recording.")
    _check_choice("rest_model", rest_model, ("head", "threshold"))
    _check_choice("criterion", criterion, ("accuracy", "itr"))
    named = bool(methods)
    methods = _known_methods(methods)
    data = _calibration_data(raws, channels, tmin=tmin, rest_model=rest_model)
    if command_map is not None:
        check_command_map(command_map, data.freqs)
    windows = _usable_windows(raws, windows, tmin)
    notes: list[str] = []
    if not data.has_rest:
        if not allow_no_rest:
            raise CalibrationError(
                "The recordings have no rest (no-control) trials, so no threshold can be "
                "chosen that keeps the exoskeleton still while the user looks away. Record "
                "rest trials (a live calibration does by default), or accept a profile that "
                "commands whenever a target wins with --allow-no-rest (allow_no_rest=True).")
        _note(notes, "Warning: no rest trials: no no-control threshold (min_margin 0); any "
                     "target that wins its windows in a row gives a command, also while the "
                     "user looks away.")
    phase = None
    templates = [m for m in methods if not METHODS[m].get("phase_invariant", True)]
    if templates and not named:
        methods, phase = _prune_templates(raws, methods, templates, tmin=tmin,
                                          window=max(windows), channels=data.channels,
                                          notes=notes)
    policy_params = {**_default_policy(step_s), **dict(policy_params or {})}
    policy_params.pop("min_margin", None)

    # 1. every candidate decoder x window, cross-validated on the cued trials
    records = sel.cross_validate(raws, methods=methods, windows=windows, freqs=data.freqs,
                                 channels=data.channels, classes=data.classes, tmin=tmin,
                                 n_folds=n_folds, seed=seed, notes=notes)
    # 2. each candidate's no-control threshold and its false activations (out-of-fold)
    sliding = dict(step_s=step_s, guard_s=guard_s, n_folds=n_folds, seed=seed)
    scored = _threshold_candidates(records, data, sliding, far_target_per_min, policy_params)
    # 3. the best candidate, fitted on all the data
    key = "itr_bits_per_min" if criterion == "itr" else "accuracy"
    best = max(records, key=lambda r: (round(r[key], 6), -r["window_s"]))
    ls, pol, rep = scored[(best["method"], best["window_s"])]
    margins = sorted({0.0, pol.min_margin, *np.quantile(sel._margins(ls.scores),
                                                        np.linspace(0, 1, 15)).tolist()})
    curve = sel.false_activation_curve(ls, margins, **policy_params)
    decoder = sel.fit_decoder(best["method"], raws, freqs=data.freqs, channels=data.channels,
                              classes=data.classes, tmin=tmin, window=best["window_s"])
    selected = {**best, **rep}
    if data.has_rest and rep["false_per_min"] > far_target_per_min:
        _note(notes, f"Warning: no threshold holds {far_target_per_min:g} false activations "
                     f"per minute of rest on the calibration data (best "
                     f"{rep['false_per_min']:.2f}/min).")
    hit, n_targets = rep.get("target_segments_hit", 0), rep.get("target_segments", 0)
    if n_targets and hit / n_targets < WEAK_HIT_RATE:
        _note(notes, f"Warning: weak policy: with the chosen threshold (min_margin "
                     f"{pol.min_margin:.3g}) only {hit} of {n_targets} target trials "
                     f"({100 * hit / n_targets:.0f} %) gave a command on the calibration data; "
                     "expect missed selections. Record more (or cleaner) calibration trials, "
                     "or allow more false activations (--far-target).")
    # 4. the profile and the report
    cmap = dict(command_map) if command_map is not None else {
        freq_label(f): c for f, c in zip(data.freqs, DEFAULT_COMMANDS)}
    info = METHODS[best["method"]]
    profile = SubjectProfile.from_decoder(
        decoder, method=best["method"], ch_names=data.channels, sfreq=data.sfreq,
        window_s=best["window_s"], freqs=data.freqs,
        phases=list(phases) if phases is not None else None, command_map=cmap,
        policy=pol.to_dict(), cv_results=records, far_target_per_min=far_target_per_min,
        source_recordings=[str(s) for s in sources],
        extra={"step_s": step_s, "rest_model": rest_model if data.has_rest else None,
               "tmin": tmin, "guard_s": guard_s, "criterion": criterion,
               "selected": {k: selected[k] for k in ("accuracy", "itr_bits_per_min",
                                                     "false_per_min", "min_margin")},
               "phase_invariant": bool(info.get("phase_invariant", True)),
               "phase_locking": phase.to_dict() if phase is not None else None,
               "calibrated": bool(info.get("calibrated", False))},
    )
    report = CalibrationReport(records=records, selected={**selected,
                                                          "min_margin": pol.min_margin},
                               far_curve=curve, far_target_per_min=far_target_per_min,
                               notes=notes)
    if output is not None:
        profile.save(output)
        report.plot(output)
    return profile, report


def _note(notes: list[str], text: str) -> None:
    """A remark for the user, said once: in the report (``ssvep-exo calibrate`` prints it
    under the table) and the log (at INFO, so that the terminal does not show it twice)."""
    notes.append(text)
    logger.info("%s", text)


def check_command_map(command_map: Mapping[str, str], freqs: Sequence[float]) -> None:
    """Raise CalibrationError unless every label of ``command_map`` names a target of
    ``freqs`` (checked before any work: a calibration takes minutes)."""
    targets = [freq_label(f) for f in freqs]
    unknown = [str(k) for k in command_map if k not in targets]
    if unknown:
        raise CalibrationError(
            f"The command map names {', '.join(unknown)}, but the targets are "
            f"{', '.join(targets)}: map those frequencies (e.g. --commands "
            f"{','.join(f'{f:g}=...' for f in freqs)}).")


@dataclass(frozen=True)
class _CalibrationData:
    """What every step cuts the recordings with."""

    sfreq: float
    channels: list[str]
    freqs: list[float]
    classes: list[str]
    has_rest: bool
    raws: list
    tmin: float


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"Invalid value for the {name!r} parameter. Allowed values are "
                         f"{', '.join(map(repr, allowed))}, but got {value!r} instead.")


def _known_methods(methods: Sequence[str] | None) -> list[str]:
    """The candidate decoders (default :data:`bci.decoders.DEFAULT_METHODS`), all known."""
    methods = list(methods or DEFAULT_METHODS)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise CalibrationError(f"Unknown decoder method(s) {unknown}; choose from "
                               f"{', '.join(METHODS)}.")
    return methods


def _calibration_data(raws: list, channels, *, tmin: float,
                      rest_model: str) -> _CalibrationData:
    """Sampling rate, channels, target frequencies and classes of the recordings."""
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
    classes = [freq_label(f) for f in freqs]
    if has_rest and rest_model == "head":
        classes.append(REST_LABEL)
    return _CalibrationData(sfreq, ch, freqs, classes, has_rest, raws, tmin)


def _threshold_candidates(records: list[dict], data: _CalibrationData, sliding: dict,
                          far_target_per_min: float, policy_params: dict) -> dict:
    """Choose each candidate's no-control threshold on its out-of-fold sliding scores and
    replay its policy; add ``min_margin``, ``false_per_min``, ``target_segments_hit`` and
    ``target_segments`` to its record. Returns ``{(method, window_s): (scores, policy,
    replay)}``."""
    scored = {}
    for rec in records:
        ls = sel.sliding_scores(rec["method"], data.raws, freqs=data.freqs,
                                channels=data.channels, classes=data.classes, tmin=data.tmin,
                                window=rec["window_s"], **sliding)
        pol = sel.choose_thresholds(ls, far_target_per_min=far_target_per_min, **policy_params)
        rep = sel.replay_policy(ls, pol)
        rec.update({"min_margin": pol.min_margin, "false_per_min": rep["false_per_min"],
                    "target_segments_hit": rep["target_segments_hit"],
                    "target_segments": rep["target_segments"]})
        scored[(rec["method"], rec["window_s"])] = (ls, pol, rep)
    return scored


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


def _default_policy(step_s: float) -> dict:
    """:data:`DEFAULT_POLICY` (set for the online loop's 0.1 s step) with the same dwell time
    at ``step_s``."""
    pol = dict(DEFAULT_POLICY)
    pol["n_consecutive"] = max(1, int(round(pol["n_consecutive"] * 0.1 / float(step_s))))
    return pol


def _usable_windows(raws, windows, tmin: float) -> list[float]:
    """Windows that fit between ``tmin`` after a cue and the next cue (median trial)."""
    windows = sorted({float(w) for w in windows})
    if not windows or any(not (w > 0) for w in windows):
        raise ValueError(f"'windows' must be positive lengths in seconds, got {windows!r}.")
    if not tmin >= 0:
        raise CalibrationError(f"tmin must be >= 0 s (windows start after the cue), got "
                               f"{tmin:g}.")
    spacing = cue_spacing(raws)
    if spacing is None:
        return windows
    room = spacing - tmin
    ok = [w for w in windows if w <= room + 1e-9]
    if not ok:
        raise CalibrationError(
            f"No candidate window fits the trials: cues are {spacing:.2f} s apart and windows "
            f"start {tmin:g} s after the cue, leaving {room:.2f} s (windows {windows}). Use "
            "longer trials, a smaller tmin or shorter windows."
        )
    if len(ok) < len(windows):
        logger.warning("windows %s do not fit the %.2f s trials and are skipped",
                       [w for w in windows if w not in ok], spacing)
    return ok
