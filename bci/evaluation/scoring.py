"""The one scorer of committed selections against cued trials.

Used by the pseudo-online evaluation (``ssvep-exo evaluate --online``) and by the summary of
every closed-loop session (:mod:`bci.app.summary`), so both say the same thing about the same
decisions.

Rules
-----
- Trial ``i`` runs from its cue to the next cue; the last trial ends one cue spacing (the
  median interval between cues) after its cue, or at the end of the data if that comes first.
  Consecutive trials of the same class stay separate trials.
- A selection (a decision that commits a target) belongs to the trial in which it was made.
- Target trial: the *decision* is ``"hit"`` when the first selection is the cued target,
  ``"wrong"`` when it is another target, ``"none"`` when nothing was selected. The trial has
  a wrong selection when ANY selection in it is another target. ``time_s`` is the time from
  the cue to the first selection (the time to command of a hit).
- Rest trial: every selection is a false activation, whatever became of it (a selection the
  safety supervisor refused is still one).
- Execution (when known): what the safety supervisor did with each selection
  (``"executed"``, ``"awaiting_confirmation"``, ``"refused"``, ``"failed"``) and why. A
  target trial is *executed* when a selection of the cued target in it was executed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from bci.labels import is_rest

HIT, WRONG, NONE = "hit", "wrong", "none"
EXECUTED = "executed"


@dataclass(frozen=True)
class Selection:
    """One committed selection.

    Attributes
    ----------
    t : float
        When it was decided (seconds, the cues' clock: the decoded window's last sample).
    label : str
        The selected target (``"13.0Hz"``).
    result : str | None
        What the safety supervisor did with it (``"executed"``, ``"awaiting_confirmation"``,
        ``"refused"``, ``"failed"``), None when it never reached one (decoder only).
    command : str | None
        The command the selection meant (``"walk"``), when known.
    reason : str
        Why it was refused or not executed ('' otherwise).
    """

    t: float
    label: str
    result: str | None = None
    command: str | None = None
    reason: str = ""


@dataclass
class TrialScore:
    """What happened in one cued trial (see the module rules).

    Attributes
    ----------
    index : int
        Cue index in the session.
    label : str
        The cue (``"13.0Hz"`` or ``"rest"``).
    onset, end : float
        Start and end of the trial (s).
    decision : str
        ``"hit"``, ``"wrong"`` or ``"none"`` for target trials, ``"rest"`` for rest trials.
    time_s : float | None
        Cue to first selection (s).
    selections : list of str
        Labels selected in the trial, in order.
    n_wrong : int
        Selections of another target (target trials).
    n_false : int
        Selections during a rest trial.
    executed : bool | None
        Target trials: a selection of the cued target was executed (None: execution unknown).
    result, command, reason : str | None
        Target trials: what became of the first selection of the cued target (or of the first
        selection when none was right); rest trials: of the first false activation.
    """

    index: int
    label: str
    onset: float
    end: float
    decision: str
    time_s: float | None = None
    selections: list[str] = field(default_factory=list)
    n_wrong: int = 0
    n_false: int = 0
    executed: bool | None = None
    result: str | None = None
    command: str | None = None
    reason: str = ""

    def to_dict(self) -> dict:
        """Plain-JSON form."""
        d = asdict(self)
        for k in ("onset", "end", "time_s"):
            if d[k] is not None:
                d[k] = round(float(d[k]), 3)
        return d


def trial_ends(onsets: Sequence[float], end_s: float) -> np.ndarray:
    """End of each trial: the next cue; the last ends one cue spacing after its cue."""
    onsets = np.asarray(onsets, float)
    if onsets.size == 0:
        return onsets
    gaps = np.diff(onsets)
    spacing = float(np.median(gaps)) if gaps.size else float(end_s) - onsets[-1]
    return np.append(onsets[1:], min(onsets[-1] + spacing, float(end_s)))


def score_trials(
    selections: Sequence[Selection],
    onsets: Sequence[float],
    labels: Sequence[str],
    *,
    end_s: float,
    scored: Sequence[bool] | None = None,
) -> list[TrialScore]:
    """Score selections against cued trials.

    Parameters
    ----------
    selections : sequence of Selection
        Every committed selection (any order).
    onsets : sequence of float
        Cue times (s, sorted).
    labels : sequence of str
        Cue labels (``"13.0Hz"``, ..., ``"rest"``).
    end_s : float
        End of the data (s).
    scored : sequence of bool | None
        Trials to score (default: all), e.g. held-apart trials.

    Returns
    -------
    trials : list of TrialScore
        One per scored trial.
    """
    onsets = np.asarray(onsets, float)
    ends = trial_ends(onsets, end_s)
    keep = np.ones(len(onsets), bool) if scored is None else np.asarray(scored, bool)
    sel = sorted(selections, key=lambda s: s.t)
    times = np.array([s.t for s in sel], float)
    known = any(s.result is not None for s in sel)
    out: list[TrialScore] = []
    for i, (on, end, lab) in enumerate(zip(onsets, ends, labels)):
        if not keep[i]:
            continue
        lab = str(lab)
        lo, hi = np.searchsorted(times, [on, end], side="left")
        here = sel[lo:hi]
        row = TrialScore(i, lab, float(on), float(end), "rest" if is_rest(lab) else NONE,
                         selections=[s.label for s in here])
        if here:
            row.time_s = here[0].t - on
        if is_rest(lab):
            row.n_false = len(here)
            if here:
                row.result, row.command, row.reason = here[0].result, here[0].command, \
                    here[0].reason
            out.append(row)
            continue
        right = [s for s in here if s.label == lab]
        row.n_wrong = len(here) - len(right)
        if here:
            row.decision = HIT if here[0].label == lab else WRONG
        first = right[0] if right else (here[0] if here else None)
        if first is not None:
            row.result, row.command, row.reason = first.result, first.command, first.reason
        if known:
            row.executed = any(s.result == EXECUTED for s in right)
        out.append(row)
    return out


def totals(trials: Sequence[TrialScore]) -> dict:
    """Counts and rates over scored trials (any number of sessions).

    Returns
    -------
    totals : dict
        ``n_target_trials``, ``n_hits``, ``n_wrong_trials`` (target trials with a wrong
        selection), ``n_wrong_commands`` (wrong selections), ``n_none``, ``n_rest_trials``,
        ``rest_minutes``, ``n_false_activations``, ``n_selections``, ``n_executed``
        (target trials whose command was executed), ``hit_rate``, ``wrong_command_rate``,
        ``wrong_commands`` (= ``n_wrong_trials``), ``false_activations_per_min``,
        ``executed_rate`` (None when execution is unknown), ``median_time_to_command_s``
        and ``times_to_command_s`` (hits).
    """
    targets = [t for t in trials if t.decision != "rest"]
    rest = [t for t in trials if t.decision == "rest"]
    nt = len(targets)
    hits = [t for t in targets if t.decision == HIT]
    wrong_trials = sum(1 for t in targets if t.n_wrong)
    rest_min = sum(t.end - t.onset for t in rest) / 60.0
    n_false = sum(t.n_false for t in rest)
    known = [t for t in targets if t.executed is not None]
    n_exec = sum(1 for t in known if t.executed)
    times = [float(t.time_s) for t in hits]
    nan = float("nan")
    return {
        "n_target_trials": nt,
        "n_hits": len(hits),
        "n_wrong_trials": wrong_trials,
        "n_wrong_commands": sum(t.n_wrong for t in targets),
        "n_none": sum(1 for t in targets if t.decision == NONE),
        "n_rest_trials": len(rest),
        "rest_minutes": rest_min,
        "n_false_activations": n_false,
        "n_selections": sum(len(t.selections) for t in trials),
        "n_executed": n_exec if known else None,
        "hit_rate": len(hits) / nt if nt else nan,
        "wrong_commands": wrong_trials,
        "wrong_command_rate": wrong_trials / nt if nt else nan,
        "false_activations_per_min": n_false / rest_min if rest_min > 0 else nan,
        "executed_rate": (n_exec / len(known)) if known else None,
        "median_time_to_command_s": float(np.median(times)) if times else nan,
        "times_to_command_s": times,
    }


_SUM_KEYS = ("n_target_trials", "n_hits", "n_wrong_trials", "n_wrong_commands", "n_none",
             "n_rest_trials", "rest_minutes", "n_false_activations", "n_selections")


def pool(records: Sequence[Mapping], **fields) -> dict:
    """Pool records made by :func:`totals` (counts summed, median over every hit).

    ``fields`` (e.g. ``subject="ALL"``) are added to the result.
    """
    out: dict = {k: sum(r[k] for r in records) for k in _SUM_KEYS}
    nt, rest_min = out["n_target_trials"], out["rest_minutes"]
    execs = [r.get("n_executed") for r in records]
    n_exec = None if any(e is None for e in execs) or not execs else sum(execs)
    times = [t for r in records for t in r.get("times_to_command_s", [])]
    nan = float("nan")
    out.update({
        "n_executed": n_exec,
        "hit_rate": out["n_hits"] / nt if nt else nan,
        "wrong_commands": out["n_wrong_trials"],
        "wrong_command_rate": out["n_wrong_trials"] / nt if nt else nan,
        "false_activations_per_min": (out["n_false_activations"] / rest_min if rest_min > 0
                                      else nan),
        "executed_rate": n_exec / nt if n_exec is not None and nt else None,
        "median_time_to_command_s": float(np.median(times)) if times else nan,
        "times_to_command_s": times,
    })
    out.update(fields)
    return out


def format_scores(records: Sequence[Mapping], *, with_pooled: bool = True) -> str:
    """Plain-text table: one row per record (``subject``, ``method``) and pooled rows."""
    rows = list(records)
    if with_pooled and rows:
        for method in dict.fromkeys(r.get("method", "") for r in rows):
            rows.append(pool([r for r in rows if r.get("method", "") == method],
                             subject="ALL", method=method))
    head = (f"{'subject':<10} {'method':<12} {'hits':>9} {'hit %':>6} {'wrong %':>7} "
            f"{'false/min':>9} {'median s':>8} {'exec %':>6}")
    lines = [head, "-" * len(head)]
    for r in rows:
        ex = r.get("executed_rate")
        lines.append(
            f"{str(r.get('subject', '')):<10} {str(r.get('method', '')):<12} "
            f"{r['n_hits']:>4}/{r['n_target_trials']:<4} {100 * r['hit_rate']:>6.1f} "
            f"{100 * r['wrong_command_rate']:>7.1f} {r['false_activations_per_min']:>9.2f} "
            f"{r['median_time_to_command_s']:>8.2f} "
            + (f"{100 * ex:>6.1f}" if ex is not None else f"{'-':>6}")
        )
    return "\n".join(lines)
