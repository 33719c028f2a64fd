"""Calibration in a minute: the population decoder against minutes of the user's data, LOSO.

For each dev subject, a population prior is trained on the OTHER subjects (as
``scripts/loso_defaults.py population`` does, cached there). For each session pair (test
session calibrated on another session of the subject, as ``evaluate --online`` pairs them)
and each amount of the user's data -- the trials cued in the first 0, 0.5, 1 and 2 minutes
of the calibration session, and the whole session -- the prior is adapted to those trials
(``PopulationRessFBCCA.fit``, its training windows cut inside the estimator) and the test
session is replayed through the project's harness, decision policy and scorer, with the
window and threshold set as for ``ssvep-exo run`` without a profile, chosen without the
subject (``loso_defaults.py population``: the model of rest of the other subjects' sessions,
each scored by a prior trained without it, times the margin that held the budget for each of
them). Also printed: sliding-window 4-class accuracy of the test session (every window ending
1-5 s after a cue).

Prints the per-subject table at 1 minute next to the full session, the pooled curve, and
writes ``bench/minutes_curve.png``. Caches in ``cache/loso/minutes_w<window>.json``
(git-ignored).

Usage: OMP_NUM_THREADS=1 nice python scripts/bench_minutes.py
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loso_defaults as ld  # noqa: E402

from bci.datasets import load_recording  # noqa: E402
from bci.decoders import METHODS  # noqa: E402
from bci.decoders.population import NO_CALIBRATION, PopulationRessFBCCA  # noqa: E402
from bci.evaluation.harness import Trials, score_stream  # noqa: E402
from bci.evaluation.scoring import Selection, pool, score_trials, totals  # noqa: E402

MINUTES = (0.0, 0.5, 1.0, 2.0, None)  # None: the whole calibration session
WINDOW = float(NO_CALIBRATION["window_s"])
OUT = ld.CACHE / f"minutes_w{WINDOW:g}.json"


def _label(m) -> str:
    return "full" if m is None else f"{m:g}"


def _accuracy(st) -> float:
    """Share of windows ending 1-5 s after a target or rest cue whose top class is the cue's."""
    ok, n = 0, 0
    top = np.asarray(st.classes)[np.argmax(st.scores, axis=1)]
    for on, lab in zip(st.onsets, st.labels):
        m = (st.t >= on + 1.0 + WINDOW) & (st.t < on + 5.0)
        ok += int(np.sum(top[m] == lab))
        n += int(np.sum(m))
    return ok / max(n, 1)


def run() -> dict:
    recs = ld.recordings()
    res = json.loads(OUT.read_text()) if OUT.exists() else {}
    ld._population_streams(recs, WINDOW)  # the held-out priors (trained once, cached)
    if not (ld.CACHE / "report_population.json").exists():
        ld.stage_population()  # the thresholds of run without a profile, LOSO
    done = json.loads((ld.CACHE / "population_policy.json").read_text())
    held_out = json.loads((ld.CACHE / "report_population.json").read_text())["choice"][
        "held_out"]
    thresholds = {}
    for s, key in held_out.items():
        if not key.startswith(f"w={WINDOW:g},"):
            raise SystemExit(f"{s}: the no-calibration window chosen without it ({key}) is "
                             f"not the shipped {WINDOW:g} s; re-run loso_defaults.py population")
        thresholds[s] = done[key][s]
    span = METHODS["population"]["train_span"]
    for s, i, j in ld.stream_tasks(recs):
        key = f"{s}|{i}|{j}"
        if key in res:
            continue
        t0 = time.perf_counter()
        raw_a, raw_b = load_recording(recs[s][j]), load_recording(recs[s][i])
        prior = str(ld.CACHE / "priors" / f"without_{s}_w{WINDOW:g}.npz")
        pol = ld.DecisionPolicy.from_dict(thresholds[s]["policy"])
        tr = Trials.build([raw_a], tmin=ld.TMIN, window_s=WINDOW, classes=ld.CLASSES,
                          train_span=span)
        first = float(np.min(tr.cue))
        rows = {}
        for m in MINUTES:
            est = PopulationRessFBCCA(prior=prior, sfreq=256.0, freqs=ld.FREQS)
            if m == 0:
                dec = est.fit(np.zeros((1, tr.X.shape[1], tr.X.shape[2])))
                ids = np.zeros(0, int)
            else:
                keep = tr.cue <= first + (np.inf if m is None else 60.0 * m)
                ids = tr.trial[keep]
                dec = tr.fit(est, ids)
            st = score_stream(dec, raw_b, window_s=WINDOW, step=ld.STEP)
            sel = [Selection(t, lab) for t, lab in pol.replay(st.t, st.scores)]
            tot = totals(score_trials(sel, st.onsets, st.labels, end_s=st.end_s))
            tot["times"] = tot.pop("times_to_command_s")
            tot["accuracy"] = _accuracy(st)
            tot["n_user_trials"] = int(len(ids))
            tot["user_minutes"] = (0.0 if not len(ids) else
                                   float(np.max(tr.cue[np.isin(tr.trial, ids)]) - first
                                         + np.median(np.diff(np.sort(tr.cue)))) / 60)
            rows[_label(m)] = tot
        res[key] = rows
        ld.save(OUT, res)
        ld.log(f"minutes {s} {i}<-{j} ({time.perf_counter() - t0:.0f} s): " + ", ".join(
            f"{k}: {v['n_hits']}/{v['n_target_trials']}" for k, v in rows.items()))
    return res


