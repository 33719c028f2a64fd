"""The deployed path, measured: ``ssvep-exo evaluate --online``.

For every test session of a subject:

1. a subject profile is built from ANOTHER session of the same subject (the one recorded
   before it, or after it for the first session) by :func:`calibration.session.calibrate_raws`,
   the code ``ssvep-exo calibrate --from-file`` runs: model selection, the decision policy's
   threshold for the false-activation budget from out-of-fold scores, the decoder fitted on
   all the calibration trials;
2. the decoder, policy, window, step and channels come from that profile as ``ssvep-exo run``
   takes them (:func:`bci.app._parts.from_profile`), and the test session is replayed through
   the same :class:`bci.online.OnlineLoop` on a virtual clock (or over real LSL with
   ``via_lsl``);
3. every committed selection goes, at its time, through the command menus
   (:func:`bci.app.menus.select`) to the real safety supervisor, driver and simulated
   exoskeleton, run ``exec_speed`` times faster than real time, so each selection is
   executed or refused for the reason the supervisor gives. The recorded users followed
   cues, not the exoskeleton's posture, so by default posture changes are not confirmed by a
   second selection (as ``ssvep-exo demo --kalunga``): ``executed_rate`` then says how many
   right selections the menus turn into motion when the cue order ignores the posture;
4. selections are scored per cued trial by :mod:`bci.evaluation.scoring`, the scorer of the
   run summary.

Subjects with a single session are reported as not available (cross-session needs two).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from bci._logging import logger
from bci.app import _parts
from bci.app.config import SessionConfig
from bci.app.menus import CommandMenus, select
from bci.datasets import cue_table, load_recording
from bci.errors import BCIError
from bci.evaluation.harness import calibration_session
from bci.evaluation.scoring import Selection, pool, score_trials, totals
from bci.labels import is_rest
from bci.online.pseudo_online import replay, replay_lsl
from calibration.selection import MAX_FALSE_PER_MIN
from calibration.session import DEFAULT_WINDOWS, calibrate_raws
from devices.exoskeleton import ExoskeletonDriver
from devices.safety import SafetySupervisor
from devices.simulator import ExoSimulator

#: How much faster than real time the simulated exoskeleton runs while selections are
#: executed (its motion and the supervisor's confirmation window are scaled alike).
EXEC_SPEED = 20.0
#: Watchdog and dead-link time (s) of the simulated exoskeleton that executes the selections.
LINK_TIMING_S = 2.0


def execute(selections: Sequence[tuple[float, str]], menus: CommandMenus, *,
            speed: float = EXEC_SPEED, config: SessionConfig | None = None) -> list[dict]:
    """Send selections, at their times, through the menus and the real safety supervisor.

    A simulated exoskeleton (TCP, ``speed`` times faster) and the real driver and supervisor
    run in real time scaled by ``speed``: a selection at ``t`` s from the start of the
    recording is handled ``t / speed`` s after the start, when the exoskeleton is where it
    would be. Motion and supervisor settings come from ``config`` (default: the defaults of
    ``ssvep-exo run``); the confirmation window is divided by ``speed``.

    Returns
    -------
    events : list of dict
        The command event (:func:`bci.app.menus.select`) of each selection, in order.
    """
    cfg = config or SessionConfig()
    confirm = inspect.signature(SafetySupervisor).parameters["confirm_window_s"].default
    # what the menus and the supervisor make of the selections is measured here, not the
    # link's timing (docs/safety.md): a generous watchdog and dead-link time, so that a loaded
    # machine does not turn a right selection into a failed command
    sim = ExoSimulator(transport="tcp", speed=speed, step_s=cfg.device.sim_step_s,
                       watchdog_s=LINK_TIMING_S).start()
    out: list[dict] = []
    try:
        driver = ExoskeletonDriver(sim.url, link_timeout=LINK_TIMING_S).open()
        try:
            sup = _parts.make_supervisor(driver, cfg, menus, log=None,
                                         confirm_window_s=confirm / speed)
            start = time.monotonic()
            for t, label in sorted(selections):
                delay = start + t / speed - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                out.append(select(menus, sup, driver, label))
        finally:
            driver.close(stop=True)
    finally:
        sim.stop()
    return out


def evaluate_online(
    recordings: Mapping[str, Sequence[str | Path]],
    methods: Sequence[str],
    *,
    windows: Sequence[float] = DEFAULT_WINDOWS,
    max_false_per_min: float = MAX_FALSE_PER_MIN,
    step_s: float = 0.1,
    policy_params: Mapping | None = None,
    menus: Mapping | None = None,
    via_lsl: bool = False,
    speed: float = 20.0,
    exec_speed: float | None = EXEC_SPEED,
    confirm_posture_changes: bool = False,
    progress: Callable[[str], None] | None = None,
) -> list[dict]:
    """Calibrate on one session, run the profile on another; one record per subject/method.

    Parameters
    ----------
    recordings : mapping of str to sequence of path
        Subject -> session files (as :func:`bci.datasets.find_recordings` returns).
    methods : sequence of str
        Decoders to evaluate, each calibrated on its own (``calibrate --methods METHOD``).
    windows : sequence of float
        Candidate windows of the calibration (``calibrate --windows``).
    max_false_per_min : float, default=0.5
        The false-activation budget the threshold is set for (``calibrate --max-false``).
    step_s : float, default=0.1
        Step of the online loop (the profile's step).
    policy_params : mapping | None
        Overrides of the policy defaults (:data:`calibration.selection.POLICY_DEFAULTS`).
    menus : mapping | None
        Posture -> {label: command} (default: the defaults for the lights).
    via_lsl : bool, default=False
        Replay the test sessions over real LSL at ``speed`` instead of a virtual clock.
    speed : float, default=20.0
        LSL replay speed.
    exec_speed : float | None, default=20.0
        Speed of the simulated exoskeleton executing the selections (None: do not execute;
        ``executed_rate`` is then None).
    confirm_posture_changes : bool, default=False
        Whether stand and sit need a confirming second selection while executing.
    progress : callable | None
        Called with one line per test session.

    Returns
    -------
    records : list of dict
        Per subject and method: ``subject``, ``method``, the scores of
        :func:`bci.evaluation.scoring.totals` pooled over the subject's test sessions
        (``hit_rate``, ``wrong_command_rate``, ``false_activations_per_min``,
        ``median_time_to_command_s``, ``executed_rate``, counts), ``sessions`` (per test
        session: files, profile, calibration figures and the per-trial rows), ``available``.
    """
    if not recordings or not any(list(v) for v in recordings.values()):
        raise BCIError("No recordings to evaluate online: give recorded session files or a "
                       "folder that holds them (e.g. ../shared/data/kalunga2016).")
    records = []
    for subject, paths in recordings.items():
        paths = [Path(p) for p in paths]
        if len(paths) < 2:
            for method in methods:
                records.append({"subject": subject, "method": method, "available": False,
                                "note": "one session: cross-session evaluation needs two"})
            continue
        raws = [load_recording(p) for p in paths]
        for method in methods:
            t0 = time.perf_counter()
            profiles: dict[int, object] = {}
            sessions, recs = [], []
            for i, raw in enumerate(raws):
                j = calibration_session(i, len(raws))
                if j not in profiles:
                    profiles[j] = calibrate_raws(
                        [raws[j]], methods=[method], windows=windows,
                        max_false_per_min=max_false_per_min, step_s=step_s,
                        policy_params=policy_params, menus=menus,
                        sources=[str(paths[j])])[0]
                profile = profiles[j]
                row = _run_session(profile, raw, via_lsl=via_lsl, speed=speed,
                                   exec_speed=exec_speed, confirm=confirm_posture_changes)
                recs.append(row["totals"])
                sessions.append({"test": paths[i].name, "calibration": paths[j].name,
                                 **row["info"], "trials": row["trials"]})
                if progress is not None:
                    c = row["totals"]
                    progress(f"{subject} {method} {paths[i].name} <- {paths[j].name}: hits "
                             f"{c['n_hits']}/{c['n_target_trials']}, wrong "
                             f"{c['n_wrong_trials']}, false {c['n_false_activations']} "
                             f"(threshold {profile.policy['threshold']:.3g})")
            rec = {"subject": subject, "method": method, "available": True,
                   **pool(recs), "sessions": sessions,
                   "max_false_per_min": max_false_per_min, "step_s": step_s,
                   "replay": f"LSL at {speed:g}x" if via_lsl else "virtual clock",
                   "eval_s": round(time.perf_counter() - t0, 1)}
            logger.info("Pseudo-online %s %s: hit rate %.2f", subject, method, rec["hit_rate"])
            records.append(rec)
    return records


def _run_session(profile, raw, *, via_lsl: bool, speed: float, exec_speed: float | None,
                 confirm: bool):
    """Replay one test session with a profile; execute and score its selections."""
    decoder, policy, window_s, step_s, channels = _parts.from_profile(profile)
    step_s = step_s or 0.1
    if via_lsl:
        commits = replay_lsl(raw, decoder, policy, window_s=window_s, step_s=step_s,
                             speed=speed, picks=channels)
    else:
        decisions, _ = replay(raw, decoder, policy, window_s=window_s, step_s=step_s,
                              picks=channels)
        commits = [(d.window_end, d.outcome) for d in decisions
                   if d.outcome is not None and not is_rest(d.outcome)]
    menus = CommandMenus.build(profile.menus or None,
                               [c for c in profile.labels if not is_rest(c)])
    if exec_speed:
        cfg = SessionConfig({"device": {"confirm_posture_changes": confirm}})
        events = execute(commits, menus, speed=exec_speed, config=cfg)
        sel = [Selection(t, lab, e["result"], e["command"], e["reason"])
               for (t, lab), e in zip(sorted(commits), events)]
    else:
        sel = [Selection(t, lab) for t, lab in commits]
    onsets, labels = cue_table(raw)
    trials = score_trials(sel, onsets, labels, end_s=raw.n_times / raw.info["sfreq"])
    info = {"method": profile.method, "window_s": window_s, "step_s": step_s,
            "threshold": profile.policy.get("threshold"),
            "calibration_replay": profile.extra.get("calibration_replay")}
    return {"totals": totals(trials), "trials": [t.to_dict() for t in trials], "info": info}
