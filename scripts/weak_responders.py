"""Decoding for weak responders, measured leave-one-subject-out on the dev recordings.

Stages (results cached under ``cache/weak/``, git-ignored):

``windows``  cross-session 4-class accuracy of sliding windows (every window inside a
             trial, from 1 s after the cue to 6 s after it) for decoder variants: harmonics,
             sub-bands, RESS filters per sub-band, filter-bank covariance features, training
             stride, regularisation, other subjects' data added to the user's
             (population-assisted). Every test session is decoded by a model calibrated on
             another session of the same subject (the one before it; the first: the one
             after), as the pseudo-online evaluation does.
``report``   for each subject, the variant with the best mean accuracy on the OTHER subjects
             (variants in ``REJECTED`` left out), and its accuracy on the held-out subject.
``confound`` whether a variant's features follow time in the session (rest comes first in
             every dev session): early vs late target trials decoded cross-session, and the
             correlation of P(rest) on target trials with the trial index.
``bound``    the trial-level share an ideal integration of each whole trial would get right.
``streams``  out-of-fold calibration and test score streams per pair (cached).
``online``   pseudo-online replay of the streams (threshold from the rest-tail model).

Usage: OMP_NUM_THREADS=1 nice python scripts/weak_responders.py windows --window 1
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _research as rs  # noqa: E402
import _window_stats as ws  # noqa: E402

OUT = ws.REPO / "cache" / "weak"
WEAK = ("subject01", "subject02", "subject05", "subject08")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def pairs(sts: list) -> list[tuple[int, int]]:
    """(calibration, test) per test session: the session before (the first: the next)."""
    return [(i - 1 if i > 0 else 1, i) for i in range(len(sts))]


def sliding_eval_mask(st, start=1.0, end=6.0):
    """Windows lying inside a trial: start >= cue + start, end <= cue + end (and before the
    next cue); their labels."""
    ci = st.cue_index()
    ok = ci >= 0
    on = st.onsets[np.clip(ci, 0, None)]
    nxt = np.append(st.onsets[1:], st.onsets[-1] + st.spacing)[np.clip(ci, 0, None)]
    m = ok & (st.t - st.window >= on + start - 1e-9) & (st.t <= np.minimum(on + end, nxt))
    return m, st.labels[np.clip(ci, 0, None)]


VARIANTS: dict[str, dict] = {
    # ress-fbcca as deployed on main before issue 11 (3 harmonics, sub-bands 11/19/27-64 Hz,
    # 2 filters, C=0.03, training windows 1-6 s after the cue)
    "base": {},
    # ress-fbcca with the defaults issue 11 chose leave-one-subject-out (C=0.003, 1-5 s)
    "dep": {"C": 0.003, "_end": 5.0},
    "dep-h4": {"h": 4, "bands": (3, 4, 5), "ress_band": 3, "C": 0.003, "_end": 5.0},
    "dep-h4-C0.01": {"h": 4, "bands": (3, 4, 5), "ress_band": 3, "C": 0.01, "_end": 5.0},
    "dep-snrh": {"C": 0.003, "_end": 5.0, "snr": "h"},
    "dep-snrsum": {"C": 0.003, "_end": 5.0, "snr": "sum"},
    "dep-snrh-C0.01": {"C": 0.01, "_end": 5.0, "snr": "h"},
    "dep-snrh-nocca": {"C": 0.003, "_end": 5.0, "snr": "h", "n_cca": 0},
    "h2": {"h": 2},
    "h4-wide": {"h": 4, "bands": (3, 4, 5), "ress_band": 3},
    "h5-wide": {"h": 5, "bands": (3, 4, 5), "ress_band": 3},
    "h3-wide": {"h": 3, "bands": (3, 4, 5), "ress_band": 3},
    "h4-wide5": {"h": 4, "bands": (3, 4, 5, 6, 7), "ress_band": 3},
    "base-pb": {"ress_per_band": True},
    "h4-wide-pb": {"h": 4, "bands": (3, 4, 5), "ress_per_band": True},
    "base-f3": {"nf": 3},
    "base-f1": {"nf": 1},
    "base-cca1": {"n_cca": 1},
    "base-cca3": {"n_cca": 3},
    "base-C0.01": {"C": 0.01},
    "base-C0.1": {"C": 0.1},
    "base-ts": {"tangent": (0,)},
    "base-stride0.1": {"_stride": 0.1},
    "base-span0.5-6": {"_start": 0.5},
    "base-pop0.1": {"_pop": 0.1},
    "base-pop0.3": {"_pop": 0.3},
    "base-pop1": {"_pop": 1.0},
    "base-pop3": {"_pop": 3.0},
    "h4-wide-pop0.3": {"h": 4, "bands": (3, 4, 5), "ress_band": 3, "_pop": 0.3},
    "h4-wide-pop1": {"h": 4, "bands": (3, 4, 5), "ress_band": 3, "_pop": 1.0},
}


def split(spec: dict) -> tuple[rs.Config, dict]:
    cfg = rs.Config(**{k: v for k, v in spec.items() if not k.startswith("_")})
    return cfg, {k[1:]: v for k, v in spec.items() if k.startswith("_")}


def population_extra(allst: dict, subject: str, cfg: rs.Config, weight: float, stride=0.5,
                     start=1.0, end=6.0):
    """Training windows of every other subject (all sessions), with a per-window weight that
    gives them ``weight`` times the user's total weight overall."""
    others = [st for s, sts in allst.items() if s != subject for st in sts]
    masks, y, _ = rs.training_set(others, classes=cfg.classes, stride=stride, start=start,
                                  end=end)
    return others, masks, y


