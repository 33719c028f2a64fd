"""The shared behaviour of every ``ssvep-exo`` subcommand: one-line errors, broken pipes."""

from __future__ import annotations

import argparse
import logging
import re
import subprocess
import sys

import bci.cli as cli
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


def test_main_gives_the_host_process_its_logging_back(monkeypatch, capsys):
    """In-process callers (tests, notebooks): the CLI's log handler lives only while main()
    runs, so a record logged later is not written to a stderr the host may have closed."""
    names = ("bci", "devices", "calibration")
    before = {n: (list(logging.getLogger(n).handlers), logging.getLogger(n).level)
              for n in names}

    class _Parser:
        def parse_args(self, argv):
            def command(args):
                logging.getLogger("devices").warning("while the command runs")
                return 0
            return argparse.Namespace(func=command, command="x", verbose=0)

    monkeypatch.setattr(cli, "build_parser", _Parser)
    assert main([]) == 0
    assert "warning: while the command runs" in capsys.readouterr().err
    after = {n: (list(logging.getLogger(n).handlers), logging.getLogger(n).level)
             for n in names}
    assert after == before
    logging.getLogger("bci").warning("after main returned")
    assert "after main returned" not in capsys.readouterr().err


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


_ROUTED = """
import subprocess, sys, time, warnings
from bci.cli import _configure_logging, console_main  # noqa: F401 - console_main: the entry
from bci._logging import route_liblsl_log, route_warnings

route_warnings()
route_liblsl_log()
_configure_logging(0)
warnings.warn("something odd happened", RuntimeWarning)
import pylsl

outlet = subprocess.Popen([sys.executable, "-c", '''
import pylsl, time
o = pylsl.StreamOutlet(pylsl.StreamInfo(NAME, "EEG", 1, 100.0, "float32", NAME))
while True:
    o.push_sample([0.0]); time.sleep(0.01)
'''.replace("NAME", repr(sys.argv[1]))], stderr=subprocess.DEVNULL)
found = []
deadline = time.monotonic() + 20
while not found and time.monotonic() < deadline:
    found = pylsl.resolve_byprop("source_id", sys.argv[1], timeout=1.0)
inlet = pylsl.StreamInlet(found[0])
inlet.pull_chunk(timeout=2.0)
outlet.kill()  # the headset goes away: liblsl logs an error of its own
outlet.wait()
deadline = time.monotonic() + 6
while time.monotonic() < deadline:
    inlet.pull_chunk(timeout=0.1)
time.sleep(0.5)  # the forwarder reads liblsl's log every 0.2 s
"""


def test_python_warnings_and_liblsl_log_lines_come_through_the_bci_logger(unique_name):
    r = subprocess.run([sys.executable, "-c", _ROUTED, unique_name], capture_output=True,
                       text=True, timeout=90)
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert "warning: something odd happened" in lines  # one line: no path, no source line
    assert not any("RuntimeWarning" in ln or "warnings.warn" in ln for ln in lines), r.stderr
    # liblsl's own lines ("... INFO| ..." / "... ERR| ...") never reach stderr directly
    assert not any(re.search(r"\s(INFO|WARN|ERR)\|", ln) for ln in lines), r.stderr
    assert any(ln.startswith("warning: liblsl: ") for ln in lines), r.stderr
