"""Pseudo-online evaluation: replay recordings through the whole online loop and score them
as an exoskeleton user would feel it.

For each recorded session (the *test* session) a decoder is built, calibrated (when the method
needs it) on ANOTHER session of the same subject, and the decision policy's ``min_margin`` is
chosen on that same calibration session (:meth:`DecisionPolicy.fit_thresholds`). The test
session is then stepped through :class:`OnlineLoop` on a :class:`RecordingSource` (a virtual
clock, faster than real time) and the committed commands are scored against the cues:

- a cued target trial is a *hit* when the first command issued between its cue and the next
  cue is the cued target; ``time_to_command_s`` is that command's delay after the cue;
- a target trial has a *wrong command* when any command in that interval is another target;
- commands issued during rest trials (from their cue to the next cue) are *false activations*,
  reported per minute of rest-trial time.

A subject with a single session is calibrated on its even-numbered trials and scored on the
odd-numbered ones (the record's ``calibration`` says so).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from bci._logging import logger
from bci.acquisition import EEGStream
from bci.datasets import cue_table, epoch, load_recording
from bci.decoders import METHODS, make_decoder
from bci.errors import BCIError
from bci.labels import REST_LABEL, is_rest, label_to_freq
from bci.online.loop import OnlineLoop, class_labels
from bci.online.offline_source import RecordingSource
from bci.online.policy import DecisionPolicy
from bci.sources import RecordingPlayer

#: Policy defaults chosen on the Kalunga calibration measurements (see docs/online.md).
DEFAULT_POLICY = {
    "n_consecutive": 11,
    "refractory_s": 1.0,
    "release_s": 1.0,
}
DEFAULT_MAX_FALSE_PER_MIN = 1.0


# ---------------------------------------------------------------------- scoring
def score_commands(
    commands: Sequence[tuple[float, str]],
    onsets: np.ndarray,
    labels: Sequence[str],
    end_s: float,
    *,
    scored: np.ndarray | None = None,
) -> dict:
    """Score committed commands against cues.

    Parameters
    ----------
    commands : sequence of (float, str)
        Time (s from the start of the recording, the decoded window's last sample) and label
        of every committed command.
    onsets : ndarray, shape (n_cues,)
        Cue onsets, seconds, sorted.
    labels : sequence of str
        Cue labels (targets ``"13.0Hz"``..., ``"rest"``).
    end_s : float
        End of the recording; the last trial ends at the next cue time it would have had
        (median spacing) or here, whichever comes first.
    scored : ndarray of bool | None
        Trials to score (default all), e.g. the held-apart ones.

    Returns
    -------
    counts : dict
        ``n_target_trials``, ``n_hits``, ``n_wrong_trials``, ``n_wrong_commands``,
        ``times_to_command`` (list, hits only), ``n_rest_trials``, ``rest_s``,
        ``n_false_activations``, ``n_commands``.
    """
    onsets = np.asarray(onsets, float)
    n = len(onsets)
    gaps = np.diff(onsets)
    last = float(np.median(gaps)) if gaps.size else end_s - onsets[-1]
    ends = np.append(onsets[1:], min(onsets[-1] + last, end_s)) if n else onsets
    scored = np.ones(n, bool) if scored is None else np.asarray(scored, bool)
    ct = np.array([c[0] for c in commands], float)
    cl = [c[1] for c in commands]
    out = {
        "n_target_trials": 0,
        "n_hits": 0,
        "n_wrong_trials": 0,
        "n_wrong_commands": 0,
        "times_to_command": [],
        "n_rest_trials": 0,
        "rest_s": 0.0,
        "n_false_activations": 0,
        "n_commands": len(commands),
    }
    for i in range(n):
        if not scored[i]:
            continue
        idx = np.flatnonzero((ct >= onsets[i]) & (ct < ends[i])) if ct.size else []
        issued = [cl[j] for j in idx]
        if is_rest(labels[i]):
            out["n_rest_trials"] += 1
            out["rest_s"] += float(ends[i] - onsets[i])
            out["n_false_activations"] += len(issued)
            continue
        out["n_target_trials"] += 1
        wrong = [c for c in issued if c != labels[i]]
        out["n_wrong_commands"] += len(wrong)
        out["n_wrong_trials"] += bool(wrong)
        if issued and issued[0] == labels[i]:
            out["n_hits"] += 1
            out["times_to_command"].append(float(ct[idx[0]] - onsets[i]))
    return out


def _summarise(counts: list[dict]) -> dict:
    tot = {k: 0 for k in ("n_target_trials", "n_hits", "n_wrong_trials", "n_wrong_commands",
                          "n_rest_trials", "n_false_activations", "n_commands")}
    rest_s = 0.0
    times: list[float] = []
    for c in counts:
        for k in tot:
            tot[k] += c[k]
        rest_s += c["rest_s"]
        times += c["times_to_command"]
    nt = tot["n_target_trials"]
    return {
        **tot,
        "rest_minutes": rest_s / 60.0,
        "hit_rate": tot["n_hits"] / nt if nt else float("nan"),
        "wrong_commands": tot["n_wrong_trials"],
        "wrong_command_rate": tot["n_wrong_trials"] / nt if nt else float("nan"),
        "false_activations_per_min": (
            tot["n_false_activations"] / (rest_s / 60.0) if rest_s > 0 else float("nan")
        ),
        "median_time_to_command_s": float(np.median(times)) if times else float("nan"),
        "times_to_command_s": times,
    }


# ---------------------------------------------------------------------- replay helpers
def window_labels(
    ends: np.ndarray, onsets: np.ndarray, labels: Sequence[str], *,
    use: np.ndarray | None = None,
) -> list[str | None]:
    """The cued trial each window ends in (its label), None before the first cue or unused."""
    onsets = np.asarray(onsets, float)
    use = np.ones(len(onsets), bool) if use is None else np.asarray(use, bool)
    out: list[str | None] = []
    for t in ends:
        i = int(np.searchsorted(onsets, t, side="right")) - 1
        out.append(str(labels[i]) if i >= 0 and use[i] else None)
    return out


def replay(
    raw, decoder, policy: DecisionPolicy, *, window_s: float, step_s: float, picks=None,
    on_decision=None,
) -> tuple[list, OnlineLoop]:
    """Step a recording through :class:`OnlineLoop`; return (decisions, loop)."""
    src = RecordingSource(raw, picks=picks, start_s=window_s)
    decisions: list = []
    cb = decisions.append if on_decision is None else on_decision
    loop = OnlineLoop(src, decoder, policy, window_s=window_s, step_s=step_s, on_decision=cb,
                      max_lag_s=max(1.0, 2 * step_s))
    while not src.finished:
        loop.step()
        src.advance(step_s)
    return decisions, loop


def replay_lsl(
    raw, decoder, policy: DecisionPolicy, *, window_s: float, step_s: float, speed: float = 20.0,
    name: str | None = None,
) -> list[tuple[float, str]]:
    """Replay a recording over real LSL (RecordingPlayer -> EEGStream -> OnlineLoop.run).

    The policy's times are LSL-clock seconds, so its ``refractory_s`` and ``release_s`` are
    divided by ``speed``. Returns the committed commands as (seconds from the start of the
    recording, label), mapped back through the player's cue markers.
    """
    import threading
    import uuid

    import pylsl


    fast = DecisionPolicy.from_dict({
        **policy.to_dict(), "refractory_s": policy.refractory_s / speed,
        "release_s": policy.release_s / speed,
    })
    name = name or f"pseudo-online-{uuid.uuid4().hex[:8]}"
    commands: list[tuple[float, str]] = []
    player = RecordingPlayer(raw, name=name, speed=speed).open()
    stream = EEGStream(name=name, source_id=name, buffer_s=max(10.0, 4 * window_s))
    stop = threading.Event()
    try:
        stream.connect()
        loop = OnlineLoop(
            stream, decoder, fast, window_s=window_s, step_s=step_s / speed,
            on_decision=lambda d: d.outcome is not None and commands.append(
                (d.window_end, d.outcome)),
            max_lag_s=max(0.25, 2 * step_s / speed),
        )
        th = threading.Thread(target=loop.run, args=(stop,), daemon=True)
        t_start = pylsl.local_clock()
        player.start()
        th.start()
        player.wait(raw.times[-1] / speed + 30.0)
        stop.set()
        th.join(5.0)
        markers = list(player.markers_sent)
    finally:
        stream.disconnect()
        player.close()

    onsets, _ = cue_table(raw)
    # LSL time of the recording's first sample, from the first cue marker.
    t0 = markers[0][0] - onsets[0] / speed if markers and len(onsets) else t_start
    return [((t - t0) * speed, lab) for t, lab in commands]


# ---------------------------------------------------------------------- evaluation
def _default_factory(method: str, sfreq: float, freqs: list[float]):
    return make_decoder(method, sfreq=sfreq, freqs=freqs)


def _method_info(method: str) -> dict:
    info = METHODS.get(method, {})
    return dict(info) if isinstance(info, Mapping) else dict(vars(info))


def _fit_decoder(factory, method, raw_cal, freqs, window_s, use=None, calibrated=None):
    sfreq = float(raw_cal.info["sfreq"])
    decoder = factory(method, sfreq, freqs)
    info = _method_info(method)
    if calibrated is None:
        calibrated = bool(info.get("calibrated", False))
    if not calibrated:
        # Training-free: fit without labels on a blank window of the online length.
        n_samples = int(round(window_s * sfreq))
        return decoder.fit(np.zeros((1, len(raw_cal.ch_names), n_samples)), None)
    offsets = info.get("train_offsets") or [0.0]
    Xs, ys = [], []
    for off in [0.0, *[o for o in offsets if o]]:
        X, y, _ = epoch(raw_cal, tmin=2.0 + float(off), window=window_s)
        if use is not None:
            X, y = X[use], y[use]
        Xs.append(X)
        ys.append(y)
    decoder.fit(np.concatenate(Xs), np.concatenate(ys))
    return decoder


def evaluate_online(
    recordings: Mapping[str, Sequence[Path]],
    methods: Sequence[str],
    *,
    window_s: float = 1.0,
    step_s: float = 0.1,
    policy_params: Mapping | None = None,
    max_false_per_min: float = DEFAULT_MAX_FALSE_PER_MIN,
    decoder_factory: Callable[[str, float, list[float]], object] | None = None,
    calibrated: Mapping[str, bool] | None = None,
    progress: Callable[[str], None] | None = None,
    via_lsl: bool = False,
    speed: float = 20.0,
) -> list[dict]:
    """Replay every session through the online loop and score it; one record per subject/method.

    Parameters
    ----------
    recordings : mapping of str to sequence of Path
        Subject -> session files (as :func:`bci.datasets.find_recordings` returns).
    methods : sequence of str
        Decoder names of the registry (:data:`bci.decoders.METHODS`).
    window_s : float, default=1.0
        Decoding window, seconds.
    step_s : float, default=0.1
        Step of the online loop, seconds.
    policy_params : mapping | None
        Overrides of :data:`DEFAULT_POLICY` (``n_consecutive``, ``refractory_s``,
        ``release_s``, ``min_margin``; a given ``min_margin`` disables threshold calibration).
    max_false_per_min : float, default=1.0
        False-activation target used to choose ``min_margin`` on the calibration session.
    decoder_factory : callable | None
        ``f(method, sfreq, freqs) -> unfitted estimator`` (default
        :func:`bci.decoders.make_decoder`).
    calibrated : mapping of str to bool | None
        Whether each method needs calibration data (default: the registry says).
    progress : callable | None
        Called with a one-line status per replayed session.
    via_lsl : bool, default=False
        Replay the test sessions over real LSL (:class:`bci.sources.RecordingPlayer` ->
        :class:`bci.acquisition.EEGStream` -> :meth:`OnlineLoop.run`) at ``speed`` instead of
        stepping a virtual clock. Thresholds are still chosen on the virtual-clock replay.
    speed : float, default=20.0
        Replay speed factor for ``via_lsl``.

    Returns
    -------
    records : list of dict
        One per subject and method with ``subject``, ``method``, ``hit_rate``,
        ``false_activations_per_min``, ``wrong_commands`` (target trials with a wrong
        command), ``wrong_command_rate``, ``median_time_to_command_s``, counts,
        ``calibration`` (how thresholds/decoders were calibrated), ``sessions``,
        ``window_s``, ``step_s``, ``policy`` and ``min_margins``.
    """

    factory = decoder_factory or _default_factory
    pp = {**DEFAULT_POLICY, **dict(policy_params or {})}
    fixed_margin = "min_margin" in pp
    records = []
    for subject, paths in recordings.items():
        paths = list(paths)
        if not paths:
            continue
        raws = [load_recording(p) for p in paths]
        cues = [cue_table(r) for r in raws]
        for method in methods:
            is_cal = (calibrated or {}).get(method)
            counts, margins, pairs = [], [], []
            t0 = time.perf_counter()
            for i, raw in enumerate(raws):
                onsets, labels = cues[i]
                if len(raws) > 1:
                    j = (i + 1) % len(raws)
                    raw_cal, cal_onsets, cal_labels = raws[j], *cues[j]
                    cal_use = None
                    test_use = None
                    pairs.append(f"{Path(paths[i]).name} <- {Path(paths[j]).name}")
                else:
                    j = i
                    raw_cal, cal_onsets, cal_labels = raw, onsets, labels
                    cal_use = np.arange(len(onsets)) % 2 == 0
                    test_use = ~cal_use
                    pairs.append(f"{Path(paths[i]).name}: odd trials <- even trials")
                freqs = sorted(
                    {label_to_freq(lab) for lab in list(labels) + list(cal_labels)
                     if not is_rest(lab)}
                )
                decoder = _fit_decoder(factory, method, raw_cal, freqs, window_s,
                                       use=cal_use, calibrated=is_cal)
                classes = class_labels(decoder.classes_)
                policy = DecisionPolicy(classes, rest_label=REST_LABEL, **pp)
                if not fixed_margin:
                    cal_policy = DecisionPolicy(classes, rest_label=REST_LABEL,
                                                **{**pp, "min_margin": np.inf})
                    decs, _ = replay(raw_cal, decoder, cal_policy, window_s=window_s,
                                     step_s=step_s)
                    ends = np.array([d.window_end for d in decs])
                    wl = window_labels(ends, cal_onsets, cal_labels, use=cal_use)
                    scores = np.array([d.scores for d in decs])
                    policy.fit_thresholds(scores, wl, step_s=step_s,
                                          max_false_per_min=max_false_per_min)
                margins.append(policy.min_margin)
                if via_lsl:
                    commands = replay_lsl(raw, decoder, policy, window_s=window_s,
                                          step_s=step_s, speed=speed)
                else:
                    decs, _ = replay(raw, decoder, policy, window_s=window_s, step_s=step_s)
                    commands = [(d.window_end, d.outcome) for d in decs
                                if d.outcome is not None]
                c = score_commands(commands, onsets, labels, raw.times[-1], scored=test_use)
                counts.append(c)
                if progress is not None:
                    progress(
                        f"{subject} {method} {Path(paths[i]).name}: hits {c['n_hits']}/"
                        f"{c['n_target_trials']}, wrong {c['n_wrong_trials']}, "
                        f"false {c['n_false_activations']} (margin {policy.min_margin:.4g})"
                    )
            rec = {
                "subject": subject,
                "method": method,
                **_summarise(counts),
                "window_s": window_s,
                "step_s": step_s,
                "n_sessions": len(raws),
                "calibration": "another session of the same subject" if len(raws) > 1
                else "held-apart trials (even trials calibrate, odd trials are scored)",
                "sessions": pairs,
                "policy": {k: v for k, v in pp.items()},
                "min_margins": [float(m) for m in margins],
                "eval_s": time.perf_counter() - t0,
                "replay": f"LSL at {speed:g}x" if via_lsl else "virtual clock",
            }
            logger.info("Pseudo-online %s %s: hit rate %.2f", subject, method, rec["hit_rate"])
            records.append(rec)
    return records


def overall(records: Sequence[Mapping]) -> list[dict]:
    """Pool records per method (trial counts summed, median over every hit)."""
    out = []
    for method in dict.fromkeys(r["method"] for r in records):
        rs = [r for r in records if r["method"] == method]
        nt = sum(r["n_target_trials"] for r in rs)
        rest_min = sum(r["rest_minutes"] for r in rs)
        out.append({
            "subject": "ALL",
            "method": method,
            "n_target_trials": nt,
            "n_hits": sum(r["n_hits"] for r in rs),
            "hit_rate": sum(r["n_hits"] for r in rs) / nt if nt else float("nan"),
            "wrong_commands": sum(r["wrong_commands"] for r in rs),
            "wrong_command_rate": sum(r["wrong_commands"] for r in rs) / nt if nt else float("nan"),
            "n_false_activations": sum(r["n_false_activations"] for r in rs),
            "rest_minutes": rest_min,
            "false_activations_per_min": (
                sum(r["n_false_activations"] for r in rs) / rest_min if rest_min else float("nan")
            ),
            "median_time_to_command_s": _median(
                [t for r in rs for t in r.get("times_to_command_s", [])]
            ),
        })
    return out


def _median(values: list[float]) -> float:
    return float(np.median(values)) if values else float("nan")


def format_online_table(records: Sequence[Mapping], *, with_overall: bool = True) -> str:
    """Plain-text table of pseudo-online records, per subject and (optionally) overall."""
    rows = list(records) + (overall(records) if with_overall and records else [])
    head = (f"{'subject':<10} {'method':<12} {'hits':>9} {'hit %':>6} {'wrong':>6} "
            f"{'wrong %':>7} {'false/min':>9} {'median s':>8}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{str(r['subject']):<10} {str(r['method']):<12} "
            f"{r['n_hits']:>4}/{r['n_target_trials']:<4} {100 * r['hit_rate']:>6.1f} "
            f"{r['wrong_commands']:>6} {100 * r['wrong_command_rate']:>7.1f} "
            f"{r['false_activations_per_min']:>9.2f} {r['median_time_to_command_s']:>8.2f}"
        )
    return "\n".join(lines)


def check_recordings(recordings: Mapping[str, Sequence[Path]]) -> None:
    """Raise BCIError when there is nothing to evaluate."""
    if not recordings or not any(list(v) for v in recordings.values()):
        raise BCIError(
            "No recordings to evaluate online: give recorded session files or a folder that "
            "holds them (e.g. ../shared/data/kalunga2016)."
        )