def run_windows(window: float, names: list[str]) -> None:
    allst = ws.load_all(window, neighbours=any("snr" in VARIANTS[n] for n in names))
    OUT.mkdir(parents=True, exist_ok=True)
    for name in names:
        f = OUT / f"windows_w{window:g}_{name}.json"
        if f.exists():
            continue
        cfg, opt = split(VARIANTS[name])
        t0 = time.perf_counter()
        res = {}
        for s, sts in allst.items():
            extra_base = population_extra(allst, s, cfg, 1.0) if opt.get("pop") else None
            rows = []
            for a, b in pairs(sts):
                A, B = sts[a], sts[b]
                masks, y, _ = rs.training_set([A], classes=cfg.classes,
                                              stride=opt.get("stride", 0.5),
                                              start=opt.get("start", 1.0),
                                              end=opt.get("end", 6.0))
                if extra_base is not None:
                    # the others get `pop` times the user's total weight, spread evenly
                    ew = opt["pop"] * len(y) / len(extra_base[2])
                    model = rs._fit_with_extra(cfg, [A], masks, y, (*extra_base, ew))
                else:
                    model = rs.Model(cfg).fit([A], masks, y)
                m, lab = sliding_eval_mask(B)
                sc = model.scores(B, m)
                pred = np.asarray(cfg.classes)[sc.argmax(1)]
                truth = lab[m]
                per = {c: float(np.mean(pred[truth == c] == c)) for c in cfg.classes}
                rows.append({"pair": [a, b], "acc": float(np.mean(pred == truth)),
                             "per_class": per, "n": int(m.sum())})
            res[s] = rows
            log(f"{name} w{window:g} {s}: " + " ".join(f"{r['acc']:.3f}" for r in rows))
        f.write_text(json.dumps({"variant": name, "spec": VARIANTS[name], "window": window,
                                 "results": res, "seconds": time.perf_counter() - t0,
                                 "stamp": ws.stamp()}, indent=1))


