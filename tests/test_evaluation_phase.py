"""Phase-locking analysis: ITC at the stimulus frequencies and the recommended family."""

from __future__ import annotations

import numpy as np
import pytest

from bci.datasets import find_recordings, load_recording
from bci.evaluation import inter_trial_coherence, phase_locking_analysis
from bci.sources import synthesize_raw

SCHEDULE = [(lab, 5.0) for _ in range(8) for lab in ("13", "17", "21", "rest")]


def test_itc_of_fixed_and_random_phases(rng):
    t = np.arange(512) / 256.0
    fixed = np.stack([np.sin(2 * np.pi * 13 * t + 0.3)[None] for _ in range(20)])
    random = np.stack(
        [np.sin(2 * np.pi * 13 * t + p)[None] for p in rng.uniform(0, 2 * np.pi, 200)]
    )
    assert inter_trial_coherence(fixed, 256.0, 13.0)[0] == pytest.approx(1.0, abs=1e-9)
    assert inter_trial_coherence(random, 256.0, 13.0)[0] < 3 / np.sqrt(200)


def test_phase_locked_synthetic_recommends_templates():
    raws = {"s": [synthesize_raw(SCHEDULE, phase_locked=True, seed=3, snr=1.0)]}
    rep = phase_locking_analysis(raws, tmin=1.0, window_s=2.0)
    assert rep.family == "template"
    assert all(r["locked"] and r["itc"] > 0.7 for r in rep.rows)
    assert [r["freq"] for r in rep.rows] == [13.0, 17.0, 21.0]
    text = rep.format()
    assert "13 Hz ITC=" in text and "Recommendation: " in text and "template decoders" in text


def test_free_running_synthetic_recommends_phase_invariant():
    raws = {"s": [synthesize_raw(SCHEDULE, phase_locked=False, seed=3, snr=1.0)]}
    rep = phase_locking_analysis(raws, tmin=1.0, window_s=2.0)
    assert rep.family == "phase-invariant"
    assert not any(r["locked"] for r in rep.rows)
    assert all(r["chance"] == pytest.approx(1 / np.sqrt(8)) for r in rep.rows)
    assert "use phase-invariant decoders" in rep.recommendation


@pytest.mark.realdata
def test_kalunga_is_not_phase_locked(kalunga_root):
    found = find_recordings([kalunga_root / "subject01", kalunga_root / "subject02"])
    raws = {s: [load_recording(p) for p in ps] for s, ps in found.items()}
    rep = phase_locking_analysis(raws)
    assert rep.family == "phase-invariant"
    assert len(rep.rows) == 6
    assert all(r["n_trials"] == 16 for r in rep.rows)
