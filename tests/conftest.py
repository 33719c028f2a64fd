"""Shared fixtures: the real recordings, unique LSL names, seeded RNGs."""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path

import numpy as np
import pytest

from bci.sources.synthetic import synthesize_raw
from calibration.cues import CueSequence

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


@pytest.fixture(scope="session")
def calibration_file(tmp_path_factory) -> Path:
    """A small synthetic calibration recording (FIF): 13 and 17 Hz and rest, 3 trials each,
    3 s apart, a clear SSVEP (SNR 0.8)."""
    seq = CueSequence.balanced([13, 17], 3, trial_s=3.0, lead_s=0.0, seed=4)
    sched = ",".join(f"{lab}:{d:g}" for lab, d in seq.schedule().segments)
    path = tmp_path_factory.mktemp("calibration") / "cal_raw.fif"
    synthesize_raw(sched, seed=8, snr=0.8).save(path, verbose="error")
    return path
