"""Profiles across sessions: calibrate on one Kalunga session, use the profile on another.

For every subject (duplicate sessions dropped by ``find_recordings``) and every ordered pair
of sessions (A -> B): a profile is built from A with :func:`calibrate_from_files` (model
selection, thresholds for the false-activation target) and applied to B
(:func:`apply_profile`): cued-window accuracy with rest (4 classes) and among targets
(3 classes), and commands per minute of rest the profile's policy issues on B's sliding
windows. As a reference, ``bci.evaluation.evaluate_cross`` is run with the same decoder and
window (and training-window offsets) on the same two sessions; it averages both directions.

Usage: python scripts/profile_cross_session.py [DATA_DIR] [--subjects 01 02] [--far 1.0]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from bci.datasets import find_recordings, load_recording  # noqa: E402
from bci.decoders import METHODS, make_decoder  # noqa: E402
from bci.evaluation.crossval import evaluate_cross  # noqa: E402
from calibration.apply import apply_profile  # noqa: E402
from calibration.session import calibrate_raws  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
#: Excluded by the dataset's authors for a protocol problem (see the data README).
FLAGGED = {"record-[2013.04.06-16.22.32]_raw.fif"}


def run_pair(raw_a, raw_b, *, far: float, methods=None, windows=(0.5, 1.0, 2.0),
             rest_model: str = "head") -> dict:
    """Calibrate on ``raw_a``, apply to ``raw_b``; return the figures."""
    t0 = time.perf_counter()
    prof, rep = calibrate_raws([raw_a], methods=methods, windows=windows,
                               far_target_per_min=far, rest_model=rest_model)
    res = apply_profile(prof, raw_b)
    offs = METHODS[prof.method].get("train_offsets")
    ref = evaluate_cross(
        [raw_a, raw_b], {prof.method: make_decoder(prof.method, sfreq=prof.sfreq,
                                                   freqs=prof.freqs)},
        subject="", window=prof.window_s, classes=prof.labels,
        train_offsets={prof.method: offs})[0]
    return {"method": prof.method, "window_s": prof.window_s,
            "min_margin": prof.policy["min_margin"],
            "cal_far": rep.selected["false_per_min"], "cal_acc": rep.selected["accuracy"],
            "eval_cross_acc": ref["accuracy"], "seconds": time.perf_counter() - t0, **res}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", nargs="?", default=str(REPO.parent / "shared/data/kalunga2016"))
    ap.add_argument("--subjects", nargs="*", default=None)
    ap.add_argument("--far", type=float, default=1.0, help="false activations/min target")
    ap.add_argument("--windows", nargs="*", type=float, default=[0.5, 1.0, 2.0])
    ap.add_argument("--methods", nargs="*", default=None)
    ap.add_argument("--rest-model", default="head", choices=["head", "threshold"])
    ap.add_argument("--all-pairs", action="store_true",
                    help="every ordered pair of sessions (default: first -> second session "
                         "of each subject, without the session the authors flagged)")
    args = ap.parse_args(argv)
    recs = find_recordings(args.data)
    rows = []
    print(f"{'subject':<10} {'cal -> test':<44} {'method':<6} {'win':>4} {'cal acc':>7} "
          f"{'acc4':>6} {'acc3':>6} {'eval x-sess':>11} {'cal FA/m':>8} {'test FA/m':>9} "
          f"{'hits':>7} {'wrong':>5}")
    for subject, paths in sorted(recs.items()):
        if args.subjects and not any(subject.endswith(s) for s in args.subjects):
            continue
        if len(paths) < 2:
            print(f"{subject:<10} only one independent session: skipped")
            continue
        if not args.all_pairs:
            paths = [p for p in paths if Path(p).name not in FLAGGED][:2]
        raws = [load_recording(p) for p in paths]
        pairs = [(a, b) for a in range(len(raws)) for b in range(len(raws)) if a != b]
        for a, b in pairs if args.all_pairs else pairs[:1]:
            r = run_pair(raws[a], raws[b], far=args.far, windows=args.windows,
                         methods=args.methods, rest_model=args.rest_model)
            r["subject"] = subject
            rows.append(r)
            pair = f"{Path(paths[a]).name[7:28]} -> {Path(paths[b]).name[7:28]}"
            print(f"{subject:<10} {pair:<44} {r['method']:<6} {r['window_s']:>4.1f} "
                  f"{100 * r['cal_acc']:>6.1f}% {100 * r['accuracy']:>5.1f}% "
                  f"{100 * r['accuracy_targets']:>5.1f}% {100 * r['eval_cross_acc']:>10.1f}% "
                  f"{r['cal_far']:>8.2f} {r['false_per_min']:>9.2f} "
                  f"{r['target_segments_hit']:>3d}/{r['target_segments']:<3d} "
                  f"{r['wrong_commands']:>5d}", flush=True)
    if not rows:
        print("no session pairs found")
        return 1
    acc = np.array([r["accuracy"] for r in rows])
    acc3 = np.array([r["accuracy_targets"] for r in rows])
    ref = np.array([r["eval_cross_acc"] for r in rows])
    fa = np.array([r["false_per_min"] for r in rows])
    print()
    print(f"pairs: {len(rows)} over {len({r['subject'] for r in rows})} subjects; "
          f"FA target {args.far:g}/min")
    print(f"profile accuracy with rest (mean over pairs): {100 * acc.mean():.1f}% "
          f"(evaluate_cross, same decoder/window: {100 * ref.mean():.1f}%)")
    print(f"profile accuracy among targets: {100 * acc3.mean():.1f}%")
    print(f"false activations on the other session: mean {fa.mean():.2f}/min, median "
          f"{np.median(fa):.2f}/min, max {fa.max():.2f}/min; pairs at or under target: "
          f"{int(np.sum(fa <= args.far))}/{len(fa)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
