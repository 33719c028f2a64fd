"""``ssvep-exo evaluate``: offline evaluation of decoders on recorded sessions.

Examples
--------
ssvep-exo evaluate ../shared/data/kalunga2016 --windows 0.5,1,2 --classes 3,4 \\
    --scheme within,cross --json results.json --csv results.csv --plots plots/
ssvep-exo evaluate ../shared/data/kalunga2016 --online --json online.json
ssvep-exo evaluate --moabb Kalunga2016 --subjects 1,2 --scheme cross
ssvep-exo evaluate ../shared/data/kalunga2016 --jobs 2
ssvep-exo evaluate ../shared/data/kalunga2016 --scheduler tcp://scheduler:8786
"""

from __future__ import annotations

import argparse
import sys

from bci._check import suggest
from bci.app.online_eval import evaluate_online
from bci.cli._args import names, positive_floats
from bci.datasets import cue_freqs, cue_spacing, cue_table, find_recordings, load_recording
from bci.datasets.moabb import load_moabb
from bci.decoders import (
    BEST_METHOD,
    BEST_TRAINING_FREE,
    DEFAULT_METHODS,
    METHODS,
    make_decoder,
)
from bci.errors import BCIError, DatasetError
from bci.evaluation import (
    format_table,
    phase_locking_analysis,
    plot_confusions,
    plot_sweep,
    run_evaluation,
    write_csv,
    write_json,
)
from bci.evaluation.parallel import connect
from bci.evaluation.scoring import format_scores
from bci.labels import is_rest
from calibration.session import DEFAULT_WINDOWS

EXIT_OK = 0


def _classes(text: str) -> list[int] | None:
    if text.strip().lower() in ("both", "all"):
        return None
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected class counts such as 3, 4 or 3,4 (or 'both'), got {text!r}"
        ) from None


def _subjects(text: str) -> list[int]:
    try:
        out = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected subject numbers such as 1,2,5, got {text!r}") from None
    if not out:
        raise argparse.ArgumentTypeError("expected at least one subject number")
    return out


