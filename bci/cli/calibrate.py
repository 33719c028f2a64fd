"""``ssvep-exo calibrate``: build a subject profile from recordings or a live session.

Examples
--------
ssvep-exo calibrate --from-file ../shared/data/kalunga2016/subject01/record-*_raw.fif \\
    --output profiles/s01 --max-false 0.5
ssvep-exo calibrate --stream ssvep-synthetic --output profiles/me --trials 8 --trial-s 5
ssvep-exo calibrate --stream MyAmp --output profiles/me --stimulus --refresh-rate 60
"""

from __future__ import annotations

import argparse

from bci.app.config import load_config
from bci.cli._args import check_at_least, check_cued_trials, names, positive_floats
from bci.errors import ConfigError
from calibration.cues import MIN_TRIAL_S, MIN_TRIALS_PER_CLASS
from calibration.errors import CalibrationError
from calibration.live import calibrate_live
from calibration.session import DEFAULT_WINDOWS, calibrate_from_files


def add_parser(subparsers) -> None:
    """Register the ``calibrate`` subcommand."""
    p = subparsers.add_parser(
        "calibrate", help="build a subject profile (from recordings or a live session)",
        description="Cross-validate decoders and window lengths on calibration data, set "
                    "the decision threshold for a false-activation budget (--max-false, on "
                    "out-of-fold scores of the windows the online loop decodes), and write the "
                    "subject profile (profile.json + profile.npz) with report plots.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--from-file", nargs="+", metavar="FILE", dest="files",
                     help="recorded calibration session(s) (FIF/Kalunga, EDF, BDF, XDF, ...)")
    src.add_argument("--stream", metavar="NAME", help="live: name of the EEG LSL stream")
    src.add_argument("--source-id", metavar="ID", help="live: source id of the EEG LSL stream")
    p.add_argument("--output", required=True, metavar="DIR", help="profile directory")
    p.add_argument("--methods", type=names, default=None,
                   help="candidate decoders, comma separated (default: cca, fbcca, etrca, "
                        "tdca, ress-fbcca; the template decoders etrca and tdca are skipped "
                        "when the cues are not phase-locked)")
    p.add_argument("--windows", type=positive_floats, default=None,
                   help="candidate window lengths in s (default 1,1.5,2: with --criterion "
                        "policy each user gets the one that serves them best)")
    p.add_argument("--max-false", type=float, default=None, metavar="PER_MIN",
                   help="false-activation budget: commands allowed per minute of rest; the "
                        "decision threshold is set for it (default 0.5)")
    p.add_argument("--tmin", type=float, default=None,
                   help="window start after each cue in s (default 2.0 from files, "
                        "about 1 s live)")
    p.add_argument("--criterion", choices=["policy", "accuracy", "itr"], default="policy",
                   help="what model selection maximises (default policy: the window whose "
                        "out-of-fold replay of the calibration through the decision policy, "
                        "with the threshold for the budget, gives the most right commands "
                        "within 3 %% wrong, then the shorter median time; the most accurate "
                        "decoder at each window); accuracy or itr: cross-validated")
    p.add_argument("--rest-model", choices=["head", "threshold"], default="head",
                   help="no-control from a learned rest class (head) or only the policy "
                        "threshold (threshold)")
    p.add_argument("--menus", metavar="FILE", default=None,
                   help="command menus for the profile: a TOML file (e.g. a session "
                        "configuration) with [menu.<posture>] tables; default: the standard "
                        "menus for the lights (see docs/configuration.md)")
    p.add_argument("--allow-no-rest", action="store_true",
                   help="accept calibration data without rest trials (then no threshold keeps "
                        "the exoskeleton still while the user looks away; refused by default)")
    live = p.add_argument_group("live calibration")
    live.add_argument("--freqs", type=positive_floats, default=[13.0, 17.0, 21.0],
                      help="target frequencies in Hz (default 13,17,21)")
    live.add_argument("--trials", type=int, default=8,
                      help=f"trials per class (>= {MIN_TRIALS_PER_CLASS}; default 8)")
    live.add_argument("--trial-s", type=float, default=5.0,
                      help=f"stimulation per trial, after its cue (s, >= {MIN_TRIAL_S:g}; "
                      "default 5)")
    live.add_argument("--cue-s", type=float, default=0.0,
                      help="cue (highlight) before each trial (s, default 0; 1 with --stimulus)")
    live.add_argument("--rest-s", type=float, default=0.0, help="pause after each trial (s)")
    live.add_argument("--no-rest", action="store_true",
                      help="no rest (no-control) trials (needs --allow-no-rest)")
    live.add_argument("--no-control", choices=("realistic", "rest"), default="realistic",
                      help="the no-control trials: realistic (default): a fixation block "
                      "(--rest-block-s, half at the start, half at the end) and trials in "
                      "which the user looks between the lights, looks around, blinks or talks "
                      "(2 of each, mixed with the targets), all labelled rest, so the model of "
                      "rest that sets the threshold has enough of it; rest: one plain rest "
                      "trial per round of targets")
    live.add_argument("--rest-block-s", type=float, default=60.0,
                      help="realistic no-control: fixation block in s (default 60)")
    live.add_argument("--stimulus", action="store_true",
                      help="show the on-screen stimulus (pygame-ce) and let it send the cues")
    live.add_argument("--refresh-rate", type=float, default=None,
                      help="declared display refresh rate in Hz (default: measured)")
    live.add_argument("--skip-signal-check", action="store_true",
                      help="do not check the electrodes before starting")
    live.add_argument("--seed", type=int, default=None, help="seed of the trial order")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Calibrate, print the report table and the profile path."""

    if args.no_rest and not args.allow_no_rest and not args.files:
        raise CalibrationError(
            "--no-rest records no rest (no-control) trials, so no threshold can keep the "
            "exoskeleton still while the user looks away; add --allow-no-rest to accept that.")
    kw = {"methods": args.methods, "windows": args.windows or DEFAULT_WINDOWS,
          "criterion": args.criterion, "rest_model": args.rest_model,
          "menus": _menus(args.menus), "allow_no_rest": args.allow_no_rest}
    if args.max_false is not None:
        kw["max_false_per_min"] = args.max_false
    if args.tmin is not None:
        kw["tmin"] = args.tmin
    if args.files:
        profile, report = calibrate_from_files(args.files, output=args.output, **kw)
    else:
        cue_s = args.cue_s if args.cue_s or not args.stimulus else 1.0
        check_cued_trials(args.trials, "--trials", trial_s=args.trial_s, cue_s=cue_s,
                          rest_s=args.rest_s)
        check_at_least(args.rest_block_s, "--rest-block-s", 0.0, unit=" s",
                       what="the fixation block of the realistic no-control")
        if args.refresh_rate is not None:
            check_at_least(args.refresh_rate, "--refresh-rate", 0.0, strict=True, unit=" Hz")
        if args.seed is not None:
            check_at_least(args.seed, "--seed", 0)
        profile, report = calibrate_live(
            name=args.stream, source_id=args.source_id, freqs=args.freqs,
            n_per_class=args.trials, trial_s=args.trial_s, cue_s=cue_s, rest_s=args.rest_s,
            include_rest=not args.no_rest, no_control=args.no_control,
            rest_block_s=args.rest_block_s, stimulus=args.stimulus,
            refresh_rate=args.refresh_rate, signal_check=not args.skip_signal_check,
            seed=args.seed, output=args.output, progress=print, **kw)
    print(report.table())
    for path in report.plots:
        print(f"plot: {path}")
    print(f"Profile saved to {args.output} (use it with: ssvep-exo run --profile "
          f"{args.output})")
    return 0


def _menus(path: str | None) -> dict | None:
    """The [menu.*] tables of a TOML file, checked against the safety supervisor's table."""
    if path is None:
        return None
    cfg = load_config(path)
    if not cfg.explicit_menus:
        raise ConfigError(f"{path}: no [menu.<posture>] table; see docs/configuration.md.")
    return cfg.menus.to_dict()
