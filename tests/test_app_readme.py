"""Every `ssvep-exo ...` command shown in the README parses with the real argument parsers."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from bci.cli import build_parser

README = Path(__file__).resolve().parents[1] / "README.md"


def _commands() -> list[str]:
    text = README.read_text(encoding="utf-8")
    out = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        joined = block.replace("\\\n", " ")
        for line in joined.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith("ssvep-exo "):
                out.append(line)
    return out


def test_readme_shows_commands():
    cmds = _commands()
    assert len(cmds) >= 10
    assert {c.split()[1] for c in cmds} >= {"run", "calibrate", "evaluate", "replay", "devices"}


@pytest.mark.parametrize("line", _commands())
def test_readme_command_parses(line):
    args = shlex.split(line)[1:]
    if args == ["--help"]:
        return
    ns = build_parser().parse_args(args)
    assert callable(ns.func)


def test_setup_commands_at_the_top():
    head = README.read_text(encoding="utf-8").split("\n## ")[0]
    assert "make demo" in head and "make test" in head
