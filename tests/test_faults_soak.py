"""`make soak` in miniature: scripts/soak.py for 0.02 h of signal at x10 through the loop.

The soak's targets (memory growth, missed heartbeats, watchdog trips, decision latency)
depend on the machine's load and are checked by ``make soak``; this test checks the script
runs, reports in its one summary line, exits non-zero exactly when it says FAIL, and never
sends an unsafe command.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "soak.py"


@pytest.mark.slow
def test_soak_smoke_ends_with_one_summary_line_and_nothing_unsafe(tmp_path):
    r = subprocess.run([sys.executable, str(SCRIPT), "--hours", "0.02", "--speed", "10",
                        "--output", str(tmp_path)], capture_output=True, text=True,
                       timeout=600, env=dict(os.environ, OMP_NUM_THREADS="1"))
    last = r.stdout.strip().splitlines()[-1]
    m = re.match(r"SOAK (PASS|FAIL): 0\.02 h at x10 in \d+ s; RSS growth (-?[\d.]+) MB .*"
                 r"missed heartbeats (\d+) .* watchdog trips (\d+) .*; decision latency p50 "
                 r"[\d.]+ ms p95 [\d.]+ ms p99 [\d.]+ ms over (\d+) decisions; motion commands "
                 r"(\d+), unsafe (\d+)$", last)
    assert m, r.stdout[-2000:] + r.stderr[-2000:]
    verdict, _growth, _missed, _halts, n_dec, n_motion, unsafe = m.groups()
    assert int(n_dec) > 100 and int(n_motion) >= 2  # it did drive the exoskeleton
    assert (verdict == "PASS") == (r.returncode == 0), last
    assert r.returncode in (0, 1), last  # 1: a target missed (load), never a crash
    assert int(unsafe) == 0, last


def test_soak_argument_errors():
    r = subprocess.run([sys.executable, str(SCRIPT), "--hours", "0"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and "--hours must be > 0" in r.stderr
