"""Per-user speed/accuracy choice by the deployed criterion, on cached score streams.

For every (calibration, test) pair, each candidate (decoder variant x window, e.g.
``base@1``, ``base@2``, ``base@1+2``) gets its threshold from the rest-tail model of the
calibration session's out-of-fold stream; the calibration stream is replayed with it
(out-of-fold hits, wrong commands and times: what ``calibrate`` can measure) and the candidate
with the best criterion is the user's. The test session is then replayed with the chosen
candidate. Criteria: ``hits`` (most out-of-fold hits, ties to the faster), ``hits-wrong``,
``utility`` (hits per minute of trials, wrong commands counted against).

Usage: OMP_NUM_THREADS=1 nice python scripts/per_user_choice.py --specs base@1,base@2
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _research as rs  # noqa: E402
import weak_responders as wr  # noqa: E402


def evaluate(specs, budget=0.5, policy=None):
    policy = policy or rs.Policy()
    per = {}
    for spec in specs:
        sc, st = wr.combined_streams(spec, {})
        keys = sorted(k[:-4] for k in sc if k.endswith("/cal"))
        evt = rs.evt_thresholds(keys, st, sc, policy, budget)
        for key in keys:
            h, tail = evt[key]
            pol = rs.Policy(h, policy.drift, policy.clip, policy.horizon_s,
                            policy.refractory_s, policy.release_s)
            out = {}
            for kind in ("cal", "test"):
                s, x = st[f"{key}/{kind}"], sc[f"{key}/{kind}"]
                ok = np.isfinite(x).all(1)
                out[kind] = rs.score(pol.replay(s.t[ok], x[ok]), s)
            per.setdefault(key, {})[spec] = out
        print(f"  {spec} done", flush=True)
    return per


def criterion(r: dict, name: str) -> tuple:
    if name == "hits":
        return (r["n_hit"], -np.median(r["times"]) if r["times"] else 0)
    if name == "hits-wrong":
        return (r["n_hit"] - r["n_wrong"], -np.median(r["times"]) if r["times"] else 0)
    if name == "utility":  # hits minus wrong, per median time (a bit-rate-like trade-off)
        med = np.median(r["times"]) if r["times"] else 10.0
        return ((r["n_hit"] - 2 * r["n_wrong"]) / max(r["n_target"], 1) / (med + 1.0),)
    raise ValueError(name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--specs", default="base@1,base@1.5,base@2,base@1+2")
    ap.add_argument("--budget", type=float, default=0.5)
    a = ap.parse_args()
    t0 = time.perf_counter()
    per = evaluate(a.specs.split(","), a.budget)
    specs = a.specs.split(",")
    for spec in specs:
        rows = [per[k][spec]["test"] for k in per]
        print(f"fixed {spec:<16} {rs.fmt(rs.pool(rows))}")
    for crit in ("hits", "hits-wrong", "utility"):
        chosen, rows, subj = {}, [], {}
        for k in per:
            best = max(specs, key=lambda sp, k=k: criterion(per[k][sp]["cal"], crit))
            chosen[k] = best
            rows.append(per[k][best]["test"])
            subj.setdefault(k.split("/")[0], []).append(per[k][best]["test"])
        print(f"per-user [{crit}] {rs.fmt(rs.pool(rows))}  | " + " ".join(
            f"{s[-2:]}:{100 * rs.pool(v)['hit']:.0f}" for s, v in subj.items()))
        print("   chosen: " + ", ".join(f"{k}:{v}" for k, v in chosen.items()))
    # oracle: the best candidate on the test session itself (an upper bound, not deployable)
    rows = [max((per[k][sp]["test"] for sp in specs), key=lambda r: r["n_hit"] - r["n_wrong"])
            for k in per]
    print(f"oracle (not deployable) {rs.fmt(rs.pool(rows))}")
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
