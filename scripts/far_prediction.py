"""Predicted against observed false activations per dev session pair (the rest-tail model).

For every (calibration, test) session pair of a subject (the test session calibrated on the
one before it; the first on the one after): the decision policy's evidence during the
calibration session's rest trials (out-of-fold scores, a policy that never commits) is cut
into blocks; a GEV of the per-block maxima (:mod:`calibration.rest_model`), its shape pooled
over the OTHER subjects' calibration sessions, gives the threshold for the budget and the
predicted false-activation rate with an interval. The test session is replayed with that
threshold and its false activations counted. Compared with the empirical rule (the smallest
threshold that keeps the calibration rest within the budget).

Usage: OMP_NUM_THREADS=1 nice python scripts/far_prediction.py [--spec dep@2] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import poisson

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _research as rs  # noqa: E402
import _window_stats as ws  # noqa: E402
import weak_responders as wr  # noqa: E402

OUT = ws.REPO / "cache" / "far"
FACTORS = (0.5, 0.7, 1.0, 1.4, 2.0)


def pair_rows(spec: str, budget: float, block_s: float | None, expected: bool = True):
    """Per pair: the threshold for the budget from the rest-tail model, the predicted rate
    (expected, interval) and the observed false activations on the test session at it and at
    multiples of it (``FACTORS``)."""
    from calibration.rest_model import fit_rest_tail

    pol = rs.Policy()
    sc, st = wr.combined_streams(spec, {})
    keys = sorted(k[:-4] for k in sc if k.endswith("/cal"))
    evt = rs.evt_thresholds(keys, st, sc, pol, budget, block_s=block_s, expected=expected)
    rows = []
    for key in keys:
        h, tail = evt[key]
        stc, cal = st[key + "/cal"], sc[key + "/cal"]
        ok = np.isfinite(cal).all(1)
        calst = rs._sub(stc, ok)
        h_emp, _ = rs.choose_threshold([calst], [cal[ok]], budget, pol)
        stt, test = st[key + "/test"], sc[key + "/test"]
        okt = np.isfinite(test).all(1)
        rec = {"key": key, "h": h, "h_emp": h_emp, "shape": tail.shape,
               "shape_se": tail.shape_sd, "n_blocks": tail.n_blocks, "grid": []}
        fn = rs.maxima_fn(calst, cal[ok], pol, tail.block_s)
        for f in FACTORS:
            hf = h * f
            tf = fit_rest_tail(fn(hf), tail.block_s, shape=tail.shape, shape_sd=tail.shape_sd)
            pred, lo, hi = tf.expected_rate(hf)
            p = rs.Policy(hf, pol.drift, pol.clip, pol.horizon_s, pol.refractory_s,
                          pol.release_s)
            r = rs.score(p.replay(stt.t[okt], test[okt]), stt)
            g = {"factor": f, "h": hf, "pred": pred, "lo": lo, "hi": hi,
                 "plug_in": tf.rate_per_min(hf), "fa": r["n_fa"], "rest_min": r["rest_min"],
                 "hits": r["n_hit"], "n": r["n_target"], "wrong": r["n_wrong"],
                 "times": r["times"]}
            rec["grid"].append(g)
            if f == 1.0:
                rec.update({k: g[k] for k in ("pred", "lo", "hi", "plug_in", "fa",
                                              "rest_min", "hits", "n", "wrong", "times")})
        p = rs.Policy(h_emp, pol.drift, pol.clip, pol.horizon_s, pol.refractory_s,
                      pol.release_s)
        r = rs.score(p.replay(stt.t[okt], test[okt]), stt)
        rec.update({"emp_fa": r["n_fa"], "emp_hits": r["n_hit"], "emp_wrong": r["n_wrong"],
                    "emp_times": r["times"]})
        rows.append(rec)
        print(f"{key:<14} xi={tail.shape:+.2f} h_emp={h_emp:6.2f} h={h:6.2f} "
              f"pred={rec['pred']:4.2f} [{rec['lo']:4.2f},{rec['hi']:4.2f}] observed "
              f"{rec['fa']}/{rec['rest_min']:.2f} min (empirical rule {rec['emp_fa']})",
              flush=True)
    return rows


def table(rows) -> str:
    """Markdown table: one row per session pair, pooled last."""
    out = ["| subject | calibration -> test | blocks | predicted / min (80 % interval) | "
           "observed false activations | observed / min | empirical rule: observed |",
           "|---|---|---|---|---|---|---|"]
    for r in rows:
        s, a, b = r["key"].split("/")
        out.append(f"| {s[-2:]} | {a} -> {b} | {r['n_blocks']} | {r['pred']:.2f} "
                   f"({r['lo']:.2f}-{r['hi']:.2f}) | {r['fa']} in {r['rest_min']:.2f} min | "
                   f"{r['fa'] / r['rest_min']:.2f} | {r['emp_fa']} |")
    rm = sum(r["rest_min"] for r in rows)
    pred = sum(r["pred"] * r["rest_min"] for r in rows)
    fa = sum(r["fa"] for r in rows)
    emp = sum(r["emp_fa"] for r in rows)
    out.append(f"| all | {len(rows)} pairs | | {pred / rm:.2f} (expected {pred:.1f} false "
               f"activations) | {fa} in {rm:.1f} min | {fa / rm:.2f} | {emp} "
               f"({emp / rm:.2f} / min) |")
    return "\n".join(out)


def plot(rows, path: Path, title: str) -> None:
    """Predicted against observed false activations: per pair at the budget's threshold
    (counts: the expected number with its 90 % predictive range, and the number observed on
    the next session), and all pairs binned by predicted rate over thresholds around it (a
    reliability diagram)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11.5, 4.8))
    ax = axes[0]
    for i, r in enumerate(rows):
        rm = r["rest_min"]
        exp = r["pred"] * rm
        lo, hi = poisson.ppf(0.05, r["lo"] * rm), poisson.ppf(0.95, r["hi"] * rm)
        ax.plot([i, i], [lo, hi], color="C3", alpha=0.35, lw=6, solid_capstyle="butt",
                label="90 % predictive range" if i == 0 else None)
        ax.plot(i, exp, "_", color="C3", ms=14, mew=2,
                label="expected (rest-tail model)" if i == 0 else None)
        ax.plot(i, r["fa"], "o", color="C0", ms=6,
                label="observed on the next session" if i == 0 else None)
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([r["key"].replace("subject", "s").replace("/", ":", 1) for r in rows],
                       rotation=70, fontsize=7)
    ax.set_ylabel("false activations in the test session's rest")
    n_obs = sum(r["fa"] for r in rows)
    n_exp = sum(r["pred"] * r["rest_min"] for r in rows)
    ax.set_title(f"per pair at the budget's threshold: expected {n_exp:.1f} in all, "
                 f"observed {n_obs}", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    ax = axes[1]
    pts = [(g["pred"], g["fa"], g["rest_min"]) for r in rows for g in r["grid"]]
    pred = np.array([p for p, _, _ in pts])
    edges = np.quantile(pred, np.linspace(0, 1, 7))
    floor = 0.02
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = [(p, f, m) for p, f, m in pts if lo <= p <= hi]
        if not sel:
            continue
        fa = sum(f for _, f, _ in sel)
        rm = sum(m for _, _, m in sel)
        xp = sum(p * m for p, _, m in sel) / rm
        y = fa / rm
        up = poisson.isf(0.05, fa + 1) / rm
        if fa == 0:
            ax.errorbar(xp, floor, yerr=[[0], [up - floor]], fmt="v", color="C0", capsize=3)
            ax.annotate("0", (xp, floor), textcoords="offset points", xytext=(6, -4),
                        fontsize=7)
        else:
            ax.errorbar(xp, y, yerr=[[y - max(poisson.ppf(0.05, fa) / rm, floor)], [up - y]],
                        fmt="s", color="C0", capsize=3)
        ax.annotate(f"{fa}/{rm:.0f} min", (xp, max(y, floor)), textcoords="offset points",
                    xytext=(6, 6), fontsize=7)
    m = max(pred.max(), 1e-2) * 1.5
    ax.plot([floor, m], [floor, m], "k--", lw=1, label="observed = predicted")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("predicted false activations per minute (expected)")
    ax.set_ylabel("observed per minute (pooled in the bin, 90 % interval)")
    ax.set_title(f"thresholds x {', '.join(f'{f:g}' for f in FACTORS)} of the budget's: "
                 "pairs binned by prediction", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spec", default="dep@2")
    ap.add_argument("--budget", type=float, default=0.5)
    ap.add_argument("--block", type=float, default=None,
                    help="block length in s (default: the policy's horizon)")
    ap.add_argument("--plugin", action="store_true", help="plug-in rate instead of expected")
    ap.add_argument("--out", default=None, help="folder for the table, JSON and plot")
    ap.add_argument("--replot", action="store_true", help="plot the saved JSON again")
    a = ap.parse_args()
    t0 = time.perf_counter()
    out = Path(a.out) if a.out else OUT
    tag = a.spec.replace("@", "_") + ("_plugin" if a.plugin else "")
    if a.replot:
        d = json.loads((out / f"far_pairs_{tag}.json").read_text())
        plot(d["rows"], out / f"far_pairs_{tag}.png",
             f"{a.spec}: rest-tail threshold for {a.budget:g}/min, {d['stamp']}")
        return
    rows = pair_rows(a.spec, a.budget, a.block, expected=not a.plugin)
    md = table(rows)
    print(md)
    summarize(rows)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"far_pairs_{tag}.json").write_text(json.dumps(
        {"rows": rows, "spec": a.spec, "budget": a.budget, "stamp": ws.stamp(),
         "seconds": time.perf_counter() - t0}, indent=1))
    (out / f"far_pairs_{tag}.md").write_text(md + "\n")
    plot(rows, out / f"far_pairs_{tag}.png",
         f"{a.spec}: rest-tail threshold for {a.budget:g}/min, {ws.stamp()}")
    print(f"wrote {out}/far_pairs_{tag}.* ({time.perf_counter() - t0:.0f} s)")


def summarize(rows):
    rm = sum(r["rest_min"] for r in rows)
    for name, fa_k, hit_k, wrong_k, t_k in (("rest-tail", "fa", "hits", "wrong", "times"),
                                            ("empirical", "emp_fa", "emp_hits", "emp_wrong",
                                             "emp_times")):
        fa = sum(r[fa_k] for r in rows)
        n = sum(r["n"] for r in rows)
        times = [t for r in rows for t in r[t_k]]
        print(f"  {name}: FA {fa}/{rm:.1f} min = {fa / rm:.2f}/min, hits "
              f"{100 * sum(r[hit_k] for r in rows) / n:.1f} %, wrong "
              f"{100 * sum(r[wrong_k] for r in rows) / n:.1f} %, median "
              f"{np.median(times):.2f} s")
    inside = sum(poisson.ppf(0.05, r["lo"] * r["rest_min"]) <= r["fa"]
                 <= poisson.ppf(0.95, r["hi"] * r["rest_min"]) for r in rows)
    print(f"  predicted {sum(r['pred'] * r['rest_min'] for r in rows):.1f} false activations, "
          f"observed {sum(r['fa'] for r in rows)}; {inside}/{len(rows)} pairs inside the "
          "predictive range")


if __name__ == "__main__":
    main()
