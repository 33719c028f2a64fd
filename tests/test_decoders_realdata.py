"""Decoders on the real Kalunga2016 recordings, every dev subject (01-08), read with MNE.

Each criterion runs on every subject through the library's own loading and epoching
(:func:`bci.datasets.find_recordings`, :func:`~bci.datasets.load_recording`,
:func:`~bci.datasets.epoch`). The bounds come from the per-subject figures measured on
2026-11-30 (2-core VM) with this very code, printed by ``pytest -s`` (numbers below are those
figures); they sit a few trials below the measured minimum, so that a real regression fails
and a harmless change in the last digit does not. The computations are deterministic.

Hard subjects, named and bounded on their own:

- subject02: FBCCA is near chance (0.42 and 0.50 on 3 classes with 2 s windows; every other
  subject 0.79-1.00) and so is the calibrated decoder (0.44 and 0.59 on 4 classes);
- subject05: the calibrated decoder finds only 3 of 8 rest trials in the other session
  (recall 0.375 both ways; the other subjects 0.44-0.94, mean 0.66 over all).

Subject08's session ``record-[2013.04.06-16.22.32]`` is left out: the dataset's authors
excluded it for a protocol problem (see the data README); subject07's copy of subject03's
session is dropped by ``find_recordings``.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from bci.datasets import epoch, find_recordings, load_recording
from bci.decoders import FBCCA, METHODS, TRCA, make_decoder

pytestmark = pytest.mark.realdata
TARGETS = ("13.0Hz", "17.0Hz", "21.0Hz")
FLAGGED = "record-[2013.04.06-16.22.32]_raw.fif"
SUBJECTS = [f"subject{i:02d}" for i in range(1, 9)]
HARD_FBCCA = {"subject02": 0.40}  # measured 0.42, 0.50
HARD_RESS_ACC = {"subject02": 0.45}  # measured mean 0.52
HARD_REST_RECALL = {"subject02": 0.25, "subject05": 0.30}  # measured 0.25/0.38, 0.38/0.50


@pytest.fixture(scope="module")
def sessions(kalunga_root):
    found = find_recordings(kalunga_root)
    assert sorted(found) == SUBJECTS
    return {s: [load_recording(f) for f in files if f.name != FLAGGED]
            for s, files in found.items()}


def _pairs(raws):
    return [(raws[i], raws[j]) for i in range(len(raws)) for j in range(len(raws)) if i != j]


@pytest.fixture(scope="module")
def fbcca_accuracy(sessions):
    """Training-free FBCCA, 2 s windows, 3 classes: accuracy per subject and session."""
    out = {}
    for subject, raws in sessions.items():
        out[subject] = []
        for raw in raws:
            X, y, _ = epoch(raw, tmin=2.0, window_s=2.0, classes=TARGETS)
            pred = FBCCA().fit(X).predict(X)  # no labels: classes_ are 13, 17, 21 Hz
            out[subject].append(float(np.mean([f"{p:.1f}Hz" for p in pred] == y)))
    print("\nFBCCA 2 s, 3 classes:", {s: np.round(a, 3).tolist() for s, a in out.items()})
    return out


def test_fbcca_training_free_on_every_subject(fbcca_accuracy):
    for subject, accs in fbcca_accuracy.items():
        assert len(accs) >= 2, subject
        assert min(accs) >= HARD_FBCCA.get(subject, 0.75), (subject, accs)
    # measured mean over the 16 sessions: 0.86
    assert np.mean([a for accs in fbcca_accuracy.values() for a in accs]) >= 0.8


def test_template_decoders_are_at_chance_on_free_running_leds(sessions):
    """TRCA learns phase-locked templates; with free-running LEDs (random phase per trial)
    it falls to chance (1/3) across sessions on every subject, where FBCCA works."""
    per_subject = {}
    for subject, raws in sessions.items():
        accs = []
        for train, test in _pairs(raws):
            Xtr, ytr, _ = epoch(train, tmin=2.0, window_s=1.0, classes=TARGETS)
            Xte, yte, _ = epoch(test, tmin=2.0, window_s=1.0, classes=TARGETS)
            accs.append(float(np.mean(TRCA().fit(Xtr, ytr).predict(Xte) == yte)))
        per_subject[subject] = float(np.mean(accs))
    print("\nTRCA cross-session, 1 s:", {s: round(a, 3) for s, a in per_subject.items()})
    # measured 0.17-0.50 per subject (24 test trials: chance 0.33 +- 0.10), mean 0.28
    assert max(per_subject.values()) <= 0.6, per_subject
    assert np.mean(list(per_subject.values())) <= 0.42, per_subject


@pytest.fixture(scope="module")
def ress_cross_session(sessions):
    """Calibrated RessFBCCA, calibrate on one session and decode the other (4 classes)."""
    start, end = METHODS["ress-fbcca"]["train_span"]
    out = {}
    for subject, raws in sessions.items():
        out[subject] = rows = []
        for train, test in _pairs(raws):
            # training epochs over the registry's span; the decoder cuts its 1 s windows
            Xtr, ytr, _ = epoch(train, tmin=start, window_s=end - start)
            Xte, yte, onsets = epoch(test, tmin=2.0, window_s=1.0)
            est = make_decoder("ress-fbcca", sfreq=256.0, freqs=(13, 17, 21), window_s=1.0)
            est.fit(Xtr, ytr)
            pred = est.predict(Xte)
            p_rest = est.predict_proba(Xte)[:, list(est.classes_).index("rest")]
            f = yte != "rest"
            rows.append({"acc": float(np.mean(pred == yte)),
                         "recall": float(np.mean(pred[~f] == "rest")),
                         "r": float(spearmanr(p_rest[f], onsets[f])[0])})
    print("\nRessFBCCA cross-session:", {s: [{k: round(v, 2) for k, v in r.items()}
                                            for r in rows] for s, rows in out.items()})
    return out


def test_calibrated_decoder_across_sessions_on_every_subject(ress_cross_session):
    """4 classes (chance 0.25), the shipped defaults (C=0.003, training span 1-5 s): measured
    0.58-0.86 per subject, mean 0.76; rest recall 0.31-0.88 per subject, mean 0.63 (subject02,
    the weakest responder, 0.31)."""
    for subject, rows in ress_cross_session.items():
        acc = np.mean([r["acc"] for r in rows])
        recall = np.mean([r["recall"] for r in rows])
        assert acc >= HARD_RESS_ACC.get(subject, 0.55), (subject, rows)
        assert recall >= HARD_REST_RECALL.get(subject, 0.4), (subject, rows)
    all_rows = [r for rows in ress_cross_session.values() for r in rows]
    assert np.mean([r["acc"] for r in all_rows]) >= 0.68
    assert np.mean([r["recall"] for r in all_rows]) >= 0.6


def test_rest_detection_does_not_follow_time_in_session(ress_cross_session):
    """In every Kalunga session the rest trials come first. A rest detector that tracked
    slow drift would give the frequency trials of the other session a rest probability that
    changes with time since the rest block; ours must not follow time (measured Spearman r
    per session pair -0.36..0.35, mean 0.06)."""
    rs = {s: [r["r"] for r in rows] for s, rows in ress_cross_session.items()}
    assert max(abs(r) for v in rs.values() for r in v) < 0.5, rs
    assert abs(np.mean([r for v in rs.values() for r in v])) < 0.2, rs
