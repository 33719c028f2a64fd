"""Choose every default leave-one-subject-out on the dev recordings (docs/evaluation.md).

For each dev subject s, a default is chosen on the OTHER subjects only and s is scored with
it; the figures reported for s are those. The default shipped is the one chosen on all dev
subjects. Everything goes through the project's harness (:mod:`bci.evaluation.harness`),
threshold procedure (:func:`calibration.selection.choose_threshold`) and scorer
(:mod:`bci.evaluation.scoring`), so the figures measure the deployed path.

Stages (each caches its results under ``cache/loso/``, git-ignored; re-runs reuse them):

``decoder``  ress-fbcca hyper-parameters (C, training span): cross-session 4-class
             accuracy at 1 and 2 s windows, every ordered session pair.
``streams``  for each test session, the out-of-fold score streams of its calibration
             session (what ``calibrate`` sets the threshold on) and the test session's
             stream scored by the decoder fitted on all of the calibration session (what
             the online loop sees), for each window; plus plain FBCCA streams.
``policy``   the evidence policy's parameters (window, drift, clip, horizon, release,
             threshold margin) replayed on the cached streams; LOSO selection for the
             budget of 0.5 false activations per minute of rest.
``fbcca``    the training-free decoder's policy (``ssvep-exo run`` without a profile:
             absolute threshold, drift and clip in FBCCA units, window), replayed on the
             plain FBCCA streams of every session.
``report``   the per-subject tables (markdown) of the LOSO-chosen defaults.
``population`` the population decoder without calibration (``ssvep-exo run`` without a
             profile): its threshold margin and window, each subject scored by a prior
             trained without it; the budget must hold for each of the other users.
``ceiling``  what else could lift the weak responders on the deployed path: the population
             decoder adapted with the calibration session, pooled 1 s and 2 s evidence, as
             calibration candidates; and the weak responders' figures at lower thresholds.
``rest_tail`` the threshold procedure's rest model (block length, GEV shape pooled over
             the other subjects, threshold margin), LOSO; the predicted against observed
             false activations per session pair (table, ``bench/far_prediction.png``).

Usage: OMP_NUM_THREADS=1 nice python scripts/loso_defaults.py STAGE [--data PATH]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import itertools
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _bench_common import machine_info  # noqa: E402

from bci.datasets import find_recordings, load_recording  # noqa: E402
from bci.decoders import make_decoder  # noqa: E402
from bci.evaluation import evaluate_cross  # noqa: E402
from bci.evaluation.harness import (  # noqa: E402
    ScoreStream,
    Trials,
    calibration_session,
    out_of_fold_streams,
    score_stream,
)
from bci.evaluation.scoring import pool  # noqa: E402
from bci.labels import REST_LABEL, freq_label  # noqa: E402
from bci.online import DecisionPolicy  # noqa: E402
from calibration import selection as sel  # noqa: E402

CACHE = REPO / "cache" / "loso"
DATA = Path(os.environ.get("SSVEP_EXO_DATA", REPO.parent / "shared" / "data" / "kalunga2016"))
TMIN = 2.0
STEP = 0.1
BUDGET = 0.5
MAX_WRONG = 0.03
FREQS = (13.0, 17.0, 21.0)
CLASSES = [freq_label(f) for f in FREQS] + [REST_LABEL]

DECODER_GRID = {
    f"C={c:g},span={a:g}-{b:g},nf={nf},nh={nh}": {
        "params": {"C": c, "n_filters": nf, "n_harmonics": nh}, "span": (a, b)}
    for c, (a, b), nf, nh in itertools.product(
        (0.003, 0.01, 0.03), ((1.0, 4.0), (1.0, 5.0), (1.5, 5.0)), (2, 3), (3, 4))
}
STREAM_WINDOWS = (1.0, 1.5, 2.0)
POLICY_GRID = {
    "drift": (0.0, 0.1, 0.2),
    "clip": (0.25, 0.5, 1.0),
    "horizon_s": (2.0, 4.0),
    "release_s": (1.0, 2.0),
}
#: Added after the first sweep chose the longest horizon and release of POLICY_GRID for
#: every held-out subject (the grid's edge): longer evidence and release.
POLICY_GRID_LONG = {
    "drift": (0.0, 0.1),
    "clip": (0.5,),
    "horizon_s": (6.0, 8.0),
    "release_s": (2.0, 3.0),
}
MARGINS = (0.8, 1.0, 1.25, 1.5, 2.0)
FBCCA_GRID = {
    "threshold": (0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0),
    "drift": (0.05, 0.1, 0.2, 0.3),
    "clip": (0.25, 0.5, 1.0),
}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def machine() -> str:
    m = machine_info()
    return f"{m['cpu']}, {m['cores']} cores, BLAS threads {os.environ.get('OMP_NUM_THREADS')}"


def recordings() -> dict[str, list]:
    found = find_recordings(DATA)  # drops subject07's copy of subject03's session
    return {s: list(p) for s, p in sorted(found.items())}


def save(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=float))
    tmp.replace(path)


# ---------------------------------------------------------------------- LOSO selection
def loso(per_subject: dict[str, dict[str, dict]], choose) -> dict:
    """Leave-one-subject-out choice.

    ``per_subject[config][subject]`` holds whatever ``choose(list of records of the
    training subjects, configs)`` needs; ``choose(rows)`` with ``rows = {config: [records of
    the training subjects]}`` returns the chosen config. Returns ``{"held_out": {subject:
    config}, "all": config}``.
    """
    subjects = sorted(next(iter(per_subject.values())))
    out = {}
    for s in subjects:
        rows = {c: [v for t, v in d.items() if t != s] for c, d in per_subject.items()}
        out[s] = choose(rows)
    rows = {c: list(d.values()) for c, d in per_subject.items()}
    return {"held_out": out, "all": choose(rows)}


# ---------------------------------------------------------------------- stage: decoder
def stage_decoder() -> None:
    recs = recordings()
    path = CACHE / "decoder.json"
    done = json.loads(path.read_text()) if path.exists() else {}
    raws = {s: [load_recording(p) for p in ps] for s, ps in recs.items()}
    for name, cfg in DECODER_GRID.items():
        for w in (1.0, 2.0):
            key = f"{name}|{w:g}"
            if key in done:
                continue
            t0 = time.perf_counter()
            est = make_decoder("ress-fbcca", sfreq=256.0, freqs=FREQS, **cfg["params"])
            done[key] = {}
            for s, rs in raws.items():
                r = evaluate_cross(rs, {"ress-fbcca": est}, subject=s, window_s=w,
                                   classes=CLASSES, tmin=TMIN,
                                   train_spans={"ress-fbcca": cfg["span"]})[0]
                done[key][s] = r["accuracy"]
            save(path, done)
            log(f"decoder {key}: mean {100 * np.mean(list(done[key].values())):.1f} % "
                f"({time.perf_counter() - t0:.0f} s)")
    per = {name: {s: (done[f"{name}|1"][s] + done[f"{name}|2"][s]) / 2 for s in recs}
           for name in DECODER_GRID}
    choice = loso({n: {s: v for s, v in d.items()} for n, d in per.items()},
                  lambda rows: max(rows, key=lambda c: np.mean(rows[c])))
    summary = {"choice": choice, "per_config": done,
               "held_out_accuracy": {
                   w: {s: done[f"{choice['held_out'][s]}|{w}"][s] for s in recs}
                   for w in ("1", "2")},
               "date": dt.date.today().isoformat(), "machine": machine()}
    save(CACHE / "decoder_choice.json", summary)
    for w in ("1", "2"):
        vals = summary["held_out_accuracy"][w]
        log(f"LOSO cross-session 4-class at {w} s: mean {100 * np.mean(list(vals.values())):.1f}"
            f" % " + " ".join(f"{s[-2:]}:{100 * v:.0f}" for s, v in vals.items()))
    log(f"choices: {choice}")


# ---------------------------------------------------------------------- stage: streams
def _stream_dict(st: ScoreStream) -> dict:
    return {"scores": st.scores, "t": st.t, "onsets": st.onsets, "labels": st.labels,
            "end_s": st.end_s, "step_s": st.step_s, "window_s": st.window_s,
            "classes": np.array(st.classes)}


def _save_streams(path: Path, streams: dict[str, ScoreStream]) -> None:
    arrays = {}
    for k, st in streams.items():
        for f, v in _stream_dict(st).items():
            arrays[f"{k}__{f}"] = np.asarray(v)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)


def load_streams(path: Path) -> dict[str, ScoreStream]:
    out = {}
    with np.load(path, allow_pickle=False) as z:
        keys = {k.split("__")[0] for k in z.files}
        for k in keys:
            g = {f.split("__")[1]: z[f] for f in z.files if f.startswith(k + "__")}
            out[k] = ScoreStream(g["scores"], g["t"], tuple(str(c) for c in g["classes"]),
                                 g["onsets"], g["labels"].astype(str), float(g["end_s"]),
                                 float(g["step_s"]), float(g["window_s"]))
    return out


def decoder_choice() -> dict:
    path = CACHE / "decoder_choice.json"
    if not path.exists():
        raise SystemExit("run the 'decoder' stage first")
    return json.loads(path.read_text())["choice"]


def stream_tasks(recs) -> list[tuple[str, int, int]]:
    """(subject, test session, calibration session) as evaluate --online pairs them."""
    out = []
    for s, ps in recs.items():
        for i in range(len(ps)):
            if len(ps) > 1:
                out.append((s, i, calibration_session(i, len(ps))))
    return out


def stage_streams(config: str | None = None, subjects=None, windows=STREAM_WINDOWS) -> None:
    recs = recordings()
    config = config or decoder_choice()["all"]
    cfg = DECODER_GRID[config]
    for s, i, j in stream_tasks(recs):
        if subjects and s not in subjects:
            continue
        raw_b, raw_a = load_recording(recs[s][i]), load_recording(recs[s][j])
        for w in windows:
            path = CACHE / "streams" / config / f"{s}_{i}_from_{j}_{w:g}.npz"
            if path.exists():
                continue
            t0 = time.perf_counter()
            est = make_decoder("ress-fbcca", sfreq=256.0, freqs=FREQS, **cfg["params"])
            a = out_of_fold_streams(est, [raw_a], tmin=TMIN, window_s=w, classes=CLASSES,
                                    train_span=cfg["span"], step=STEP)[0]
            tr = Trials.build([raw_a], tmin=TMIN, window_s=w, classes=CLASSES,
                              train_span=cfg["span"])
            dec = tr.fit(est, tr.trial)
            b = score_stream(dec, raw_b, window_s=w, step=STEP)
            _save_streams(path, {"A": a, "B": b})
            log(f"streams {config} {s} {i}<-{j} {w:g}s ({time.perf_counter() - t0:.0f} s)")
    if subjects:
        return
    # plain FBCCA (training-free, no rest class): one stream per session
    for s, ps in recs.items():
        for i, p in enumerate(ps):
            for w in STREAM_WINDOWS:
                path = CACHE / "streams" / "fbcca" / f"{s}_{i}_{w:g}.npz"
                if path.exists():
                    continue
                raw = load_recording(p)
                dec = make_decoder("fbcca", sfreq=256.0, freqs=FREQS)
                dec.fit(np.zeros((1, len(raw.ch_names), int(round(w * 256)))))
                _save_streams(path, {"S": score_stream(dec, raw, window_s=w, step=STEP)})
                log(f"streams fbcca {s} {i} {w:g}s")


# ---------------------------------------------------------------------- stage: policy
def policy_configs():
    for grid in (POLICY_GRID, POLICY_GRID_LONG):
        keys = list(grid)
        for vals in itertools.product(*grid.values()):
            yield dict(zip(keys, vals))


def _key(w, p) -> str:
    return f"w={w:g}," + ",".join(f"{k}={v:g}" for k, v in p.items())


def stage_policy(config: str | None = None, windows=STREAM_WINDOWS) -> None:
    recs = recordings()
    config = config or decoder_choice()["all"]
    tasks = stream_tasks(recs)
    for w in windows:
        path = CACHE / f"policy_{config}_w{w:g}.json"
        done = json.loads(path.read_text()) if path.exists() else {}
        streams = {(s, i, j): load_streams(CACHE / "streams" / config / f"{s}_{i}_from_{j}_"
                                           f"{w:g}.npz") for s, i, j in tasks}
        for p in policy_configs():
            key = _key(w, p)
            if key in done:
                continue
            t0 = time.perf_counter()
            res = {}
            for (s, i, j), st in streams.items():
                params = {**p, "margin": 1.0}
                pol, cal = sel.choose_threshold([st["A"]], max_false_per_min=BUDGET,
                                                params=params)
                h0 = cal["threshold_at_budget"]
                for m in MARGINS:
                    pol = sel.policy_for(st["B"].classes, h0 * m, params)
                    res.setdefault(f"{m:g}", {})[f"{s}|{i}|{j}"] = _record(pol, st["B"])
            done[key] = res
            save(path, done)
            log(f"policy {key} ({time.perf_counter() - t0:.0f} s)")


def _pooled(records: list[dict]) -> dict:
    recs = [{**r, "times_to_command_s": r["times"]} for r in records]
    return pool(recs)


def _record(policy: DecisionPolicy, st: ScoreStream) -> dict:
    """One stream replayed through ``policy`` and scored (:func:`sel.replay_totals`), its
    hits' times under ``times`` (the cached records' form, :func:`_pooled`)."""
    tot = sel.replay_totals(st, policy)
    tot["times"] = tot.pop("times_to_command_s")
    return tot


def choose_policy(rows: dict[str, list[list[dict]]], each_user: bool = False) -> str:
    """Feasible (budget, wrong) configs by hit rate, then median time; else least excess.

    ``each_user``: the budget must hold for every training subject on its own, not only
    pooled over them (for a setting no user's own data corrects: no calibration)."""
    def rank(c):
        p = _pooled([r for subj in rows[c] for r in subj])
        fa, wr = p["false_activations_per_min"], p["wrong_command_rate"]
        if each_user:
            fa = max(_pooled(subj)["false_activations_per_min"] for subj in rows[c])
        excess = max(0.0, fa - BUDGET) / BUDGET + max(0.0, wr - MAX_WRONG) / MAX_WRONG
        return (excess == 0, -excess, round(p["hit_rate"], 4), -p["median_time_to_command_s"])
    return max(rows, key=rank)


def policy_table(config: str) -> tuple[dict, dict]:
    """``per[policy_key|margin][subject] = [session records]``."""
    done = {}
    for path in sorted(CACHE.glob(f"policy_{config}_w*.json")):
        done.update(json.loads(path.read_text()))
    grid = {_key(w, p) for w in STREAM_WINDOWS for p in policy_configs()}
    missing = grid - set(done)
    if missing:
        raise SystemExit(f"{len(missing)} policy configurations not computed yet: run policy")
    done = {k: v for k, v in done.items() if k in grid}  # the grid as it stands
    per: dict[str, dict[str, list]] = {}
    for key, by_margin in done.items():
        for m, by_pair in by_margin.items():
            for pair, rec in by_pair.items():
                s = pair.split("|")[0]
                per.setdefault(f"{key},margin={m}", {}).setdefault(s, []).append(rec)
    return per, done


def stage_report(config: str | None = None) -> None:
    """LOSO tables. A held-out subject is scored with the decoder AND the policy chosen
    without it: its streams come from its own held-out decoder choice (computed by
    ``streams --config X --subjects S`` when it differs from the shipped one); the policy
    choice is made on the other subjects' streams of the shipped decoder."""
    dec = decoder_choice()
    config = config or dec["all"]
    per, _ = policy_table(config)
    choice = loso(per, choose_policy)
    for s, c in choice["held_out"].items():
        own = dec["held_out"][s]
        if own != config:
            per[c][s] = _replay_subject(own, s, c)
    out = _print_table(f"LOSO-chosen decoder and policy, budget {BUDGET}/min", per, choice)
    out["decoder_held_out"] = dec["held_out"]
    save(CACHE / f"report_{config}.json", {**out, "decoder": config})
    for s, own in dec["held_out"].items():
        if own != config:
            print(f"subject {s[-2:]}: decoder chosen without it: {own}")


def _replay_subject(decoder_config: str, subject: str, policy_key: str) -> list[dict]:
    """One subject's session records with a decoder config's streams and one policy."""
    fields = dict(kv.split("=") for kv in policy_key.split(","))
    w, m = float(fields.pop("w")), float(fields.pop("margin"))
    params = {k: float(v) for k, v in fields.items()}
    out = []
    for path in sorted((CACHE / "streams" / decoder_config).glob(f"{subject}_*_{w:g}.npz")):
        st = load_streams(path)
        _, cal = sel.choose_threshold([st["A"]], max_false_per_min=BUDGET,
                                      params={**params, "margin": 1.0})
        pol = sel.policy_for(st["B"].classes, cal["threshold_at_budget"] * m, params)
        out.append(_record(pol, st["B"]))
    if not out:
        raise SystemExit(f"no streams for {subject} with {decoder_config} at {w:g} s: run "
                         f"streams --config '{decoder_config}' --subjects {subject}")
    return out


def _print_table(title: str, per: dict, choice: dict) -> dict:
    held = {}
    for s, c in choice["held_out"].items():
        p = _pooled(per[c][s])
        held[s] = {**{k: p[k] for k in ("n_hits", "n_target_trials", "hit_rate",
                                        "wrong_command_rate", "false_activations_per_min",
                                        "median_time_to_command_s", "n_false_activations",
                                        "rest_minutes")}, "config": c}
    allp = _pooled([r for s, c in choice["held_out"].items() for r in per[c][s]])
    out = {"choice": choice, "held_out": held,
           "pooled": {k: allp[k] for k in ("n_hits", "n_target_trials", "hit_rate",
                                           "wrong_command_rate", "false_activations_per_min",
                                           "median_time_to_command_s")},
           "config_all": choice["all"], "date": dt.date.today().isoformat(),
           "machine": machine()}
    print(f"{title} ({out['date']}, {out['machine']})")
    print("| subject | chosen on the other subjects | hits | hit % | wrong % | false/min | "
          "median s |")
    print("|---|---|---|---|---|---|---|")
    for s, h in held.items():
        print(f"| {s[-2:]} | {h['config']} | {h['n_hits']}/{h['n_target_trials']} | "
              f"{100 * h['hit_rate']:.1f} | {100 * h['wrong_command_rate']:.1f} | "
              f"{h['false_activations_per_min']:.2f} | {h['median_time_to_command_s']:.2f} |")
    a = out["pooled"]
    print(f"| all | | {a['n_hits']}/{a['n_target_trials']} | {100 * a['hit_rate']:.1f} | "
          f"{100 * a['wrong_command_rate']:.1f} | {a['false_activations_per_min']:.2f} | "
          f"{a['median_time_to_command_s']:.2f} |")
    print(f"chosen on all dev subjects (the shipped default): {choice['all']}")
    return out


def stage_fbcca() -> None:
    """Training-free FBCCA: absolute policy parameters, LOSO over the dev subjects."""
    recs = recordings()
    path = CACHE / "fbcca_policy.json"
    done = json.loads(path.read_text()) if path.exists() else {}
    for w in STREAM_WINDOWS:
        streams = {(s, i): load_streams(CACHE / "streams" / "fbcca" / f"{s}_{i}_{w:g}.npz")["S"]
                   for s, ps in recs.items() for i in range(len(ps))}
        for vals in itertools.product(*FBCCA_GRID.values()):
            p = dict(zip(FBCCA_GRID, vals))
            key = f"w={w:g}," + ",".join(f"{k}={v:g}" for k, v in p.items())
            if key in done:
                continue
            res = {}
            for (s, i), st in streams.items():
                pol = DecisionPolicy(st.classes, horizon_s=3.0, refractory_s=1.0,
                                     release_s=1.0, **p)
                res[f"{s}|{i}"] = _record(pol, st)
            done[key] = res
        save(path, done)
        log(f"fbcca policy w={w:g} done")
    per: dict[str, dict[str, list]] = {}
    for key, by_sess in done.items():
        for sess, rec in by_sess.items():
            per.setdefault(key, {}).setdefault(sess.split("|")[0], []).append(rec)
    choice = loso(per, lambda rows: choose_policy(rows, each_user=True))
    _print_table(f"training-free fbcca policy, budget {BUDGET}/min for each of the other users", per, choice)
    save(CACHE / "report_fbcca.json", {"choice": choice, "date": dt.date.today().isoformat(),
                                       "machine": machine()})


# ---------------------------------------------------------------------- stage: rest_tail
REST_BLOCKS = (2.0, 3.0, 6.0)
REST_MARGINS = (0.5, 0.7, 0.85, 1.0, 1.25)
REST_FACTORS = (0.5, 0.7, 1.0, 1.4, 2.0)
REST_WINDOW = 1.5  # the shipped window (re-chosen below with the model of rest)


def _degenerate(st: ScoreStream, h: float) -> bool:
    """A calibration stream whose threshold sits at the bracket's floor (its rest never gives
    evidence) says nothing about the tail's shape."""
    return h <= 1e-3 * float(np.nanmax(np.abs(st.scores)))


def _held_out_shapes(streams: dict, b: float, base: dict, subjects: list[str]) -> dict:
    """The GEV shape held out per subject: pooled over the OTHER subjects' calibration
    streams' rest maxima at their Gumbel thresholds (``"all"``: every subject)."""
    from calibration.rest_model import pooled_shape

    groups = {}
    for (s, i, j), st in streams.items():
        p = {**base, "block_s": b, "shape": 0.0, "shape_sd": 0.0, "margin": 1.0}
        _, cal = sel.choose_threshold([st["A"]], max_false_per_min=BUDGET, params=p)
        h = cal["threshold_at_budget"]
        if not _degenerate(st["A"], h):
            groups[(s, i, j)] = sel.rest_maxima([st["A"]], sel.policy_for(
                st["A"].classes, h, p), b)
    shapes = {s: pooled_shape([g for k, g in groups.items() if k[0] != s]) for s in subjects}
    shapes["all"] = pooled_shape(list(groups.values()))
    return shapes


def _rest_tail_pairs(streams: dict, b: float, base: dict, subjects: list[str], tag: str,
                     factors=None) -> tuple[dict, dict]:
    """The GEV shape held out per subject (pooled over the OTHER subjects' calibration
    streams' rest maxima at their Gumbel thresholds, ``"all"``: every subject), and per
    session pair the predicted and observed false activations at the budget's threshold
    times each factor."""
    shapes = _held_out_shapes(streams, b, base, subjects)
    pairs = {}
    for (s, i, j), st in streams.items():
        xi, se = shapes[s]
        p = {**base, "block_s": b, "shape": xi, "shape_sd": se, "margin": 1.0}
        _, cal = sel.choose_threshold([st["A"]], max_false_per_min=BUDGET, params=p)
        h0 = cal["threshold_at_budget"]
        grid = {}
        for f in factors or sorted(set(REST_FACTORS) | set(REST_MARGINS)):
            pred = sel.predicted_false([st["A"]], h0 * f, p)
            tot = _record(sel.policy_for(st["B"].classes, h0 * f, p), st["B"])
            grid[f"{f:g}"] = {**tot, "pred": pred["per_min"], "lo": pred["interval"][0],
                              "hi": pred["interval"][1], "n_blocks":
                              pred["rest_tail"]["n_blocks"], "threshold": h0 * f}
        pairs[f"{s}|{i}|{j}"] = {"shape": xi, "shape_sd": se, "grid": grid}
        log(f"rest_tail {tag} {s} {i}<-{j}: xi {xi:+.2f}, predicted "
            f"{grid['1']['pred']:.2f}/min, observed {grid['1']['n_false_activations']} in "
            f"{grid['1']['rest_minutes']:.2f} min")
    return shapes, pairs


def _calibrated_streams(method: str, w: float, estimator=None, tag: str | None = None) -> dict:
    """For each test session: the out-of-fold streams of its calibration session and the test
    session scored by the decoder fitted on all of it (as ``calibrate --methods METHOD``
    and ``evaluate --online`` do), with the registry's defaults; cached under ``tag``
    (default ``METHOD-calibrated``). ``estimator(subject)``: another unfitted decoder per
    subject (e.g. one whose prior was trained without the subject)."""
    from bci.decoders import METHODS

    recs = recordings()
    tag = tag or f"{method}-calibrated"
    span = METHODS[method].get("train_span")
    out = {}
    for s, i, j in stream_tasks(recs):
        path = CACHE / "streams" / tag / f"{s}_{i}_from_{j}_{w:g}.npz"
        if not path.exists():
            t0 = time.perf_counter()
            raw_b, raw_a = load_recording(recs[s][i]), load_recording(recs[s][j])
            est = (make_decoder(method, sfreq=256.0, freqs=FREQS) if estimator is None
                   else estimator(s))
            a = out_of_fold_streams(est, [raw_a], tmin=TMIN, window_s=w, classes=CLASSES,
                                    train_span=span, step=STEP)[0]
            tr = Trials.build([raw_a], tmin=TMIN, window_s=w, classes=CLASSES,
                              train_span=span)
            b = score_stream(tr.fit(est, tr.trial), raw_b, window_s=w, step=STEP)
            _save_streams(path, {"A": a, "B": b})
            log(f"streams {tag} {s} {i}<-{j} {w:g}s ({time.perf_counter() - t0:.0f} s)")
        out[(s, i, j)] = load_streams(path)
    return out


def _far_rows(pairs: dict, margin: str = "1") -> list[dict]:
    """Rows of :func:`far_table` / ``far_prediction.plot`` from :func:`_rest_tail_pairs`."""
    rows = []
    for pair, rec in pairs.items():
        g0 = rec["grid"][margin]
        rows.append({"key": pair.replace("|", "/"), "n_blocks": g0["n_blocks"],
                     "pred": g0["pred"], "lo": g0["lo"], "hi": g0["hi"],
                     "fa": g0["n_false_activations"], "rest_min": g0["rest_minutes"],
                     "shape": rec["shape"],
                     "grid": [{"factor": float(f), "pred": g["pred"],
                               "fa": g["n_false_activations"], "rest_min": g["rest_minutes"]}
                              for f, g in rec["grid"].items() if float(f) in REST_FACTORS]})
    return rows


def stage_rest_tail(config: str | None = None) -> None:
    """The rest-tail model of :func:`calibration.selection.choose_threshold`, LOSO.

    For each block length: the GEV shape held out per subject (pooled over the OTHER
    subjects' calibration rest maxima, at their Gumbel thresholds); every session pair's
    threshold from its calibration stream with that shape, the predicted false activations
    and those observed on the test session at the budget's threshold times each factor;
    block length and margin chosen leave-one-subject-out by :func:`choose_policy`.
    """

    config = config or decoder_choice()["all"]
    tasks = stream_tasks(recordings())
    streams = {(s, i, j): load_streams(CACHE / "streams" / config /
                                       f"{s}_{i}_from_{j}_{REST_WINDOW:g}.npz")
               for s, i, j in tasks}
    base = {k: sel.POLICY_DEFAULTS[k] for k in ("drift", "clip", "horizon_s", "refractory_s",
                                                  "release_s")}
    subjects = sorted({s for s, _, _ in tasks})
    path = CACHE / f"rest_tail_{config}_w{REST_WINDOW:g}.json"
    done = json.loads(path.read_text()) if path.exists() else {}
    for b in REST_BLOCKS:
        bk = f"block={b:g}"
        if bk in done:
            continue
        t0 = time.perf_counter()
        shapes, pairs = _rest_tail_pairs(streams, b, base, subjects, f"ress-fbcca {bk}")
        done[bk] = {"shapes": {k: list(v) for k, v in shapes.items()}, "pairs": pairs}
        save(path, done)
        log(f"rest_tail {bk} ({time.perf_counter() - t0:.0f} s)")
    # the margin sweep, pooled over every pair (what a margin would do; not a choice)
    print("| block | margin | hits % | wrong % | false activations | predicted | median s |")
    print("|---|---|---|---|---|---|---|")
    for bk, d in done.items():
        for m in REST_MARGINS:
            g = [rec["grid"][f"{m:g}"] for rec in d["pairs"].values()]
            p = _pooled(g)
            pred = sum(x["pred"] * x["rest_minutes"] for x in g)
            print(f"| {bk[6:]} | {m:g} | {100 * p['hit_rate']:.1f} | "
                  f"{100 * p['wrong_command_rate']:.1f} | {p['n_false_activations']} in "
                  f"{p['rest_minutes']:.1f} min ({p['false_activations_per_min']:.2f}/min) | "
                  f"{pred:.1f} ({pred / p['rest_minutes']:.2f}/min) | "
                  f"{p['median_time_to_command_s']:.2f} |")
    # LOSO choice of the block length; the margin stays 1 (the model's threshold for the
    # budget): margins under 1 chosen on the few observed false activations of the other
    # subjects broke the budget on the held-out ones (docs/evaluation.md)
    per: dict[str, dict[str, list]] = {}
    for bk, d in done.items():
        for pair, rec in d["pairs"].items():
            per.setdefault(f"{bk},margin=1", {}).setdefault(
                pair.split("|")[0], []).append(rec["grid"]["1"])
    choice = loso(per, choose_policy)
    out = _print_table(f"rest-tail threshold (window {REST_WINDOW:g} s, shipped policy), LOSO "
                       f"block, margin 1, budget {BUDGET}/min", per, choice)
    bk, m = choice["all"].split(",margin=")
    print(f"shipped shape for {bk}: {done[bk]['shapes']['all']}")
    # predicted against observed per pair, each subject with its held-out choice
    rows = []
    for sub, c in choice["held_out"].items():
        bks, ms = c.split(",margin=")
        rows += [{**r, "config": c} for r in _far_rows(done[bks]["pairs"], ms)
                 if r["key"].split("/")[0] == sub]
    md = far_table(rows)
    print(md)
    stamp = f"{out['date']}, {out['machine']}"
    save(CACHE / f"far_pairs_{config}.json", {"rows": rows, "stamp": stamp, **out})
    (CACHE / f"far_pairs_{config}.md").write_text(md + "\n")
    import far_prediction

    far_prediction.plot(rows, REPO / "bench" / "far_prediction.png",
                        f"deployed threshold (rest-tail model, LOSO), budget {BUDGET:g}/min; "
                        f"{stamp}")
    log(f"wrote {CACHE}/far_pairs_{config}.md, .json and bench/far_prediction.png")
    # the window again, now that the threshold comes from the model of rest: at each window
    # its own held-out shapes (blocks of the length chosen above)
    b = float(bk.split("=")[1])
    wd = {}
    for w in STREAM_WINDOWS:
        wpath = CACHE / f"rest_tail_{config}_w{w:g}.json"
        got = json.loads(wpath.read_text()) if wpath.exists() else {}
        if bk not in got:
            sw = {(s, i, j): load_streams(CACHE / "streams" / config /
                                          f"{s}_{i}_from_{j}_{w:g}.npz") for s, i, j in tasks}
            shapes_w, pairs_w = _rest_tail_pairs(sw, b, base, subjects, f"window {w:g}",
                                                 factors=(1.0,))
            got[bk] = {"shapes": {k: list(v) for k, v in shapes_w.items()}, "pairs": pairs_w}
            save(wpath, got)
        for pair, rec in got[bk]["pairs"].items():
            wd.setdefault(f"w={w:g}", {}).setdefault(pair.split("|")[0], []).append(
                rec["grid"]["1"])
    wchoice = loso(wd, choose_policy)
    _print_table(f"window, each with its own rest-tail shapes ({bk}), LOSO", wd, wchoice)
    # per-user window: each pair takes the window whose replay of its OWN calibration session
    # (out of fold, the threshold for the budget) gives the most hits within 3 % wrong
    upath = CACHE / f"per_user_window_{config}.json"
    if not upath.exists():
        per_user = {}
        for s, i, j in tasks:
            opts = {}
            for w in STREAM_WINDOWS:
                got = json.loads((CACHE / f"rest_tail_{config}_w{w:g}.json").read_text())
                xi, se = got[bk]["shapes"][s]
                st = load_streams(CACHE / "streams" / config / f"{s}_{i}_from_{j}_{w:g}.npz")
                _, cal = sel.choose_threshold([st["A"]], max_false_per_min=BUDGET, params={
                    **base, "block_s": b, "shape": xi, "shape_sd": se})
                opts[f"{w:g}"] = {"cal": {k: cal[k] for k in (
                    "hit_rate", "wrong_command_rate", "median_time_to_command_s")},
                    "test": got[bk]["pairs"][f"{s}|{i}|{j}"]["grid"]["1"]}
            per_user[f"{s}|{i}|{j}"] = opts
        save(upath, per_user)
    per_user = json.loads(upath.read_text())

    def own(opts):
        return max(opts, key=lambda w: (opts[w]["cal"]["wrong_command_rate"] <= MAX_WRONG,
                                        round(opts[w]["cal"]["hit_rate"], 4),
                                        -(opts[w]["cal"]["median_time_to_command_s"] or 99)))
    chosen = {k: own(v) for k, v in per_user.items()}
    p = _pooled([per_user[k][w]["test"] for k, w in chosen.items()])
    print(f"per-user window by the calibration's own replay: hits {100 * p['hit_rate']:.1f} %, "
          f"wrong {100 * p['wrong_command_rate']:.1f} %, "
          f"{p['false_activations_per_min']:.2f} false/min, median "
          f"{p['median_time_to_command_s']:.2f} s; windows "
          + ", ".join(f"{w} s: {list(chosen.values()).count(w)}" for w in
                      sorted(set(chosen.values()))))
    # fbcca calibrated as `calibrate --methods fbcca` does (it learns a rest head), at the
    # chosen block length
    b = float(bk.split("=")[1])
    fpath = CACHE / f"rest_tail_fbcca_calibrated_block{b:g}_w{REST_WINDOW:g}.json"
    if not fpath.exists():
        fb = _calibrated_streams("fbcca", REST_WINDOW)
        shapes, pairs = _rest_tail_pairs(fb, b, base, subjects, "fbcca", factors=REST_FACTORS)
        save(fpath, {"shapes": {k: list(v) for k, v in shapes.items()}, "pairs": pairs})
    fd = json.loads(fpath.read_text())
    print(f"fbcca, block {b:g} s: shipped shape {fd['shapes']['all']}; held out: "
          + ", ".join(f"{k[-2:]} {v[0]:+.3f}" for k, v in fd["shapes"].items() if k != "all"))
    frows = _far_rows(fd["pairs"])
    print(far_table(frows))
    p = _pooled([r["grid"]["1"] for r in fd["pairs"].values()])
    print(f"fbcca pooled: hits {100 * p['hit_rate']:.1f} %, wrong "
          f"{100 * p['wrong_command_rate']:.1f} %, {p['false_activations_per_min']:.2f} "
          f"false/min, median {p['median_time_to_command_s']:.2f} s")


def far_table(rows: list[dict]) -> str:
    """Markdown: predicted against observed false activations per session pair."""
    from scipy.stats import poisson

    out = ["| subject | calibration -> test | rest blocks | predicted / min (80 % interval) | "
           "observed | observed / min | inside 90 % predictive range |",
           "|---|---|---|---|---|---|---|"]
    inside = 0
    for r in rows:
        s, b, a = r["key"].split("/")
        lo = poisson.ppf(0.05, r["lo"] * r["rest_min"])
        hi = poisson.ppf(0.95, r["hi"] * r["rest_min"])
        ok = lo <= r["fa"] <= hi
        inside += ok
        out.append(f"| {s[-2:]} | {a} -> {b} | {r['n_blocks']} | {r['pred']:.2f} "
                   f"({r['lo']:.2f}-{r['hi']:.2f}) | {r['fa']} in {r['rest_min']:.2f} min | "
                   f"{r['fa'] / r['rest_min']:.2f} | {'yes' if ok else 'no'} |")
    rm = sum(r["rest_min"] for r in rows)
    pred = sum(r["pred"] * r["rest_min"] for r in rows)
    fa = sum(r["fa"] for r in rows)
    out.append(f"| all | {len(rows)} pairs | | {pred / rm:.2f} (expected {pred:.1f}) | {fa} in "
               f"{rm:.1f} min | {fa / rm:.2f} | {inside}/{len(rows)} |")
    return "\n".join(out)


# ---------------------------------------------------------------------- stage: population
#: Threshold margins tried for the decoder without calibration (``population``).
POP_MARGINS = (1.0, 1.25, 1.5, 2.0, 2.5, 3.0)
POP_WINDOWS = (1.0, 2.0)


def _population_streams(recs: dict, w: float) -> dict[str, list[ScoreStream]]:
    """Each subject's sessions scored by a population prior trained WITHOUT the subject (what
    ``ssvep-exo run`` without a profile gives a new user), cached."""
    import train_population

    from bci.decoders.population import PopulationRessFBCCA

    out = {}
    raws = None
    for s in recs:
        paths = [CACHE / "streams" / "population" / f"{s}_{i}_{w:g}.npz"
                 for i in range(len(recs[s]))]
        if not all(p.exists() for p in paths):
            raws = raws or {o: [load_recording(p) for p in ps] for o, ps in recs.items()}
            t0 = time.perf_counter()
            parts = [train_population.training_windows(raw, w)
                     for o, v in raws.items() if o != s for raw in v]
            X = np.concatenate([x for x, _ in parts])
            y = np.concatenate([lab for _, lab in parts])
            prior = CACHE / "priors" / f"without_{s}_w{w:g}.npz"
            prior.parent.mkdir(parents=True, exist_ok=True)
            PopulationRessFBCCA(prior=None, sfreq=256.0, freqs=FREQS).fit(X, y).save_prior(
                prior, ch_names=list(raws[s][0].ch_names), subjects=[o for o in raws
                                                                     if o != s])
            dec = PopulationRessFBCCA(prior=str(prior), sfreq=256.0, freqs=FREQS).fit(
                np.zeros((1, X.shape[1], X.shape[2])))
            for raw, path in zip(raws[s], paths):
                _save_streams(path, {"S": score_stream(dec, raw, window_s=w, step=STEP)})
            log(f"population streams {s} {w:g} s ({time.perf_counter() - t0:.0f} s)")
        out[s] = [load_streams(p)["S"] for p in paths]
    return out


def stage_population() -> None:
    """The population decoder with no calibration (``ssvep-exo run`` without a profile):
    its absolute threshold from the model of rest of the OTHER subjects' sessions, each
    scored by a prior trained without that subject (new users for it), the shipped policy
    otherwise; window LOSO by :func:`choose_policy`. Shipped: every subject's streams."""
    recs = recordings()
    subjects = sorted(recs)
    params = {**sel.POLICY_DEFAULTS, **sel.REST_TAIL_DEFAULTS, "shape": None,
              "shape_sd": 0.0}  # hundreds of rest blocks: the shape is fitted
    path = CACHE / "population_policy.json"
    done = json.loads(path.read_text()) if path.exists() else {}
    # every key names its margin (caches written before the margins: "w=1" is margin 1)
    done = {(k if "margin" in k else f"{k},margin=1"): v for k, v in done.items()}
    for w in POP_WINDOWS:
        key = f"w={w:g},margin=1"
        if key in done:
            continue
        streams = _population_streams(recs, w)
        res = {}
        for s in subjects + ["all"]:
            train = [st for o, v in streams.items() if o != s for st in v]
            pol, cal = sel.choose_threshold(train, max_false_per_min=BUDGET, params=params)
            recs_s = [_record(pol, st) for st in streams.get(s, [])]
            res[s] = {"policy": pol.to_dict(), "records": recs_s,
                      "predicted": cal["predicted"]["per_min"],
                      "shape": cal["predicted"]["rest_tail"]["shape"]}
            log(f"population {key} {s}: threshold {pol.threshold:.3g}, shape "
                f"{res[s]['shape']:+.2f}")
        done[key] = res
        save(path, done)
    # the same thresholds times a margin: the model of the other users' pooled rest holds
    # the budget for the average user, not for each (a threshold for a new user nobody has
    # calibrated); the margin is chosen leave-one-subject-out with the window
    for w in POP_WINDOWS:
        streams = None
        for m in POP_MARGINS[1:]:
            key = f"w={w:g},margin={m:g}"
            if key in done:
                continue
            streams = streams or _population_streams(recs, w)
            res = {}
            for s in subjects + ["all"]:
                d = done[f"w={w:g},margin=1"][s]["policy"]
                pol = DecisionPolicy.from_dict({**d, **{k: d[k] * m for k in (
                    "threshold", "drift", "clip")}})
                res[s] = {"policy": pol.to_dict(),
                          "records": [_record(pol, st) for st in streams.get(s, [])]}
            done[key] = res
            save(path, done)
            log(f"population {key} replayed")
    save(path, done)
    per = {k: {s: v[s]["records"] for s in subjects} for k, v in done.items()}
    choice = loso(per, lambda rows: choose_policy(rows, each_user=True))
    out = _print_table(f"population decoder, no calibration (prior without the subject), "
                       f"budget {BUDGET}/min for each of the other users", per, choice)
    shipped = done[choice["all"]]["all"]["policy"]
    print(f"shipped ({choice['all']}): {json.dumps(shipped)}")
    save(CACHE / "report_population.json", {**out, "shipped_policy": shipped})


# ---------------------------------------------------------------------- stage: ceiling
ADAPTED_WINDOWS = (1.0, 2.0)
#: Window pairs whose log-posteriors are averaged (the 1 s and 2 s evidence pooled).
POOLED_WINDOWS = ((1.0, 2.0), (1.0, 1.5), (1.5, 2.0))
#: Threshold factors of the sweep that shows what the weak responders could get at any
#: false-activation rate.
CEILING_FACTORS = (0.25, 0.35, 0.5, 0.7, 1.0)
WEAK = ("subject01", "subject02", "subject05", "subject08")


def _adapted_streams(w: float) -> dict:
    """For each test session: the out-of-fold streams of its calibration session and the
    test session's stream, for the population decoder adapted with the calibration session,
    its prior trained WITHOUT the subject; cached."""
    from bci.decoders.population import PopulationRessFBCCA

    _population_streams(recordings(), w)  # the held-out priors (trained once, cached)
    return _calibrated_streams(
        "population", w, tag="population-adapted",
        estimator=lambda s: PopulationRessFBCCA(
            prior=str(CACHE / "priors" / f"without_{s}_w{w:g}.npz"), sfreq=256.0,
            freqs=FREQS))


def _pooled_stream(a: ScoreStream, b: ScoreStream) -> ScoreStream:
    """The mean of two streams' log-posteriors at the windows ending together."""
    _, ia, ib = np.intersect1d(np.round(a.t, 4), np.round(b.t, 4), return_indices=True)
    return dataclasses.replace(b, scores=0.5 * (a.scores[ia] + b.scores[ib]), t=b.t[ib])


def _replay_pair(st: dict, params: dict, factor: float = 1.0) -> tuple[dict, dict]:
    """The calibration replay (for the deployed criterion) and the test session's record at
    the budget's threshold times ``factor``."""
    pol, cal = sel.choose_threshold([st["A"]], max_false_per_min=BUDGET, params=params)
    if factor != 1.0:
        pol = sel.policy_for(st["B"].classes, cal["threshold_at_budget"] * factor, params)
    return {k: cal[k] for k in ("hit_rate", "wrong_command_rate",
                                "median_time_to_command_s")}, _record(pol, st["B"])


def stage_ceiling(config: str | None = None) -> None:
    """What else could lift the weak responders, on the deployed path, LOSO.

    Candidates: ``ress-fbcca`` at each window; the population decoder adapted with the
    calibration session (prior trained without the subject); the 1 s and 2 s log-posteriors
    pooled. Each alone, and each session pair taking the candidate whose out-of-fold replay
    of its own calibration session is best by the deployed criterion (``sel.policy_rank``),
    every threshold from the model of rest with the GEV shape held out per subject. Then the
    weak responders' hits, wrong trials and false activations at lower thresholds: what the
    decoder allows them at any false-activation rate.
    """
    config = config or decoder_choice()["all"]
    tasks = stream_tasks(recordings())
    subjects = sorted({s for s, _, _ in tasks})
    base = {k: sel.POLICY_DEFAULTS[k] for k in ("drift", "clip", "horizon_s", "refractory_s",
                                                  "release_s")}
    b = sel.REST_TAIL_DEFAULTS["block_s"]
    calibrated = {w: {(s, i, j): load_streams(CACHE / "streams" / config /
                                              f"{s}_{i}_from_{j}_{w:g}.npz")
                      for s, i, j in tasks} for w in STREAM_WINDOWS}
    cands = {f"ress-fbcca {w:g} s": calibrated[w] for w in STREAM_WINDOWS}
    for w in ADAPTED_WINDOWS:
        cands[f"population adapted {w:g} s"] = _adapted_streams(w)
    for w1, w2 in POOLED_WINDOWS:
        cands[f"ress-fbcca {w1:g} s + {w2:g} s pooled"] = {
            k: {x: _pooled_stream(calibrated[w1][k][x], calibrated[w2][k][x])
                for x in ("A", "B")} for k in tasks}
    path = CACHE / f"ceiling_{config}.json"
    res = json.loads(path.read_text()) if path.exists() else {}
    for name, streams in cands.items():
        if name in res:
            continue
        shapes = _held_out_shapes(streams, b, base, subjects)
        rows = {}
        for (s, i, j), st in streams.items():
            xi, se = shapes[s]
            params = {**base, "block_s": b, "shape": xi, "shape_sd": se}
            rows[f"{s}|{i}|{j}"] = {f"{f:g}": dict(zip(("cal", "test"), _replay_pair(
                st, params, f))) for f in (CEILING_FACTORS if name.startswith("ress-fbcca")
                                           and "pooled" not in name else (1.0,))}
        res[name] = rows
        save(path, res)
        log(f"ceiling: {name} replayed")

    def line(label: str, names: list[str], factor: str = "1") -> str:
        pairs = sorted(res[names[0]])
        chosen = {p: max(names, key=lambda n: sel.policy_rank(res[n][p]["1"]["cal"]))
                  for p in pairs}
        per: dict[str, list] = {}
        for p, n in chosen.items():
            per.setdefault(p.split("|")[0], []).append(res[n][p][factor]["test"])
        a = _pooled([r for v in per.values() for r in v])
        return (f"| {label} | {100 * a['hit_rate']:.1f} | {100 * a['wrong_command_rate']:.1f} "
                f"| {a['false_activations_per_min']:.2f} | {a['median_time_to_command_s']:.2f} | "
                + " | ".join(f"{100 * _pooled(per[s])['hit_rate']:.0f}" for s in subjects)
                + " |")

    print(f"candidates on the deployed path, LOSO shapes, budget {BUDGET}/min "
          f"({dt.date.today().isoformat()}, {machine()})")
    print("| candidates | hits % | wrong % | false/min | median s | "
          + " | ".join(s[-2:] for s in subjects) + " |")
    print("|---|---|---|---|---|" + "---|" * len(subjects))
    for name in res:
        print(line(name, [name]))
    ress = [n for n in res if n.startswith("ress-fbcca") and "pooled" not in n]
    print(line("per-user window (shipped)", ress))
    print(line("per-user, adapted population added", ress + [n for n in res if "adapted" in n]))
    print(line("per-user, pooled windows added", ress + [n for n in res if "pooled" in n]))
    print(line("per-user, all candidates", list(res)))
    print("\nthe weak responders at lower thresholds (per-user window, shipped candidates): "
          "hits % / wrong % / false activations per min")
    print("| subject | " + " | ".join(f"threshold x{f:g}" for f in CEILING_FACTORS) + " |")
    print("|---|" + "---|" * len(CEILING_FACTORS))
    pairs = sorted(res[ress[0]])
    chosen = {p: max(ress, key=lambda n: sel.policy_rank(res[n][p]["1"]["cal"])) for p in pairs}
    for s in WEAK:
        cells = []
        for f in CEILING_FACTORS:
            a = _pooled([res[n][p][f"{f:g}"]["test"] for p, n in chosen.items()
                         if p.split("|")[0] == s])
            cells.append(f"{100 * a['hit_rate']:.0f} / {100 * a['wrong_command_rate']:.0f} / "
                         f"{a['false_activations_per_min']:.1f}")
        print(f"| {s[-2:]} | " + " | ".join(cells) + " |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("stage", choices=("decoder", "streams", "policy", "fbcca", "report",
                                     "rest_tail", "population", "ceiling"))
    ap.add_argument("--config", default=None, help="decoder config (default: the LOSO choice)")
    ap.add_argument("--windows", default=None,
                    help="streams/policy stages: only these windows, e.g. 1.5")
    ap.add_argument("--subjects", default=None,
                    help="streams stage: only these subjects, e.g. subject02,subject04")
    args = ap.parse_args(argv)
    log(f"stage {args.stage} on {DATA} ({machine()})")
    windows = (STREAM_WINDOWS if args.windows is None
               else [float(w) for w in args.windows.split(",")])
    {"decoder": stage_decoder,
     "streams": lambda: stage_streams(args.config, args.subjects and args.subjects.split(","),
                                      windows),
     "policy": lambda: stage_policy(args.config, windows),
     "fbcca": stage_fbcca,
     "report": lambda: stage_report(args.config),
     "rest_tail": lambda: stage_rest_tail(args.config),
     "population": stage_population,
     "ceiling": lambda: stage_ceiling(args.config)}[args.stage]()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
