"""Shared fixtures: the real recordings, unique LSL names, seeded RNGs."""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

# A shell that starts the suite in the background (``make test &``) ignores SIGINT, and so
# would this process and every child it starts: the Ctrl-C tests need Python's default.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

REPO = Path(__file__).resolve().parents[1]
KALUNGA = Path(
    os.environ.get("SSVEP_EXO_DATA", REPO.parent / "shared" / "data" / "kalunga2016")
).resolve()


@pytest.fixture(scope="session")
def kalunga_root() -> Path:
    """The read-only Kalunga2016 folder (skips when absent)."""
    if not KALUNGA.is_dir():
        pytest.skip(f"real recordings not found at {KALUNGA}")
    return KALUNGA


@pytest.fixture(scope="session")
def kalunga_session(kalunga_root: Path) -> Path:
    """One Kalunga raw file (subject 01, first session)."""
    return sorted((kalunga_root / "subject01").glob("*_raw.fif"))[0]


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded random generator."""
    return np.random.default_rng(42)


@pytest.fixture
def unique_name(request) -> str:
    """A unique LSL stream name / source id prefix for this test."""
    return f"ssvep-test-{request.node.name[:40]}-{uuid.uuid4().hex[:8]}"