def _pooled(recs: list[dict]) -> dict:
    p = pool([{**r, "times_to_command_s": r["times"]} for r in recs])
    p["accuracy"] = float(np.mean([r["accuracy"] for r in recs]))
    p["user_minutes"] = float(np.mean([r["user_minutes"] for r in recs]))
    return p


def report(res: dict) -> list[dict]:
    subjects = sorted({k.split("|")[0] for k in res})
    curve = []
    print(f"Population decoder adapted with the first minutes of the user's calibration session "
          f"(leave-one-subject-out; {ld.machine()}; {time.strftime('%Y-%m-%d')})")
    print("| user data | cued trials used (mean) | minutes (mean) | window accuracy % | hits % "
          "| wrong % | false / min | median s |")
    print("|---|---|---|---|---|---|---|---|")
    for m in MINUTES:
        recs = [v[_label(m)] for v in res.values()]
        p = _pooled(recs)
        n_user = np.mean([r["n_user_trials"] for r in recs])
        curve.append({"minutes": m, **{k: p[k] for k in (
            "hit_rate", "wrong_command_rate", "false_activations_per_min",
            "median_time_to_command_s", "accuracy", "user_minutes")}})
        print(f"| {'whole session' if m is None else f'{m:g} min'} | {n_user:.1f} | "
              f"{p['user_minutes']:.2f} | {100 * p['accuracy']:.1f} | "
              f"{100 * p['hit_rate']:.1f} | {100 * p['wrong_command_rate']:.1f} | "
              f"{p['false_activations_per_min']:.2f} | {p['median_time_to_command_s']:.2f} |")
    print("\nPer subject, 1 minute of the user's data next to the whole session:")
    print("| subject | 1 min: hits % | wrong % | false / min | median s | whole session: hits % "
          "| wrong % | false / min | median s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for s in subjects:
        cells = []
        for m in ("1", "full"):
            p = _pooled([v[m] for k, v in res.items() if k.startswith(s + "|")])
            cells += [f"{100 * p['hit_rate']:.1f}", f"{100 * p['wrong_command_rate']:.1f}",
                      f"{p['false_activations_per_min']:.2f}",
                      f"{p['median_time_to_command_s']:.2f}"]
        print(f"| {s[-2:]} | " + " | ".join(cells) + " |")
    return curve


def plot(curve: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [c["user_minutes"] for c in curve]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
    a1.plot(x, [100 * c["hit_rate"] for c in curve], "o-", label="hits (pseudo-online)")
    a1.plot(x, [100 * c["accuracy"] for c in curve], "s--", label="window accuracy (4-class)")
    a1.plot(x, [100 * c["wrong_command_rate"] for c in curve], "x-", label="wrong")
    a1.set(xlabel="minutes of the user's cued data", ylabel="%", ylim=(0, 100),
           title="population prior adapted to the user, LOSO")
    a1.legend(fontsize=8)
    a2.plot(x, [c["false_activations_per_min"] for c in curve], "o-", color="C3",
            label="false activations / min of rest")
    a2.axhline(0.5, color="C3", ls=":", label="budget")
    a2.set(xlabel="minutes of the user's cued data", ylabel="per minute", ylim=(0, None))
    b = a2.twinx()
    b.plot(x, [c["median_time_to_command_s"] for c in curve], "s-", color="C2",
           label="median s from cue")
    b.set_ylabel("median s from cue", color="C2")
    b.set_ylim(0, None)
    h1, l1 = a2.get_legend_handles_labels()
    h2, l2 = b.get_legend_handles_labels()
    a2.legend(h1 + h2, l1 + l2, fontsize=8, loc="center right")
    for c, xi in zip(curve, x):
        a1.annotate("whole" if c["minutes"] is None else f"{c['minutes']:g}",
                    (xi, 100 * c["hit_rate"]), textcoords="offset points", xytext=(0, 6),
                    fontsize=7)
    fig.suptitle(f"Calibration in a minute ({time.strftime('%Y-%m-%d')}, {ld.machine()})",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    res = run()
    curve = report(res)
    path = ld.REPO / "bench" / "minutes_curve.png"
    plot(curve, path)
    print(f"\nwrote {path.relative_to(ld.REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
