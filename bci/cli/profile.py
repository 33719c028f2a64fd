"""``ssvep-exo profile``: inspect a subject profile.

Examples
--------
ssvep-exo profile show profiles/alice
ssvep-exo profile show profiles/alice/profile.json --json
"""

from __future__ import annotations

import argparse
import json

from bci.app.menus import CommandMenus
from bci.labels import is_rest
from calibration.profile import SubjectProfile


def add_parser(subparsers) -> None:
    """Register ``profile`` and its ``show`` action."""
    p = subparsers.add_parser("profile", help="inspect a subject profile",
                              description="Inspect a subject profile (profile.json + .npz).")
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    show = sub.add_parser("show", help="print a readable summary of a profile (validates it)")
    show.add_argument("path", help="profile directory or its profile.json")
    show.add_argument("--json", action="store_true", help="print the cross-validation results "
                      "and selection as JSON after the summary")
    show.add_argument("--stream-channels", default=None,
                      help="comma-separated channel names of a stream to check compatibility")
    show.add_argument("--stream-sfreq", type=float, default=None,
                      help="sampling rate (Hz) of a stream to check compatibility")
    show.set_defaults(func=run_show)
    p.set_defaults(func=_no_action(p))


def _no_action(parser: argparse.ArgumentParser):
    def run(args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    return run


def run_show(args: argparse.Namespace) -> int:
    """Load (and so validate) a profile, print it; ProfileError becomes one line via main."""

    prof = SubjectProfile.load(args.path)
    # the menus the profile will use, checked against the safety supervisor's table
    menus = CommandMenus.build(prof.menus or None, [c for c in prof.labels if not is_rest(c)],
                               where=f"Invalid profile ({args.path!r}): its menus")
    if args.stream_channels is not None or args.stream_sfreq is not None:
        chans = (args.stream_channels.split(",") if args.stream_channels is not None
                 else prof.ch_names)
        prof.check_compatible([c.strip() for c in chans], args.stream_sfreq or prof.sfreq)
    print(prof.summary())
    how = "profile" if prof.menus else "defaults for its lights"
    for posture, menu in menus.to_dict().items():
        print(f"  {posture.lower():<10} ({how}) " + ", ".join(f"{k} -> {v}"
                                                            for k, v in menu.items()))
    if args.json:
        print(json.dumps({"cv_results": prof.cv_results, "extra": prof.extra}, indent=2))
    return 0
