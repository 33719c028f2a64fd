"""End-of-session summary: commands issued, refused and why, scoring against the cues.

Works on a :class:`bci.app.record.SessionRecord`. Command events are the closed loop's
``"command"`` events (:func:`bci.app.menus.select`): ``{"t", "event": "command", "label",
"posture", "command", "result", "reason", "t_decision"}`` with ``result`` one of
``"executed"`` (forwarded and acknowledged), ``"refused"``, ``"awaiting_confirmation"``,
``"failed"``; ``"safety_stop"`` events are the stops the supervisor sent by itself (stall,
bad signal, lag, fault, link loss).

Where the source has cues, the selections are scored per cued trial by
:mod:`bci.evaluation.scoring`, the scorer of ``ssvep-exo evaluate --online``: hit / wrong /
none by the first selection of each target trial, what became of it (executed, refused and
why), the time from the cue, and false activations = selections during rest trials, whether
or not the exoskeleton executed them.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from bci.app.record import SessionRecord
from bci.evaluation.scoring import Selection, score_trials, totals
from bci.labels import freq_label, is_rest, label_to_freq


def _canon(label: str) -> str:
    if is_rest(label):
        return "rest"
    try:
        f = label_to_freq(label)
    except ValueError:
        return str(label)
    return freq_label(f) if f is not None else "rest"


def _pct(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def selections(record: SessionRecord) -> list[Selection]:
    """Every committed selection of the session (what the supervisor did with it, if known).

    From the command events when the session drove an exoskeleton, else (role ``decoder``)
    from the decisions.
    """
    cmds = [e for e in record.events if e.get("event") == "command"]
    if cmds:
        return [Selection(float(e.get("t_decision", e["t"])), _canon(str(e.get("label"))),
                          e.get("result"), e.get("command"), str(e.get("reason") or ""))
                for e in cmds]
    return [Selection(float(d["t_end"] if d.get("t_end") is not None else d["t"]),
                      _canon(d["outcome"]))
            for d in record.decisions if d.get("outcome") is not None
            and not is_rest(d["outcome"])]


def summarize(record: SessionRecord, *, speed: float = 1.0) -> dict[str, Any]:
    """Return the session summary as a JSON-able dict.

    Parameters
    ----------
    record : SessionRecord
        What happened.
    speed : float, default=1.0
        The source's speed factor (a synthetic or replayed source played faster than real
        time): the scoring against the cues (times from the cue, rest time, false
        activations per minute of rest, the trials' ``t``) is then in seconds of signal,
        the session's duration and the commands' times stay in seconds of real time.

    Returns
    -------
    summary : dict
        Keys: ``duration_s``, ``n_decisions``, ``commands_executed`` (list of
        ``{"t", "label", "command"}``), ``n_executed``, ``refused`` (reason -> count),
        ``n_awaiting_confirmation``, ``n_failed``, ``safety_stops`` (reason -> count),
        ``cues`` (per-trial scoring, :class:`bci.evaluation.scoring.TrialScore` rows, or
        None), ``scores`` (:func:`bci.evaluation.scoring.totals`), ``false_activations``,
        ``wrong_commands``, ``rest_s``, ``false_activations_per_min_rest``, ``latency``
        (processing, cue to command, command round trip, in seconds).
    """
    rec = record.snapshot()
    cmds = [e for e in rec.events if e.get("event") == "command"]
    executed = [e for e in cmds if e.get("result") == "executed"]
    refused = Counter(str(e.get("reason", "")) for e in cmds if e.get("result") == "refused")
    stops = Counter(str(e.get("reason", "")) for e in rec.events if e.get("event") == "safety_stop")
    t0 = rec.t0 if rec.t0 is not None else (rec.decisions[0]["t"] if rec.decisions else 0.0)
    t_end = rec.t_end if rec.t_end is not None else (
        rec.decisions[-1]["t"] if rec.decisions else t0)
    out: dict[str, Any] = {
        "duration_s": round(max(0.0, t_end - t0), 3),
        "n_decisions": len(rec.decisions),
        "commands_executed": [
            {"t": round(e["t"] - t0, 3), "label": e.get("label"), "command": e.get("command")}
            for e in executed
        ],
        "n_executed": len(executed),
        "refused": dict(refused),
        "n_awaiting_confirmation": sum(
            1 for e in cmds if e.get("result") == "awaiting_confirmation"),
        "n_failed": sum(1 for e in cmds if e.get("result") == "failed"),
        "safety_stops": dict(stops),
    }
    lat = [d["latency_s"] for d in rec.decisions if d.get("latency_s") is not None]
    rtt = [float(e["rtt_s"]) for e in executed if e.get("rtt_s") is not None]
    latency = {
        "processing_median_s": _pct(lat, 50),
        "processing_p95_s": _pct(lat, 95),
        "processing_max_s": max(lat) if lat else None,
        "command_round_trip_median_s": _pct(rtt, 50),
        "cue_to_command_median_s": None,
    }
    cues = sorted((t, _canon(lab)) for t, lab in rec.cues)
    rows = None
    if speed != 1.0:
        out["speed"] = speed

    def signal_time(t: float) -> float:  # seconds of signal since t0
        return t0 + (t - t0) * speed

    if cues:
        sel = [dataclasses.replace(c, t=signal_time(c.t)) for c in selections(rec)]
        trials = score_trials(sel, [signal_time(t) for t, _ in cues],
                              [lab for _, lab in cues], end_s=signal_time(t_end))
        tot = totals(trials)
        rows = []
        for tr in trials:
            row = tr.to_dict()
            row["t"] = round(tr.onset - t0, 3)
            rows.append(row)
        tot.pop("times_to_command_s")
        out["scores"] = tot
        med = tot["median_time_to_command_s"]
        latency["cue_to_command_median_s"] = None if med != med else med
    out["cues"] = rows
    sc = out.get("scores")
    out["false_activations"] = sc["n_false_activations"] if sc else None
    out["wrong_commands"] = sc["n_wrong_commands"] if sc else None
    out["rest_s"] = round(60 * sc["rest_minutes"], 3) if sc else None
    fa = sc["false_activations_per_min"] if sc else None
    out["false_activations_per_min_rest"] = round(fa, 3) if fa is not None and fa == fa \
        else None
    out["latency"] = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in latency.items()}
    return out


def format_summary(summary: dict[str, Any]) -> str:
    """Human-readable text of :func:`summarize`'s result."""
    lines = [f"Session: {summary['duration_s']:.1f} s, {summary['n_decisions']} decisions."]
    seq = ", ".join(c["command"] for c in summary["commands_executed"]) or "none"
    lines.append(f"Commands executed ({summary['n_executed']}): {seq}")
    if summary["refused"]:
        why = ", ".join(f"{k} x{v}" for k, v in sorted(summary["refused"].items()))
        lines.append(f"Commands refused: {why}")
    else:
        lines.append("Commands refused: none")
    if summary["n_awaiting_confirmation"]:
        lines.append(f"Selections awaiting confirmation: {summary['n_awaiting_confirmation']}")
    if summary["n_failed"]:
        lines.append(f"Commands failed (no ACK / link): {summary['n_failed']}")
    if summary["safety_stops"]:
        why = ", ".join(f"{k} x{v}" for k, v in sorted(summary["safety_stops"].items()))
        lines.append(f"Safety stops: {why}")
    if summary["cues"] is not None:
        sc = summary["scores"]
        ex = "" if sc.get("n_executed") is None else f" ({sc['n_executed']} executed)"
        lines.append(
            f"Against the cues: {sc['n_hits']}/{sc['n_target_trials']} target cues got the "
            f"right selection first{ex}, {sc['n_wrong_trials']} with a wrong one, "
            f"{sc['n_false_activations']} false activation(s) in {summary['rest_s']:.0f} s "
            "of rest"
            + (f" (seconds of signal, played x{summary['speed']:g})" if summary.get("speed")
               else ""))
    lat = summary["latency"]

    def ms(v: float | None) -> str:
        return "n/a" if v is None else f"{1000 * v:.1f} ms"

    lines.append(
        f"Latency: processing median {ms(lat['processing_median_s'])}, p95 "
        f"{ms(lat['processing_p95_s'])}; command round trip median "
        f"{ms(lat['command_round_trip_median_s'])}; cue to command median "
        + ("n/a" if lat["cue_to_command_median_s"] is None
           else f"{lat['cue_to_command_median_s']:.2f} s"))
    return "\n".join(lines)


def write_summary(summary: dict[str, Any], path: str | Path) -> Path:
    """Write the summary as indented JSON and return the path."""
    path = Path(path)
    path.write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    return path
