"""THE threshold procedure: the false-activation budget held through a model of rest."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import lfilter

from bci.evaluation.harness import ScoreStream
from bci.online.policy import DecisionPolicy
from calibration import selection as sel
from calibration.errors import CalibrationError

CLASSES = ("13.0Hz", "17.0Hz", "21.0Hz", "rest")
STEP = 0.1
RESS = sel.rest_tail_params("ress-fbcca")  # these scores are log-posteriors, like its own


def _log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def _stream(labels, trial_s, seed, gain=3.0):
    """Scores like a decoder's log-posteriors: smoothed noise (consecutive windows overlap),
    the cued target favoured by ``gain``, rest favoured during rest trials."""
    rng = np.random.default_rng(seed)
    end = len(labels) * trial_s
    t = np.arange(STEP, end, STEP)
    z = lfilter([0.15], [1, -0.85], rng.normal(0, 2.5, (len(t), len(CLASSES))), axis=0)
    onsets = np.arange(len(labels)) * trial_s
    trial = np.minimum((t // trial_s).astype(int), len(labels) - 1)
    for i, lab in enumerate(labels):
        z[trial == i, CLASSES.index(lab)] += gain if lab != "rest" else 1.0
    return ScoreStream(_log_softmax(z), t, CLASSES, onsets, np.array(labels), float(end),
                       STEP, 1.5)


def _calibration(seed):
    labels = ["13.0Hz", "17.0Hz", "21.0Hz", "rest"] * 8
    return _stream(labels, 7.0, seed)


def test_evidence_trace_is_the_evidence_the_policy_commits_on():
    st = _calibration(0)
    pol = sel.policy_for(CLASSES, 1e9, {})  # never reached: the evidence alone
    ev = pol.evidence_trace(st.t, st.scores)
    fresh = DecisionPolicy.from_dict(pol.to_dict())
    upd = np.array([fresh.update(t, s).evidence for t, s in zip(st.t, st.scores)])
    np.testing.assert_allclose(np.maximum(ev, 0.0), upd, atol=1e-9)
    assert ev.min() < 0  # not floored: a stretch without evidence keeps its spread
    # the policy commits at the first window where the evidence reaches the threshold
    h = float(np.quantile(ev, 0.9))
    pol_h = sel.policy_for(CLASSES, h, {})
    first = pol_h.replay(st.t, st.scores)[0][0]
    ev_h = pol_h.evidence_trace(st.t, st.scores)
    assert first == pytest.approx(st.t[np.argmax(ev_h >= h)])
    # a non-finite score clears the evidence, as an unhealthy window does
    bad = st.scores.copy()
    bad[100] = np.nan
    ev_bad = pol.evidence_trace(st.t, bad)
    assert ev_bad[100] == -np.inf
    tail = DecisionPolicy.from_dict(pol.to_dict()).evidence_trace(st.t[101:], st.scores[101:])
    np.testing.assert_allclose(ev_bad[101:], tail)


def test_threshold_from_a_minute_of_rest_holds_the_budget_on_new_rest():
    """Six users' calibrations (a minute of rest each): the rate each threshold gives on a
    long stretch of new rest is near the budget on average and inside the predicted
    interval for most; the threshold extrapolates beyond the calibration's worst rest."""
    long_rest = _stream(["rest"] * 300, 6.0, seed=99)  # 30 minutes
    observed, inside, above_worst = [], 0, 0
    for seed in range(6):
        cal = _calibration(seed)
        pol, rep = sel.choose_threshold([cal], max_false_per_min=0.5, params=RESS)
        pred = rep["predicted"]
        assert pred["per_min"] == pytest.approx(0.5, rel=0.02) and rep["held"]
        lo, hi = pred["interval"]
        assert lo < pred["per_min"] < hi
        assert pred["rest_tail"]["n_blocks"] >= 16
        worst = sel.rest_maxima([cal], pol, RESS["block_s"]).max()
        above_worst += pol.threshold > worst
        fa = sel.replay([long_rest], pol)["false_activations_per_min"]
        observed.append(fa)
        inside += lo * 0.5 <= fa <= hi * 1.5  # the interval is for the rate; 30 min is finite
    assert 0.15 <= np.mean(observed) <= 1.0, observed
    assert inside >= 4, observed
    assert above_worst >= 3


def test_a_higher_budget_gives_a_lower_threshold_and_a_higher_prediction():
    cal = _calibration(3)
    p1, r1 = sel.choose_threshold([cal], max_false_per_min=0.5)
    p2, r2 = sel.choose_threshold([cal], max_false_per_min=2.0)
    assert p2.threshold < p1.threshold
    assert r2["predicted"]["per_min"] == pytest.approx(2.0, rel=0.02)
    # the margin multiplies the threshold at the budget; the prediction follows it
    p3, r3 = sel.choose_threshold([cal], max_false_per_min=0.5, params={"margin": 1.5})
    assert p3.threshold == pytest.approx(1.5 * r3["threshold_at_budget"])
    assert r3["predicted"]["per_min"] < 0.5


def test_budgets_and_rest_that_cannot_set_a_threshold_are_refused():
    cal = _calibration(1)
    with pytest.raises(CalibrationError, match="budget of 0.0 per minute cannot be held"):
        sel.choose_threshold([cal], max_false_per_min=0.0)
    short = _stream(["13.0Hz", "rest", "17.0Hz", "21.0Hz"], 4.0, seed=2)
    with pytest.raises(CalibrationError, match=r"Too little rest .* 4 s of rest trials give "
                                               r"2 blocks of 2 s, at least 3"):
        sel.choose_threshold([short], max_false_per_min=0.5)
    no_rest = _stream(["13.0Hz", "17.0Hz", "21.0Hz"] * 3, 4.0, seed=2)
    with pytest.raises(CalibrationError, match="no rest trials"):
        sel.choose_threshold([no_rest], max_false_per_min=0.5)
