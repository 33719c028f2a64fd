"""The suite's own rules hold: a worker thread's exception fails the test that raised it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_an_exception_in_a_worker_thread_fails_the_test(tmp_path):
    (tmp_path / "test_inner.py").write_text(textwrap.dedent('''
        import threading

        from bci._logging import report_thread_error


        def _die():
            raise ZeroDivisionError("thread died")


        def _survive():
            try:
                1 / 0
            except ZeroDivisionError:
                report_thread_error("worker failed, carrying on")


        def test_thread_dies():
            t = threading.Thread(target=_die)
            t.start()
            t.join()


        def test_worker_reports_and_survives():
            t = threading.Thread(target=_survive)
            t.start()
            t.join()


        def test_clean_thread():
            t = threading.Thread(target=lambda: None)
            t.start()
            t.join()
    '''))
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c",
         str(REPO / "pyproject.toml"), "--rootdir", str(tmp_path), str(tmp_path)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert "2 failed, 1 passed" in r.stdout, r.stdout + r.stderr
    assert "ZeroDivisionError" in r.stdout
