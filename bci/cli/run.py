"""``ssvep-exo run``: the closed loop (EEG source -> decoder -> safety supervisor -> exoskeleton)."""

from __future__ import annotations

import argparse
import sys
import textwrap

from bci.app.closed_loop import EXIT_USER_ERROR, quiet_console, run_session, user_error_line
from bci.app.config import load_config
from bci.errors import BCIError, ConfigError
from devices.errors import DeviceError

EPILOG = """\
examples:
  ssvep-exo run --simulator                          synthetic EEG, simulated exoskeleton
  ssvep-exo run --source lsl --stream MyHeadset --source-id SN1234 --profile profiles/alice \\
                --port /dev/ttyUSB0                  live headset, real exoskeleton
  ssvep-exo run --source replay --replay session.fif --simulator
  ssvep-exo run --role decoder --source lsl --stream MyHeadset   (machine A: decode only)
  ssvep-exo run --role bridge --port /dev/ttyUSB0                (machine B: drive only)

exit status: 0 ended normally; 1 the online loop failed; 2 user error (bad configuration,
no stream, missing or busy port, bad profile); 3 the EEG stream (bridge: the decisions
stream) sent nothing for source.max_stall_s (30 s); 129/130/131/143 stopped by
SIGHUP/SIGINT (Ctrl-C)/SIGQUIT/SIGTERM. On every exit the exoskeleton is sent STOP and the
link is closed.
"""


def add_parser(subparsers) -> None:
    """Register ``run``."""
    p = subparsers.add_parser(
        "run", help="run the closed loop (decode EEG, drive the exoskeleton)",
        description=textwrap.fill(
            "Run the closed loop: an EEG source (live LSL headset, a replayed file or "
            "synthetic EEG) is decoded (a subject profile; without one, the population decoder "
            "when the lights are its prior's 13, 17, 21 Hz, else training-free FBCCA) and the "
            "decisions drive the exoskeleton through the safety supervisor (a serial port, "
            "or the simulated exoskeleton). Settings come from --config (TOML, see "
            "docs/configuration.md); the options below override it. Writes a session folder "
            "with the recording, the log, the summary and plots.", 90),
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(p)
    p.set_defaults(func=main)


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """The options shared by ``run`` (and reused by ``demo``)."""
    p.add_argument("--config", metavar="FILE", help="session configuration (TOML)")
    g = p.add_argument_group("EEG source")
    g.add_argument("--source", choices=("lsl", "replay", "synthetic"),
                   help="where the EEG comes from (default: synthetic)")
    g.add_argument("--stream", metavar="NAME", help="LSL name of the EEG stream")
    g.add_argument("--stream-type", metavar="TYPE",
                   help="LSL type of the EEG stream, matched case-insensitively (default: EEG; "
                   "mne-lsl's PlayerLSL publishes 'eeg')")
    g.add_argument("--source-id", metavar="ID",
                   help="pin the EEG stream to this LSL source id (recommended)")
    g.add_argument("--host", metavar="H", help="pin the EEG stream to this host name")
    g.add_argument("--replay", metavar="FILE", help="recording to replay (implies --source replay)")
    g.add_argument("--schedule", metavar="SPEC",
                   help="synthetic schedule, e.g. 'rest:4,13:5,rest:4,17:5'")
    g.add_argument("--speed", type=float, metavar="X",
                   help="synthetic/replay speed factor (1 = real time); the decision step "
                   "and the policy's timings (seconds of signal) are divided by it")
    g = p.add_argument_group("decoder")
    g.add_argument("--profile", metavar="DIR",
                   help="subject profile from `ssvep-exo calibrate` (default: the population "
                   "decoder, trained on other users with a rest class, when decoder.freqs are "
                   "its prior's 13, 17, 21 Hz; training-free decoder.method, FBCCA, otherwise "
                   "or when decoder.method is set)")
    g.add_argument("--freqs", metavar="F,F,...", help="stimulus frequencies in Hz (no profile)")
    g.add_argument("--window", type=float, metavar="S", help="decoding window, seconds")
    g = p.add_argument_group("exoskeleton")
    dev = g.add_mutually_exclusive_group()
    dev.add_argument("--port", "--exo", dest="port", metavar="URL",
                     help="serial URL of the controller: /dev/ttyUSB0, socket://host:port, ...")
    dev.add_argument("--simulator", action="store_true",
                     help="use the simulated exoskeleton on a pseudo-terminal (the default "
                     "when no port is configured)")
    g.add_argument("--baudrate", type=int, metavar="N", help="serial baud rate")
    g = p.add_argument_group("session")
    g.add_argument("--role", choices=("all", "decoder", "bridge"),
                   help="all: decode and drive; decoder: publish decisions on LSL only; "
                   "bridge: drive the exoskeleton from the LSL decisions stream")
    g.add_argument("--decisions-stream", metavar="NAME",
                   help="LSL name of the decisions stream (default: ssvep-decisions)")
    g.add_argument("--output", metavar="DIR", help="folder for session folders "
                   "(default: sessions)")
    g.add_argument("--duration", type=float, metavar="S",
                   help="stop after S seconds (default: until Ctrl-C or the end of the source)")
    g.add_argument("--no-live-view", action="store_true", help="no terminal live view")


def overrides_from_args(args: argparse.Namespace) -> dict:
    """Map the command-line options onto ``section.key`` configuration overrides."""

    o: dict = {
        "source.kind": args.source,
        "source.stream_name": args.stream,
        "source.stream_type": args.stream_type,
        "source.source_id": args.source_id,
        "source.host": args.host,
        "source.schedule": args.schedule,
        "source.speed": args.speed,
        "decoder.profile": args.profile,
        "decoder.window_s": args.window,
        "device.baudrate": args.baudrate,
        "session.role": args.role,
        "lsl.decisions_stream": args.decisions_stream,
        "session.output": args.output,
        "session.duration_s": args.duration,
    }
    if args.replay:
        o["source.replay_file"] = args.replay
        if args.source in (None, "replay"):
            o["source.kind"] = "replay"
        else:
            raise ConfigError(f"--replay needs --source replay, not --source {args.source}.")
    if args.freqs:
        try:
            o["decoder.freqs"] = [float(f) for f in args.freqs.split(",") if f.strip()]
        except ValueError:
            raise ConfigError(f"--freqs must be numbers separated by commas, got "
                              f"{args.freqs!r}.") from None
    if args.port:
        o["device.port"] = args.port
    elif args.simulator:
        o["device.port"] = ""
    if args.no_live_view:
        o["session.live_view"] = False
    return o


def main(args: argparse.Namespace) -> int:
    """Run the session; return the exit status."""

    quiet_console(args.verbose)

    try:
        cfg = load_config(args.config).with_overrides(overrides_from_args(args))
        return run_session(cfg).exit_code
    except (BCIError, DeviceError) as exc:
        print(user_error_line("run", exc), file=sys.stderr)
        return EXIT_USER_ERROR
