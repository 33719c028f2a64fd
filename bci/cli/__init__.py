"""The ``ssvep-exo`` command: one module per subcommand in this package.

Each subcommand module defines ``add_parser(subparsers)``, which registers its parser and
sets ``func`` (a callable taking the parsed namespace and returning an exit code).
User errors (:class:`bci.BCIError`, :class:`devices.DeviceError`) are printed as one line,
without a traceback, and exit with status 2. Ctrl-C exits with status 130.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import os
import sys
from collections.abc import Callable, Sequence

from bci import __version__
from bci._logging import route_liblsl_log, route_warnings
from bci.errors import BCIError
from devices.errors import DeviceError

# (subcommand module under bci.cli) in the order shown by --help.
SUBCOMMANDS = (
    "run",
    "demo",
    "evaluate",
    "calibrate",
    "profile",
    "simulate_eeg",
    "replay",
    "stimulus",
    "exo_sim",
    "devices",
    "conformance",
)

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every available subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="ssvep-exo",
        description="SSVEP brain-computer interface for exoskeleton control.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        modname = f"bci.cli.{name}"
        if importlib.util.find_spec(modname) is None:
            continue
        importlib.import_module(modname).add_parser(sub)
    return parser


def _configure_logging(verbosity: int) -> Callable[[], None]:
    """One handler for the package loggers on stderr: plain ``warning: ...`` lines by
    default; with ``-v`` timestamps and logger names.

    Returns the function that undoes it: the handler removed and closed, the loggers' levels
    as they were.
    """
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    handler = _StderrHandler()
    handler.setFormatter(_PlainFormatter() if verbosity == 0 else logging.Formatter(
        "%(asctime)s %(name)s %(levelname)s: %(message)s"))
    loggers = [logging.getLogger(name) for name in ("bci", "devices", "calibration")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(level)
        for old in [h for h in lg.handlers if isinstance(h, _StderrHandler)]:
            lg.removeHandler(old)  # one left by an earlier call that was not undone
        lg.addHandler(handler)

    def undo() -> None:
        for lg, old_level in zip(loggers, levels):
            lg.removeHandler(handler)
            lg.setLevel(old_level)
        handler.close()

    return undo


class _StderrHandler(logging.StreamHandler):
    """A handler on whatever ``sys.stderr`` is when a record comes (never a closed one)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


class _PlainFormatter(logging.Formatter):
    """``warning: <message>`` (the level in lower case, no timestamp)."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {record.getMessage()}"


def console_main() -> int:
    """The ``ssvep-exo`` program (and ``python -m bci``): the process is the command line.

    Before :func:`main`, Python warnings and liblsl's own log lines (which liblsl writes
    straight to stderr) are routed through the ``bci`` logger
    (:func:`bci._logging.route_warnings`, :func:`bci._logging.route_liblsl_log`), so that
    they show as ``warning: ...`` lines, or not at all in the live view. :func:`main` alone
    leaves a host process's warnings and liblsl alone.
    """
    route_warnings()
    route_liblsl_log()
    return _main(None, keep_logging=True)  # until the process ends (atexit clean-ups log too)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit status.

    The log handler it puts on the package loggers (``bci``, ``devices``, ``calibration``)
    is removed, and their levels restored, when it returns: a host process (a test, a
    notebook) keeps its own logging, and nothing writes to a stream it has closed since.
    """
    return _main(argv, keep_logging=False)


def _main(argv: Sequence[str] | None, *, keep_logging: bool) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USER_ERROR
    undo_logging = _configure_logging(args.verbose)
    try:
        return int(args.func(args) or 0)
    except (BCIError, DeviceError) as exc:
        print(error_text(args.command, exc), file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"ssvep-exo {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (e.g. `ssvep-exo profile show P | head`): not an error of ours.
        # Point stdout at devnull so the interpreter's final flush does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    finally:
        if not keep_logging:
            undo_logging()


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line (multi-line messages joined with '; '), without
    its :attr:`~bci.errors.BCIError.details`."""
    text = exc.message if isinstance(exc, BCIError) else str(exc)
    parts = [line.strip() for line in text.splitlines() if line.strip()]
    return "; ".join(parts) if parts else type(exc).__name__


def error_text(command: str, exc: BaseException) -> str:
    """What the command line prints for a user error: ``ssvep-exo <command>: error: <message>``
    on one line, then the error's details (e.g. the streams seen), one per line."""
    details = exc.details if isinstance(exc, BCIError) else ()
    return "\n".join([f"ssvep-exo {command}: error: {one_line(exc)}",
                      *(f"  {d}" for d in details)])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(console_main())
