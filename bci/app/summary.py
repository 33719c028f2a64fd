"""End-of-session summary: commands issued, refused and why, false activations, latencies.

Works on a :class:`bci.app.record.SessionRecord`. Command events are the closed loop's
normalised ``"command"`` events: ``{"t", "event": "command", "label", "command", "result",
"reason"}`` with ``result`` one of ``"executed"`` (forwarded and acknowledged),
``"refused"``, ``"awaiting_confirmation"``, ``"failed"``; ``"safety_stop"`` events are the
stops the supervisor sent by itself (stall, bad signal, lag, fault, link loss).

Scoring against cues (where the source has cues): a command at time ``t`` belongs to the cue
in effect at ``t``, except that a command for the previous cue within ``grace_s`` of a cue
change belongs to that previous cue (``grace_s`` defaults to the decoding window: a window
that ends just after a cue change still holds the previous cue's data). A command during a
rest cue is a false activation; a command from another target than the cued one is a wrong
command. A target cue is hit when its command was executed or, for posture changes that need
a confirmation, selected (the confirming selection usually comes with the next cue).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from bci.app.record import SessionRecord
from bci.labels import freq_label, is_rest, label_to_freq


def _canon(label: str) -> str:
    if is_rest(label):
        return "rest"
    try:
        f = label_to_freq(label)
    except ValueError:
        return str(label)
    return freq_label(f) if f is not None else "rest"


def _cue_at(cues: list[tuple[float, str]], t: float) -> tuple[int, str] | None:
    idx = None
    for i, (tc, _) in enumerate(cues):
        if tc <= t:
            idx = i
        else:
            break
    return None if idx is None else (idx, cues[idx][1])


def _pct(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def summarize(record: SessionRecord, *, grace_s: float = 1.0) -> dict[str, Any]:
    """Return the session summary as a JSON-able dict.

    Parameters
    ----------
    record : SessionRecord
        What happened.
    grace_s : float, default=1.0
        A command for the cue that ended less than ``grace_s`` before it counts for that cue.

    Returns
    -------
    summary : dict
        Keys: ``duration_s``, ``n_decisions``, ``commands_executed`` (list of
        ``{"t", "label", "command"}``), ``n_executed``, ``refused`` (reason -> count),
        ``n_awaiting_confirmation``, ``n_failed``, ``safety_stops`` (reason -> count),
        ``cues`` (per-cue scoring or None), ``false_activations``, ``wrong_commands``,
        ``false_activations_per_min_rest``, ``latency`` (processing, cue to command,
        command round trip, in seconds).
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
    cue_rows = None
    false_act = wrong = 0
    rest_s = 0.0
    if cues:
        bounds = [t for t, _ in cues[1:]] + [t_end]
        cue_rows = []
        for (tc, lab), tn in zip(cues, bounds):
            row = {"t": round(tc - t0, 3), "label": lab, "duration_s": round(tn - tc, 3),
                   "expected": rec.mapping.get(lab) if lab != "rest" else None,
                   "commands": [], "hit": None, "time_to_command_s": None}
            cue_rows.append(row)
            if lab == "rest":
                rest_s += max(0.0, tn - tc)
        selected = [e for e in cmds if e.get("result") in ("executed", "awaiting_confirmation")]
        for e in selected:
            hit = _cue_at(cues, e["t"])
            if hit is None:
                continue
            i, lab = hit
            elab = _canon(str(e.get("label")))
            if lab != elab and i > 0 and e["t"] - cues[i][0] < grace_s \
                    and cues[i - 1][1] == elab:
                i, lab = i - 1, elab  # late command for the cue that just ended
            row = cue_rows[i]
            done = e.get("result") == "executed"
            if done:
                row["commands"].append(e.get("command"))
            if lab == "rest":
                false_act += done
            elif _canon(str(e.get("label"))) != lab:
                wrong += done
            elif row["hit"] is None:
                row["hit"] = True
                row["time_to_command_s"] = round(e["t"] - cues[i][0], 3)
        for row in cue_rows:
            if row["label"] != "rest" and row["hit"] is None:
                row["hit"] = False
        ttc = [r["time_to_command_s"] for r in cue_rows if r["time_to_command_s"] is not None]
        latency["cue_to_command_median_s"] = _pct(ttc, 50)
    out["cues"] = cue_rows
    out["false_activations"] = false_act if cues else None
    out["wrong_commands"] = wrong if cues else None
    out["rest_s"] = round(rest_s, 3) if cues else None
    out["false_activations_per_min_rest"] = (
        round(false_act / (rest_s / 60.0), 3) if cues and rest_s > 0 else None)
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
        targets = [r for r in summary["cues"] if r["label"] != "rest"]
        hits = sum(1 for r in targets if r["hit"])
        lines.append(
            f"Against the cues: {hits}/{len(targets)} target cues got their command, "
            f"{summary['wrong_commands']} wrong command(s), {summary['false_activations']} "
            f"false activation(s) in {summary['rest_s']:.0f} s of rest")
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
