"""The shared behaviour of every ``ssvep-exo`` subcommand: one-line errors, broken pipes."""

from __future__ import annotations

import subprocess
import sys

from bci.cli import EXIT_USER_ERROR, main, one_line
from bci.errors import StreamError


def test_one_line_joins_multiline_messages():
    exc = StreamError("No EEG stream found.\n  seen: 'a' (EEG)\n  seen: 'b' (Markers)\n")
    assert one_line(exc) == "No EEG stream found.; seen: 'a' (EEG); seen: 'b' (Markers)"
    assert "\n" not in one_line(exc)


def test_user_error_is_one_line_without_traceback(tmp_path, capsys):
    code = main(["profile", "show", str(tmp_path / "missing")])
    err = capsys.readouterr().err
    assert code == EXIT_USER_ERROR
    assert err.startswith("ssvep-exo profile: error: ")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_no_subcommand_prints_help_and_fails(capsys):
    assert main([]) == EXIT_USER_ERROR
    assert "usage: ssvep-exo" in capsys.readouterr().out


_LOUD_COMMAND = """
import argparse, sys
import bci.cli as cli

class _Parser:
    def parse_args(self, argv):
        def loud(args):
            for _ in range(200000):
                print("x" * 80)
            return 0
        return argparse.Namespace(func=loud, command="loud", verbose=0)

cli.build_parser = _Parser
sys.exit(cli.main([]))
"""


def test_broken_pipe_is_quiet():
    # `ssvep-exo ... | head -1`: the reader goes away early; no traceback, exit 0.
    proc = subprocess.Popen(
        [sys.executable, "-c", _LOUD_COMMAND], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    proc.stdout.read(100)
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 0
    assert b"BrokenPipeError" not in err and b"Traceback" not in err, err.decode()
