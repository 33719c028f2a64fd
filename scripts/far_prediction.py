"""Predicted against observed false activations per dev session pair (the rest-tail model).

For every (calibration, test) session pair of a subject (the test session calibrated on the
one before it; the first on the one after): the decision policy's evidence during the
calibration session's rest trials (out-of-fold scores, a policy that never commits) is cut
into blocks; a GEV of the per-block maxima (:mod:`calibration.rest_model`), its shape pooled
over the OTHER subjects' calibration sessions, gives the threshold for the budget and the
predicted false-activation rate with an interval. The test session is replayed with that
threshold and its false activations counted. Compared with the empirical rule (the smallest
threshold that keeps the calibration rest within the budget).

Usage: OMP_NUM_THREADS=1 nice python scripts/far_prediction.py [--spec base@1] [--plot F]
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spec", default="base@1")
    ap.add_argument("--budget", type=float, default=0.5)
    ap.add_argument("--blocks", default="3")
    ap.add_argument("--plot", default=None)
    a = ap.parse_args()
    pol = rs.Policy()
    sc, st = wr.combined_streams(a.spec, {})
    keys = sorted(k[:-4] for k in sc if k.endswith("/cal"))
    OUT.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rows = []
    for block_s in [float(b) for b in a.blocks.split(",")]:
        for proc in ("expected", "plug-in"):
            evt = rs.evt_thresholds(keys, st, sc, pol, a.budget, block_s=block_s,
                                    expected=proc == "expected")
            for key in keys:
                h, tail = evt[key]
                stc, cal = st[key + "/cal"], sc[key + "/cal"]
                ok = np.isfinite(cal).all(1)
                h_emp, _ = rs.choose_threshold([rs._sub(stc, ok)], [cal[ok]], a.budget, pol)
                pred, lo, hi = tail.expected_rate(h)
                stt, test = st[key + "/test"], sc[key + "/test"]
                okt = np.isfinite(test).all(1)
                rec = {"key": key, "block_s": block_s, "procedure": proc, "shape": tail.shape,
                       "shape_se": tail.shape_sd, "n_blocks": tail.n_blocks, "h_evt": h,
                       "h_emp": h_emp, "plug_in": tail.rate_per_min(h), "pred": pred,
                       "pred_lo": lo, "pred_hi": hi}
                for name, hh in (("evt", h), ("emp", h_emp)):
                    p = rs.Policy(hh, pol.drift, pol.clip, pol.horizon_s, pol.refractory_s,
                                  pol.release_s)
                    r = rs.score(p.replay(stt.t[okt], test[okt]), stt)
                    rec.update({f"{name}_fa": r["n_fa"], f"{name}_rest_min": r["rest_min"],
                                f"{name}_hits": r["n_hit"], f"{name}_n": r["n_target"],
                                f"{name}_wrong": r["n_wrong"], f"{name}_times": r["times"]})
                rows.append(rec)
                print(f"L={block_s:g} {proc:<8} {key:<14} xi={tail.shape:+.2f} "
                      f"h_emp={h_emp:6.2f} h_evt={h:6.2f} pred={pred:4.2f} [{lo:4.2f},"
                      f"{hi:4.2f}] obs {rec['evt_fa']}/{rec['evt_rest_min']:.2f} min (emp "
                      f"{rec['emp_fa']})  hits {rec['evt_hits']}/{rec['evt_n']} (emp "
                      f"{rec['emp_hits']})", flush=True)
            summarize([r for r in rows if r["block_s"] == block_s and r["procedure"] == proc],
                      f"block {block_s:g} s, {proc}")
    (OUT / f"pairs_{a.spec.replace('@', '_')}.json").write_text(json.dumps(
        {"rows": rows, "stamp": ws.stamp(), "seconds": time.perf_counter() - t0}, indent=1))


def summarize(rows, title):
    rm = sum(r["evt_rest_min"] for r in rows)
    for name in ("evt", "emp"):
        fa = sum(r[f"{name}_fa"] for r in rows)
        hits = sum(r[f"{name}_hits"] for r in rows) / sum(r[f"{name}_n"] for r in rows)
        wrong = sum(r[f"{name}_wrong"] for r in rows) / sum(r[f"{name}_n"] for r in rows)
        times = [t for r in rows for t in r[f"{name}_times"]]
        print(f"  {title} {name}: FA {fa}/{rm:.1f} min = {fa / rm:.2f}/min, hits "
              f"{100 * hits:.1f} %, wrong {100 * wrong:.1f} %, median {np.median(times):.2f} s")
    pred = sum(r["pred"] * r["evt_rest_min"] for r in rows)
    inside = 0
    for r in rows:
        lo_c = poisson.ppf(0.05, r["pred_lo"] * r["evt_rest_min"])
        hi_c = poisson.ppf(0.95, r["pred_hi"] * r["evt_rest_min"])
        inside += lo_c <= r["evt_fa"] <= hi_c
    print(f"  predicted FA total {pred:.1f}, observed {sum(r['evt_fa'] for r in rows)}; "
          f"{inside}/{len(rows)} pairs inside the predictive range")


if __name__ == "__main__":
    main()
