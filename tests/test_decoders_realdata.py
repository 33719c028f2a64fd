"""Decoders on the real Kalunga2016 recordings (read with MNE from ../shared/data)."""

from __future__ import annotations

import mne
import numpy as np
import pytest
from scipy.stats import spearmanr

from bci.decoders import FBCCA, METHODS, TRCA, make_decoder

pytestmark = pytest.mark.realdata
CODES = {1: "rest", 2: "13.0Hz", 3: "21.0Hz", 4: "17.0Hz"}
SF = 256.0


def _sessions(root, subject):
    out = []
    for f in sorted((root / subject).glob("*_raw.fif")):
        data = mne.io.read_raw_fif(f, preload=True, verbose="error").get_data()
        ev = mne.read_events(str(f).replace("_raw.fif", "-eve.fif"), verbose="error")
        out.append((data, ev))
    return out


def _cut(data, ev, window_s=1.0, offsets=(0.0,), rest=True):
    n = int(window_s * SF)
    X, y, t = [], [], []
    for s, _, c in ev:
        lab = CODES[int(c)]
        if lab == "rest" and not rest:
            continue
        for o in offsets:
            a = s + int(round((2.0 + o) * SF))
            if a + n <= data.shape[1]:
                X.append(data[:, a:a + n])
                y.append(lab)
                t.append(s / SF)
    return np.asarray(X), np.asarray(y), np.asarray(t)


@pytest.fixture(scope="module")
def subjects(kalunga_root):
    return {s: _sessions(kalunga_root, s) for s in ("subject01", "subject04")}


def test_fbcca_training_free_on_real_sessions(subjects):
    X, y, _ = _cut(*subjects["subject04"][0], window_s=2.0, rest=False)
    est = FBCCA().fit(X)  # no labels: classes_ are 13, 17, 21 Hz
    pred = np.array([f"{p:.1f}Hz" for p in est.predict(X)])
    assert np.mean(pred == y) >= 0.85


def test_template_decoders_are_at_chance_on_free_running_leds(subjects):
    (d1, e1), (d2, e2) = subjects["subject01"]
    Xtr, ytr, _ = _cut(d1, e1, rest=False)
    Xte, yte, _ = _cut(d2, e2, rest=False)
    acc = np.mean(TRCA().fit(Xtr, ytr).predict(Xte) == yte)
    assert acc < 0.6  # 3 classes: chance is 1/3; FBCCA gets ~0.8 here


def test_rest_detection_does_not_follow_time_in_session(subjects):
    """Cross-session: calibrate on one session, test on the other.

    In every Kalunga session the rest trials come first. A rest detector that tracked slow
    drift would give frequency trials a rest probability that falls with time since the
    rest block (negative correlation); ours must not follow time.
    """
    start, end = METHODS["ress-fbcca"]["train_span"]
    rs, accs, recalls = [], [], []
    for sessions in subjects.values():
        for i, j in ((0, 1), (1, 0)):
            # training epochs over the registry's span; the decoder cuts its 1 s windows
            Xtr, ytr, _ = _cut(*sessions[i], window_s=end - start, offsets=(start - 2.0,))
            Xte, yte, tt = _cut(*sessions[j])
            est = make_decoder("ress-fbcca", sfreq=SF, freqs=(13, 17, 21), window_s=1.0)
            est.fit(Xtr, ytr)
            p_rest = est.predict_proba(Xte)[:, list(est.classes_).index("rest")]
            f = yte != "rest"
            rs.append(spearmanr(p_rest[f], tt[f])[0])
            pred = est.predict(Xte)
            accs.append(np.mean(pred == yte))
            recalls.append(np.mean(pred[~f] == "rest"))
    print(f'acc={np.mean(accs):.3f} recall={np.mean(recalls):.3f} r={np.round(rs, 2)}')
    assert np.mean(accs) >= 0.6  # 4 classes, chance 0.25
    assert np.mean(recalls) >= 0.5
    assert max(abs(r) for r in rs) < 0.6
    assert abs(np.mean(rs)) < 0.3
