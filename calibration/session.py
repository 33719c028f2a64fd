"""Calibration from recordings: model selection, no-control threshold, profile.

:func:`calibrate_from_files` (and :func:`calibrate_raws` for recordings already loaded)
epochs the cued trials, cross-validates every candidate decoder x window length, picks the
best, sets the decision policy's evidence threshold for the false-activation budget
(commands per minute of rest, on the windows the online loop would decode, scored out of
fold), fits the chosen decoder on all the calibration data and returns a
:class:`~calibration.profile.SubjectProfile` and a
:class:`~calibration.report.CalibrationReport`. This is what ``ssvep-exo calibrate
--from-file`` runs, and what the pseudo-online evaluation (``ssvep-exo evaluate --online``)
runs on each calibration session.

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

from bci.datasets import cue_freqs, cue_table, load_recording, pick_channels
from bci.decoders import DEFAULT_METHODS, METHODS
from bci.evaluation.harness import N_FOLDS, SEED, out_of_fold_streams
from bci.labels import REST_LABEL, freq_label
from calibration import selection as sel
from calibration.errors import CalibrationError
from calibration.profile import SubjectProfile
from calibration.report import CalibrationReport

logger = logging.getLogger("calibration")

#: Candidate window lengths (s), chosen leave-one-subject-out (docs/evaluation.md).
DEFAULT_WINDOWS = (1.0, 1.5, 2.0)
#: Below this share of target trials reaching a command, the calibrated policy is reported as
#: weak (a warning with the figure; the profile is still written).
WEAK_HIT_RATE = 0.5


def calibrate_from_files(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    methods: Sequence[str] | None = None,
    windows: Sequence[float] = DEFAULT_WINDOWS,
    max_false_per_min: float = sel.MAX_FALSE_PER_MIN,
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
    criterion: str = "policy",
    menus: Mapping[str, Mapping[str, str]] | None = None,
    policy_params: Mapping[str, object] | None = None,
    phases: Sequence[float] | None = None,
    rest_model: str = "head",
    output: str | os.PathLike | None = None,
    sources: Sequence[str] = (),
    seed: int = SEED,
    allow_no_rest: bool = False,
) -> tuple[SubjectProfile, CalibrationReport]:
    """Model selection, threshold and fitting on loaded recordings (see
    :func:`calibrate_from_files`).

    Parameters
    ----------
    raws : sequence of mne.io.Raw
        Recordings with cue annotations (same channels and sampling rate), with rest trials
        (see ``allow_no_rest``).
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
    criterion : {"policy", "accuracy", "itr"}, default="policy"
        What the selection maximises. ``"policy"`` (the deployed criterion): for the most
        accurate decoder at each candidate window, the calibration data is replayed out of
        fold through the decision policy with the threshold for the budget, and the window
        with the most right first commands (within 3 % wrong; then the shorter median time
        from the cue) is chosen. ``"accuracy"``/``"itr"``: cross-validated accuracy or ITR
        (ties: the shorter window).
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
        How no-control is recognised. ``"head"``: the decoder learns a rest class, and the
        policy's threshold is set on top; ``"threshold"``: the decoder classifies targets
        only and no-control is only the policy's threshold.
    output : path-like | None
        When given, the profile is saved there and the report's plots written there.
    sources : sequence of str
        Names of the recordings (stored in the profile).
    seed : int, default=42
        Cross-validation seed.
    allow_no_rest : bool, default=False
        Accept recordings without rest trials: no threshold can then be set for a
        false-activation budget, and the policy commits any target that leads for a moment
        (a warning says so). Refused by default.
    """
    raws = list(raws)
    if not raws:
        raise ValueError("'raws' must hold at least one recording.")
    _check_choice("rest_model", rest_model, ("head", "threshold"))
    _check_choice("criterion", criterion, ("policy", "accuracy", "itr"))
    if isinstance(max_false_per_min, bool) or not isinstance(max_false_per_min, (int, float)) \
            or not max_false_per_min >= 0:
        raise ValueError(f"'max_false_per_min' must be a number >= 0, got "
                         f"{max_false_per_min!r}.")
    named = bool(methods)
    methods = _known_methods(methods)
    data = _calibration_data(raws, channels, tmin=tmin, rest_model=rest_model)
    _check_menu_labels(menus, data.freqs)
    windows = _usable_windows(raws, windows, tmin)
    notes: list[str] = []
    if not data.has_rest:
        if not allow_no_rest:
            raise CalibrationError(
                "The recordings have no rest (no-control) trials, so no threshold can be "
                "chosen that keeps the exoskeleton still while the user looks away. Record "
                "rest trials (a live calibration does by default), or accept a profile that "
                "commands whenever a target leads with --allow-no-rest (allow_no_rest=True).")
        _note(notes, "Warning: no rest trials: no threshold for a false-activation budget; "
                     "any target that leads for a moment gives a command, also while the "
                     "user looks away.")
    phase = None
    templates = [m for m in methods if not METHODS[m].get("phase_invariant", True)]
    if templates and not named:
        methods, phase = _prune_templates(raws, methods, templates, tmin=tmin,
                                          window_s=max(windows), channels=data.channels,
                                          notes=notes)
    pp = {**sel.POLICY_DEFAULTS, **dict(policy_params or {})}

    # 1. every candidate decoder x window, cross-validated on the cued trials
    records = sel.cross_validate(raws, methods=methods, windows=windows, freqs=data.freqs,
                                 channels=data.channels, classes=data.classes, tmin=tmin,
                                 n_folds=n_folds, seed=seed, notes=notes)
    key = "itr_bits_per_min" if criterion == "itr" else "accuracy"

    def best_of(recs):
        return max(recs, key=lambda r: (round(r[key], 6), -r["window_s"]))

    # 2. the threshold: out-of-fold scores of the windows the online loop decodes; with
    # criterion "policy", for the best decoder at each window, and the window whose replay
    # of the calibration data is best by the deployed criterion (sel.policy_rank)
    if criterion == "policy":
        key = "accuracy"
        tried = [best_of([r for r in records if r["window_s"] == w])
                 for w in sorted({r["window_s"] for r in records})]
    else:
        tried = [best_of(records)]
    options = []
    for cand in tried:
        m, w = cand["method"], cand["window_s"]
        streams = out_of_fold_streams(
            sel.decoder(m, sfreq=data.sfreq, freqs=data.freqs), raws, tmin=tmin,
            window_s=w, classes=data.classes, channels=data.channels,
            train_span=METHODS[m].get("train_span"), step=step_s, n_folds=n_folds,
            seed=seed)
        params = {**sel.rest_tail_params(m, w), **pp}
        pol, cal = sel.choose_threshold(streams, max_false_per_min=max_false_per_min,
                                        params=params, allow_no_rest=allow_no_rest)
        options.append((cand, streams, params, pol, cal))
        if criterion == "policy":
            logger.info("policy %s %.2f s: hits %.3f, wrong %.3f (calibration, out of fold)",
                        m, w, cal["hit_rate"], cal["wrong_command_rate"])
    best, streams, pp, pol, cal = max(options, key=lambda o: sel.policy_rank(o[4]))
    method, window = best["method"], best["window_s"]
    curve = sel.threshold_curve(streams, pol.threshold, pp)
    if data.has_rest and not cal["held"]:
        _note(notes, f"Warning: no threshold holds {max_false_per_min:g} false activations "
                     f"per minute of rest by the model of the calibration's rest (predicted "
                     f"{cal['predicted']['per_min']:.2f}/min at the highest threshold).")
    if cal["n_target_trials"] and cal["hit_rate"] < WEAK_HIT_RATE:
        _note(notes, f"Warning: weak policy: with the chosen threshold ({pol.threshold:.3g}) "
                     f"only {cal['n_hits']} of {cal['n_target_trials']} target trials "
                     f"({100 * cal['hit_rate']:.0f} %) gave the right command first on the "
                     "calibration data (out of fold); expect missed selections. Record more "
                     "(or cleaner) calibration trials, or allow more false activations "
                     "(--max-false).")
    # 3. the best candidate, fitted on all the data
    tr = sel.trials(raws, method=method, tmin=tmin, window_s=window, channels=data.channels,
                    classes=data.classes)
    decoder = sel.fit(method, tr, tr.trial, sfreq=data.sfreq, freqs=data.freqs)
    # 4. the profile and the report
    expected = {k: cal[k] for k in ("hit_rate", "wrong_command_rate",
                                    "false_activations_per_min", "median_time_to_command_s")}
    pred = cal.get("predicted")
    predicted = None if pred is None else {
        "per_min": pred["per_min"], "interval": pred["interval"],
        "coverage": pred["coverage"], "rest_minutes": cal["rest_minutes"],
        "rest_tail": pred["rest_tail"]}
    selected = {**best, "threshold": pol.threshold,
                "false_per_min": cal["false_activations_per_min"], **expected,
                "predicted_false": predicted}
    info = METHODS[method]
    profile = SubjectProfile.from_decoder(
        decoder, method=method, ch_names=data.channels, sfreq=data.sfreq, window_s=window,
        freqs=data.freqs, phases=list(phases) if phases is not None else None,
        menus={k: dict(v) for k, v in (menus or {}).items()},
        policy=pol.to_dict(), cv_results=records, max_false_per_min=max_false_per_min,
        source_recordings=[str(s) for s in sources],
        extra={"step_s": step_s, "rest_model": rest_model if data.has_rest else None,
               "tmin": tmin,
               "criterion": criterion,
               "policy_params": {k: pp[k] for k in ("drift", "clip", "margin")},
               "threshold_at_budget": cal["threshold_at_budget"],
               "predicted_false": predicted,
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


@dataclass(frozen=True)
class _CalibrationData:
    """What every step cuts the recordings with."""

    sfreq: float
    channels: list[str]
    freqs: list[float]
    classes: list[str]
    has_rest: bool


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
    return _CalibrationData(sfreq, ch, freqs, classes, has_rest)


def _check_menu_labels(menus: Mapping[str, Mapping[str, str]] | None, freqs) -> None:
    """Raise CalibrationError unless every light the menus name is a target of ``freqs``
    (checked before any work: a calibration takes minutes; the application checks the
    commands against the safety supervisor's table)."""
    targets = [freq_label(f) for f in freqs]
    unknown = sorted({str(k) for m in (menus or {}).values() for k in m if k not in targets})
    if unknown:
        raise CalibrationError(
            f"The menus name {', '.join(unknown)}, but the targets are {', '.join(targets)}: "
            "name the frequencies of the calibration's lights.")


def _note(notes: list[str], text: str) -> None:
    """A remark for the user, said once: in the report (``ssvep-exo calibrate`` prints it
    under the table) and the log (at INFO, so that the terminal does not show it twice)."""
    notes.append(text)
    logger.info("%s", text)


def _prune_templates(raws, methods: list[str], templates: list[str], *, tmin: float,
                     window_s: float, channels, notes: list[str]):
    """Drop the template decoders from the default candidates on free-running-light data.

    Template decoders score at chance when the response phase changes from trial to trial;
    :func:`calibration.selection.phase_check` tells. Returns the candidates and the check;
    the one-line explanation goes to ``notes`` (and the log).
    """
    phase = sel.phase_check(raws, tmin=tmin, window_s=window_s, channels=channels)
    if phase.locked is False:
        kept = [m for m in methods if m not in templates]
        _note(notes, f"Cues are not phase-locked (ITC {phase.itc:.2f} vs chance "
                     f"{phase.chance:.2f}, p={phase.p_value:.2g}): template decoders "
                     f"({', '.join(templates)}) skipped; name them with --methods to try "
                     "anyway.")
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