def _schemes(text: str) -> list[str]:
    if text.strip().lower() in ("both", "all"):
        return ["within", "cross"]
    out = [s.strip().lower() for s in text.split(",") if s.strip()]
    for s in out:
        if s not in ("within", "cross"):
            raise argparse.ArgumentTypeError(f"scheme must be within, cross or both, got {s!r}")
    return out


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``evaluate``."""
    p = subparsers.add_parser(
        "evaluate",
        help="evaluate decoders offline on recorded sessions (accuracy, ITR, plots)",
        description=(
            "Cross-validate decoders on recordings (files or folders, grouped by subject, "
            "or a MOABB SSVEP dataset already on this machine with --moabb): "
            "accuracy and Wolpaw ITR per method and window length, mean over subjects, "
            "plus a phase-locking analysis that says which decoder family fits the data. "
            "Windows start --tmin s after each cue and are filtered one by one by the "
            "decoders (as online) unless --prefilter whole."
        ),
    )
    p.add_argument("paths", nargs="*", metavar="PATH", help="recording file(s) or folder(s)")
    p.add_argument("--moabb", metavar="DATASET",
                   help="evaluate a MOABB SSVEP dataset that is already in the local MNE data "
                        "folder instead of files (never downloads): a moabb.datasets class "
                        "name such as Kalunga2016, or module:name for your own dataset; "
                        "needs the 'moabb' extra")  # fmt: skip
    p.add_argument("--subjects", type=_subjects, default=None,
                   help="--moabb: subject numbers, comma-separated (default: all)")
    p.add_argument("--methods", type=names, default=None,
                   help="comma-separated decoder names (default: the registry's defaults; "
                        "with --online the best training-free and the best calibrated "
                        "decoder; 'all' for every registered decoder)")  # fmt: skip
    p.add_argument("--windows", type=positive_floats, default=None,
                   help="window lengths in s, comma-separated (default 0.5,1,2; with "
                        "--online: the candidate windows of the calibration, default "
                        "calibrate's)")  # fmt: skip
    p.add_argument("--classes", type=_classes, default=None,
                   help="class counts: 3 (targets only), 4 (with rest), 3,4 or both "
                        "(default: every set the data has)")  # fmt: skip
    p.add_argument("--scheme", type=_schemes, default=["within"],
                   help="within (5-fold CV, sessions pooled), cross (calibrate on one "
                        "session, test on another), or both (default within)")  # fmt: skip
    p.add_argument("--prefilter", choices=("none", "whole"), default="none",
                   help="'whole' band-passes each whole recording before cutting windows "
                        "(MOABB's protocol, for comparison with published figures); "
                        "default 'none' = each window filtered on its own, as online")  # fmt: skip
    p.add_argument("--band", type=positive_floats, default=None, metavar="L,H",
                   help="band for --prefilter whole (default: lowest frequency - 3 Hz to "
                        "twice the highest, 10-42 Hz on Kalunga)")  # fmt: skip
    p.add_argument("--tmin", type=float, default=2.0,
                   help="window start after the cue, s (default 2.0)")  # fmt: skip
    p.add_argument("--channels", type=names, default=None,
                   help="comma-separated channel names (default: all EEG channels)")  # fmt: skip
    p.add_argument("--gaze-shift", type=float, default=0.5,
                   help="seconds added per selection in the second ITR figure (default 0.5)")  # fmt: skip
    p.add_argument("--per-subject", action="store_true", help="also print each subject's rows")
    p.add_argument("--keep-duplicates", action="store_true",
                   help="keep sessions whose samples duplicate another session")  # fmt: skip
    p.add_argument("--jobs", "--n-jobs", dest="jobs", type=int, default=1, metavar="N",
                   help="worker processes: every fit (subject x method x window x fold) is "
                        "one task for joblib; the results equal a serial run's (default 1)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="send the same tasks to a Dask cluster (tcp://host:8786) through "
                        "joblib's Dask backend instead; needs the 'cluster' extra")
    p.add_argument("--no-phase", action="store_true", help="skip the phase-locking analysis")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", metavar="FILE", help="write one JSON record per result")
    p.add_argument("--csv", metavar="FILE", help="write the records as CSV")
    p.add_argument("--plots", metavar="DIR", help="write PNG plots (sweep, confusion matrices)")
    g = p.add_argument_group(
        "--online: the deployed path (calibrate on one session of a subject, run the "
        "profile on another through the online loop, commands through the menus and the "
        "safety supervisor, scored per cued trial)")
    g.add_argument("--online", action="store_true",
                   help="pseudo-online evaluation instead of cross-validation")
    g.add_argument("--step", type=float, default=0.1,
                   help="step of the online loop, s (default 0.1)")  # fmt: skip
    g.add_argument("--max-false", type=float, default=None, metavar="PER_MIN",
                   help="false-activation budget of the calibration, commands per minute of "
                        "rest (default: calibrate's, 0.5)")  # fmt: skip
    g.add_argument("--via-lsl", action="store_true",
                   help="replay the test sessions over real LSL (20x) instead of a virtual "
                        "clock")  # fmt: skip
    g.add_argument("--no-execute", action="store_true",
                   help="score the selections only (no simulated exoskeleton; no "
                        "executed_rate)")  # fmt: skip
    p.set_defaults(func=run)
    return p


def _resolve_methods(requested: list[str] | None, *, online: bool = False):
    if not requested and online:
        # Pseudo-online replays whole sessions: run the two decoders a user would deploy.
        return list(dict.fromkeys([BEST_TRAINING_FREE, BEST_METHOD])), METHODS
    if not requested:
        return list(DEFAULT_METHODS), METHODS
    if requested == ["all"]:
        return list(METHODS), METHODS
    for m in requested:
        if m not in METHODS:
            raise BCIError(
                f"unknown method {m!r}; choose from {', '.join(METHODS)}.{suggest(m, METHODS)}"
            )
    return requested, METHODS


def _run_online(args, found, methods) -> int:
    kw = {} if args.windows is None else {"windows": args.windows}
    if args.max_false is not None:
        kw["max_false_per_min"] = args.max_false
    records = evaluate_online(
        found, methods, step_s=args.step, via_lsl=args.via_lsl,
        exec_speed=None if args.no_execute else 20.0,
        progress=None if args.no_progress else (lambda s: print(s, file=sys.stderr)), **kw,
    )  # fmt: skip
    ok = [r for r in records if r.get("available", True)]
    print(format_scores(ok))
    for r in records:
        if not r.get("available", True):
            print(f"{r['subject']} {r['method']}: not available ({r['note']})")
    if args.json:
        write_json(records, args.json)
        print(f"wrote {args.json}")
    if args.csv:
        write_csv([{k: v for k, v in r.items() if k != "sessions"} for r in records], args.csv)
        print(f"wrote {args.csv}")
    return EXIT_OK


def _check_windows(raws, windows: list[float], tmin: float, *, online: bool) -> None:
    """Refuse windows and offsets that do not fit inside the recordings' trials.

    A window that reaches into the next trial (or starts before its cue) scores another
    trial's response; a window far longer than a trial also multiplies memory. Checked after
    loading (the trial spacing comes from the cues), before any computation.
    """

    if not online and not tmin >= 0:
        raise BCIError(f"--tmin must be >= 0 s (windows start after the cue), got {tmin:g}.")
    spacing = cue_spacing(raws)
    if spacing is None:
        return
    room = spacing - (0.0 if online else tmin)
    too_long = [w for w in windows if w > room + 1e-9]
    if not too_long:
        return
    shown = ",".join(f"{w:g}" for w in too_long)
    start = "" if online or tmin == 0 else (
        f" and windows start {tmin:g} s after the cue (--tmin), leaving {max(room, 0.0):.2f} s")
    raise BCIError(
        f"--windows {shown}: too long for these trials: cues are {spacing:.2f} s apart{start}; "
        f"use windows of at most {max(room, 0.0):.2f} s"
        + ("" if not start else " or a smaller --tmin") + ".")


def _check_something_to_evaluate(recordings: dict, schemes: list[str]) -> None:
    """Refuse, before any work, data on which no requested scheme can produce a figure.

    Within-session cross-validation needs two trials of each stimulus frequency (and two
    frequencies); the cross-session scheme needs two sessions of a subject.
    """
    from collections import Counter


    described = []
    for subject, raws in recordings.items():
        counts = Counter(str(lab) for r in raws for lab in cue_table(r)[1])
        targets = [n for lab, n in counts.items() if not is_rest(lab)]
        if "within" in schemes and len(targets) >= 2 and min(targets) >= 2:
            return
        if "cross" in schemes and len(raws) >= 2 and len(targets) >= 2:
            return
        trials = ", ".join(f"{lab}: {n}" for lab, n in sorted(counts.items())) or "no cues"
        described.append(f"{subject}: {len(raws)} session(s), trials {trials}")
    needs = []
    if "within" in schemes:
        needs.append("within-session cross-validation needs at least 2 trials of each of 2 or "
                     "more stimulus frequencies")
    if "cross" in schemes:
        needs.append("the cross-session scheme needs 2 sessions of a subject")
    raise DatasetError(f"Nothing to evaluate: {' and '.join(needs)}; "
                       + "; ".join(described[:5]) + ("; ..." if len(described) > 5 else "")
                       + ".")


def run(args: argparse.Namespace) -> int:
    """Run the evaluation described by the parsed arguments."""

    methods, registry = _resolve_methods(args.methods, online=args.online)
    if args.jobs < 1:
        raise BCIError(f"--jobs must be at least 1, got {args.jobs}.")
    if args.online and (args.jobs > 1 or args.scheduler):
        raise BCIError("--online replays sessions one after the other; --jobs and "
                       "--scheduler apply to the offline evaluation.")
    if args.scheduler:  # before the data is read: a wrong address fails at once
        connect(args.scheduler).close()
    if bool(args.paths) == bool(args.moabb):
        raise BCIError("give recording files or folders, or --moabb DATASET (one of the two).")
    if args.subjects and not args.moabb:
        raise BCIError("--subjects selects MOABB subjects: use it with --moabb (with files, "
                       "pass the subjects' folders).")
    if args.windows is None and not args.online:  # --online: the calibration's candidates
        args.windows = [0.5, 1.0, 2.0]
    if args.moabb:
        if args.online:
            raise BCIError("--online replays recording files; it does not take --moabb.")
        found = None
        recordings = load_moabb(args.moabb, args.subjects)
    else:
        found = find_recordings(args.paths, keep_duplicates=args.keep_duplicates)
        recordings = {s: [load_recording(p) for p in paths] for s, paths in found.items()}
    raws = [r for rs in recordings.values() for r in rs]
    if args.online:  # the calibration's candidate windows
        _check_windows(raws, args.windows or list(DEFAULT_WINDOWS), args.tmin, online=True)
    else:
        _check_windows(raws, args.windows, args.tmin, online=False)
    _check_something_to_evaluate(recordings, ["cross"] if args.online else args.scheme)
    if args.online:
        return _run_online(args, found, methods)
    sfreqs = sorted({r.info["sfreq"] for r in raws})
    if len(sfreqs) > 1:
        raise DatasetError(
            f"the recordings have different sampling rates ({', '.join(f'{s:g}' for s in sfreqs)} "
            f"Hz); evaluate them separately or resample them to one rate."
        )
    freqs = sorted({f for r in raws for f in cue_freqs(r)})
    if not freqs:
        raise DatasetError("the recordings have no frequency cues (only rest); nothing to decode.")
    sfreq = sfreqs[0]
    print(
        f"{len(raws)} session(s) of {len(recordings)} subject(s), {sfreq:g} Hz, stimulus "
        f"frequencies {', '.join(f'{f:g}' for f in freqs)} Hz; methods: {', '.join(methods)}"
    )
    prefilter = None
    if args.prefilter == "whole":
        band = args.band or [max(1.0, freqs[0] - 3.0), min(2.0 * freqs[-1], sfreq / 2 - 1)]
        if len(band) != 2 or band[0] >= band[1]:
            raise BCIError(f"--band must be L,H with L < H, got {args.band}.")
        prefilter = (float(band[0]), float(band[1]))
    if not args.no_phase:
        report = phase_locking_analysis(
            recordings, tmin=args.tmin, window_s=max(args.windows), channels=args.channels
        )
        print(report.format())
        print()

    estimators = {m: make_decoder(m, sfreq=sfreq, freqs=freqs) for m in methods}
    spans = {m: registry[m].get("train_span") for m in methods}
    records = run_evaluation(
        recordings, estimators, windows=args.windows, n_classes=args.classes,
        schemes=args.scheme, tmin=args.tmin, channels=args.channels, prefilter=prefilter,
        train_spans=spans, gaze_shift_s=args.gaze_shift, n_jobs=args.jobs,
        scheduler=args.scheduler,
        progress=not args.no_progress,
    )  # fmt: skip
    if not any(r.get("available", True) for r in records):
        notes = sorted({str(r.get("note") or "not available") for r in records})
        raise DatasetError(f"Nothing could be evaluated: {'; '.join(notes)}.")
    print(format_table(records, per_subject=args.per_subject))
    if args.json:
        print(f"wrote {write_json(records, args.json)}")
    if args.csv:
        print(f"wrote {write_csv(records, args.csv)}")
    if args.plots:
        paths = plot_sweep(records, args.plots) + plot_confusions(records, args.plots)
        print(f"wrote {len(paths)} plot(s) to {args.plots}")
    return EXIT_OK