# ---------------------------------------------------------------------- score streams
def streams(window: float, name: str, allst=None) -> dict:
    """Per subject and (calibration, test) pair: out-of-fold scores of every window of the
    calibration session and the test session's scores by the model fitted on all of it.
    Cached in ``cache/weak/streams_w{window}_{name}.npz``."""
    f = OUT / f"streams_w{window:g}_{name}.npz"
    if f.exists():
        with np.load(f, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    allst = allst or ws.load_all(window, neighbours="snr" in VARIANTS[name])
    if "snr" in VARIANTS[name]:
        for s, paths in ws.sessions().items():
            for st, p in zip(allst[s], paths):
                if st.PN is None:
                    st.PN = ws.load_neighbours(s, p, window)
    cfg, opt = split(VARIANTS[name])
    fit_kw = {"stride": opt.get("stride", 0.5), "start": opt.get("start", 1.0),
              "end": opt.get("end", 6.0)}
    out = {}
    t0 = time.perf_counter()
    for s, sts in allst.items():
        extra = None
        if opt.get("pop"):
            others, em, ey = population_extra(allst, s, cfg, 1.0, **fit_kw)
        for a, b in pairs(sts):
            A, B = sts[a], sts[b]
            masks, y, _ = rs.training_set([A], classes=cfg.classes, **fit_kw)
            if opt.get("pop"):
                extra = (others, em, ey, opt["pop"] * len(y) / len(ey))
            out[f"{s}/{a}/{b}/cal"] = rs.oof_scores(cfg, [A], fit_kw=fit_kw, extra=extra)[0]
            model = rs._fit_with_extra(cfg, [A], masks, y, extra)
            out[f"{s}/{a}/{b}/test"] = model.scores(B)
        log(f"streams {name} w{window:g} {s} ({time.perf_counter() - t0:.0f} s)")
    OUT.mkdir(parents=True, exist_ok=True)
    np.savez(f, **out)
    return out


def aligned(stA, scA, stB, scB):
    """Scores of two window lengths at the windows ending at the same time (the longer
    window's times)."""
    ka = np.round(stA.t * 256).astype(int)
    kb = np.round(stB.t * 256).astype(int)
    common, ia, ib = np.intersect1d(ka, kb, return_indices=True)
    return ia, ib


def combined_streams(spec: str, allst_by_w: dict) -> tuple[dict, dict]:
    """Streams of ``"variant@1"`` or pooled ``"variant@1+2"`` (log-posteriors averaged at
    windows ending at the same time); returns (streams, stats per window) keyed like
    :func:`streams`, with the stats of the longest window."""
    name, ws_ = spec.split("@")
    wins = [float(w) for w in ws_.split("+")]
    for w in wins:
        allst_by_w.setdefault(w, ws.load_all(w))
    per = {w: streams(w, name, allst_by_w[w]) for w in wins}
    wl = max(wins)
    out, stats = {}, {}
    for key in per[wl]:
        s, a, b, kind = key.split("/")
        st_of = {w: allst_by_w[w][s][int(a if kind == "cal" else b)] for w in wins}
        ref = st_of[wl]
        acc = per[wl][key].copy()
        for w in wins:
            if w == wl:
                continue
            ia, ib = aligned(st_of[w], None, ref, None)
            sub = np.full_like(acc, np.nan)
            sub[ib] = per[w][key][ia]
            acc = acc + sub
        out[key] = rs.log_softmax(acc / len(wins))
        stats[key] = ref
    return out, stats


def run_online(specs: list[str], budget: float, policy: rs.Policy, margin: float = 1.0,
               verbose: bool = True, rule: str = "evt", **evt_kw) -> dict:
    """Pseudo-online (research replay): the threshold from the calibration session's
    out-of-fold streams (``rule="emp"``: bisection, the smallest that keeps its rest within
    the budget; ``"evt"``: the rest-tail model) x margin, then the test session replayed and
    scored."""
    allst_by_w: dict = {}
    results = {}
    for spec in specs:
        sc, st = combined_streams(spec, allst_by_w)
        per_subject: dict = {}
        keys = sorted(k[:-4] for k in sc if k.endswith("/cal"))
        if rule == "evt":
            hs = {k: v[0] for k, v in rs.evt_thresholds(keys, st, sc, policy, budget,
                                                          **evt_kw).items()}
        for key in (k + "/cal" for k in keys):
            s, a, b, _ = key.split("/")
            cal, test = sc[key], sc[key[:-3] + "test"]
            stc, stt = st[key], st[key[:-3] + "test"]
            okc, okt = np.isfinite(cal).all(1), np.isfinite(test).all(1)
            if rule == "evt":
                h = hs[key[:-4]]
            else:
                h, _ = rs.choose_threshold([rs._sub(stc, okc)], [cal[okc]], budget, policy)
            pol = rs.Policy(h * margin, policy.drift, policy.clip, policy.horizon_s,
                            policy.refractory_s, policy.release_s)
            r = rs.score(pol.replay(stt.t[okt], test[okt]), stt)
            r["h"] = h
            per_subject.setdefault(s, []).append(r)
        pooled = {s: rs.pool(v) for s, v in per_subject.items()}
        allr = rs.pool([r for v in per_subject.values() for r in v])
        results[spec] = {"subjects": pooled, "all": allr}
        if verbose:
            print(f"{spec}: {rs.fmt(allr)}  | " + " ".join(
                f"{s[-2:]}:{100 * r['hit']:.0f}/{r['fa_min']:.1f}" for s, r in pooled.items()),
                flush=True)
    return results


#: Variants left out of the leave-one-subject-out choice, and why.
REJECTED = {
    "base-ts": "filter-bank covariance (tangent-space) features tell early from late trials "
               "of a session (the rest-first confound of these recordings): stage confound",
}


def confound_check(window: float = 1.0) -> None:
    """Do a variant's features follow time in the session? Two checks, cross-session:
    early (cues 8-15) vs late (cues 24-31) target trials decoded from the features (chance
    50 %), and the correlation of P(rest) on target trials with the trial index."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    allst = ws.load_all(window)
    for name in ("dep", "base-ts"):
        cfg, opt = split(VARIANTS[name])
        corr, acc = [], []
        for sts in allst.values():
            for a, b in pairs(sts):
                A, B = sts[a], sts[b]
                m, y, _ = rs.training_set([A], end=opt.get("end", 6.0))
                model = rs.Model(cfg).fit([A], m, y)
                em, lab = sliding_eval_mask(B)
                sc = model.scores(B, em)
                ci = B.cue_index()[em]
                tgt = lab[em] != rs.REST
                idx = np.unique(ci[tgt])
                pr = np.exp(sc[:, -1])
                corr.append(np.corrcoef(idx, [pr[tgt & (ci == k)].mean() for k in idx])[0, 1])

                def early_late(st):
                    mm, _ = sliding_eval_mask(st)
                    c = st.cue_index()
                    keep = mm & (((c >= 8) & (c <= 15)) | (c >= 24))
                    return keep, np.where(c >= 24, "late", "early")[keep]
                ma, ya = early_late(A)
                mb, yb = early_late(B)
                clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.03, max_iter=2000))
                clf.fit(model.features(A, ma), ya)
                acc.append(np.mean(clf.predict(model.features(B, mb)) == yb))
        print(f"{name}: early-vs-late target trials decoded cross-session "
              f"{100 * np.mean(acc):.0f} % (chance 50); corr(trial index, P(rest) on target "
              f"trials) {np.mean(corr):+.2f}")


def trial_bound(window: float, name: str = "dep") -> None:
    """What integrating a whole trial could give: per subject, the share of target trials
    whose mean log-posterior over the windows 1-6 s after the cue favours the cued target
    (4 classes; and among the targets only), and of rest trials that favour rest."""
    allst = ws.load_all(window)
    sc = streams(window, name, allst)
    out = []
    for s, sts in allst.items():
        c4 = c3 = n = rest_ok = n_rest = 0
        for a, b in pairs(sts):
            B = sts[b]
            x = sc[f"{s}/{a}/{b}/test"]
            ci = B.cue_index()
            for j, (on, lab) in enumerate(zip(B.onsets, B.labels)):
                m = (ci == j) & (B.t - window >= on + 1.0) & (B.t <= on + 6.0)
                if not m.any():
                    continue
                mean = x[m].mean(axis=0)
                if lab == rs.REST:
                    n_rest += 1
                    rest_ok += int(mean.argmax() == len(mean) - 1)
                    continue
                k = list(ws.LABELS).index(lab)
                n += 1
                c4 += int(mean.argmax() == k)
                c3 += int(mean[:-1].argmax() == k)
        out.append(f"{s[-2:]}: {100 * c4 / n:.0f} / {100 * c3 / n:.0f} / "
                   f"{100 * rest_ok / n_rest:.0f}")
    print(f"{name} {window:g} s, trial-level (4-class / targets only / rest trials) %: "
          + " | ".join(out))


def subject_acc(d: dict) -> dict[str, float]:
    return {s: float(np.mean([r["acc"] for r in rows])) for s, rows in d["results"].items()}


def report(window: float) -> None:
    rows = {}
    for f in sorted(OUT.glob(f"windows_w{window:g}_*.json")):
        d = json.loads(f.read_text())
        rows[d["variant"]] = subject_acc(d)
    if not rows:
        return
    subjects = sorted(next(iter(rows.values())))
    head = f"{'variant':<16}" + "".join(f"{s[-2:]:>6}" for s in subjects) + f"{'mean':>7}" \
        f"{'weak':>7}"
    print(f"window {window:g} s: cross-session sliding-window 4-class accuracy %")
    print(head)
    for v, acc in sorted(rows.items(), key=lambda kv: -np.mean(list(kv[1].values()))):
        print(f"{v:<16}" + "".join(f"{100 * acc[s]:6.1f}" for s in subjects)
              + f"{100 * np.mean(list(acc.values())):7.1f}"
              + f"{100 * np.mean([acc[s] for s in WEAK]):7.1f}")
    # LOSO: the variant with the best mean over the other subjects
    out = {}
    ok = [v for v in rows if v not in REJECTED]
    for s in subjects:
        best = max(ok, key=lambda v: np.mean([rows[v][o] for o in subjects if o != s]))
        out[s] = (best, rows[best][s])
    print("LOSO choice: " + ", ".join(f"{s[-2:]}: {v} {100 * a:.1f}" for s, (v, a) in
                                      out.items()))
    ref = "dep" if "dep" in rows else "base"
    print(f"LOSO mean {100 * np.mean([a for _, a in out.values()]):.1f} "
          f"({ref} {100 * np.mean(list(rows[ref].values())):.1f}); left out: "
          + "; ".join(f"{v}: {why}" for v, why in REJECTED.items() if v in rows))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("stage", choices=["windows", "report", "online", "streams", "confound",
                                      "bound"])
    ap.add_argument("--specs", default="base@1")
    ap.add_argument("--budget", type=float, default=0.5)
    ap.add_argument("--rule", choices=["evt", "emp"], default="evt")
    ap.add_argument("--window", type=float, default=1.0)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    a = ap.parse_args()
    if a.stage == "bound":
        trial_bound(a.window)
        return
    if a.stage == "confound":
        confound_check(a.window)
        return
    if a.stage == "streams":
        for spec in a.specs.split(","):
            name, w = spec.split("@")
            streams(float(w), name)
        return
    if a.stage == "online":
        run_online(a.specs.split(","), a.budget, rs.Policy(), rule=a.rule)
        return
    if a.stage == "windows":
        run_windows(a.window, a.variants.split(","))
    report(a.window)


if __name__ == "__main__":
    main()
