"""DecisionPolicy: dwell, margin, probability, refractory, latching, release, rest, health."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bci.online import DecisionPolicy

CLASSES = ("13.0Hz", "17.0Hz", "21.0Hz", "rest")
A, B, R = [1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]
WEAK_A = [0.50, 0.45, 0.0, 0.0]


def feed(policy, rows, step=0.1, t0=0.0):
    """Feed rows; return the list of (time, outcome, reason)."""
    out = []
    for i, row in enumerate(rows):
        t = t0 + i * step
        r = policy.update(t, np.asarray(row, float))
        out.append((round(t, 3), r.outcome, r.reason))
    return out


def commits(results):
    return [(t, o) for t, o, _ in results if o is not None]


def make(**kw):
    params = dict(n_consecutive=3, min_margin=0.2, refractory_s=0.5, release_s=0.5)
    params.update(kw)
    return DecisionPolicy(CLASSES, **params)


def test_commits_after_n_consecutive_wins():
    res = feed(make(), [A] * 3)
    assert [r[2] for r in res] == ["dwell", "dwell", "committed"]
    assert res[2][1] == "13.0Hz"


def test_interrupted_run_restarts_the_count():
    res = feed(make(), [A, A, B, A, A])
    assert commits(res) == []
    assert [r[2] for r in res][-1] == "dwell"


def test_margin_below_threshold_is_no_control():
    res = feed(make(), [WEAK_A] * 10)
    assert commits(res) == []
    assert {r[2] for r in res} == {"margin"}
    assert commits(feed(make(min_margin=0.04), [WEAK_A] * 3)) == [(0.2, "13.0Hz")]


def test_min_probability():
    probs = [0.55, 0.15, 0.15, 0.15]
    assert commits(feed(make(min_probability=0.6), [probs] * 5)) == []
    assert commits(feed(make(min_probability=0.5), [probs] * 3)) == [(0.2, "13.0Hz")]


def test_rest_winner_is_no_control():
    res = feed(make(min_margin=0.0), [R] * 10)
    assert commits(res) == []
    assert {r[2] for r in res} == {"rest"}


def test_refractory_blocks_another_target():
    p = make(refractory_s=1.0)
    res = feed(p, [A] * 3 + [B] * 12)
    # B wins from t=0.3; third win at 0.5 is within the refractory (commit at 0.2 + 1.0).
    assert commits(res) == [(0.2, "13.0Hz"), (1.2, "17.0Hz")]
    assert ("refractory" in {r[2] for r in res[3:10]})


def test_latching_blocks_the_same_command_until_released():
    p = make(release_s=0.5)
    # A held for 3 s: one command only.
    res = feed(p, [A] * 30)
    assert commits(res) == [(0.2, "13.0Hz")]
    assert res[-1][2] == "latched"
    assert p.latched == "13.0Hz"


def test_short_dip_does_not_release_the_latch():
    p = make(release_s=0.5)
    res = feed(p, [A] * 5 + [R] * 3 + [A] * 10)
    assert commits(res) == [(0.2, "13.0Hz")]


def test_release_after_release_s_of_no_control():
    p = make(release_s=0.5)
    res = feed(p, [A] * 5 + [R] * 7 + [A] * 5)
    assert commits(res) == [(0.2, "13.0Hz"), (1.4, "13.0Hz")]
    assert p.latched == "13.0Hz"


def test_another_target_releases_too():
    p = make(release_s=0.3, refractory_s=0.0)
    res = feed(p, [A] * 3 + [B] * 3 + [A] * 3)
    assert commits(res) == [(0.2, "13.0Hz"), (0.5, "17.0Hz"), (0.8, "13.0Hz")]


def test_without_latching_the_command_repeats():
    p = make(release_s=0.0, refractory_s=0.5)
    res = feed(p, [A] * 20)
    assert len(commits(res)) > 1


def test_unhealthy_window_resets_evidence():
    p = make()
    p.update(0.0, np.asarray(A))
    p.update(0.1, np.asarray(A))
    r = p.update(0.2, None, healthy=False)
    assert (r.outcome, r.reason, r.winner) == (None, "unhealthy", None)
    assert p.update(0.3, np.asarray(A)).reason == "dwell"
    assert p.update(0.4, np.asarray(A)).reason == "dwell"
    assert p.update(0.5, np.asarray(A)).outcome == "13.0Hz"


def test_reset_forgets_latch():
    p = make()
    feed(p, [A] * 3)
    p.reset()
    assert p.latched is None
    assert commits(feed(p, [A] * 3, t0=1.0)) == [(1.2, "13.0Hz")]


def test_wrong_number_of_scores():
    with pytest.raises(ValueError, match="Expected 4 scores"):
        make().update(0.0, np.zeros(3))


@pytest.mark.parametrize(
    ("kw", "exc", "match"),
    [
        ({"n_consecutive": 0}, ValueError, "'n_consecutive' must be >= 1"),
        ({"n_consecutive": 2.5}, TypeError, "'n_consecutive' must be an int"),
        ({"min_margin": -1.0}, ValueError, "'min_margin' must be in"),
        ({"min_probability": 1.5}, ValueError, "'min_probability' must be in"),
        ({"refractory_s": -0.1}, ValueError, "'refractory_s' must be in"),
        ({"release_s": "1"}, TypeError, "'release_s' must be a number"),
    ],
)
def test_bad_parameters(kw, exc, match):
    with pytest.raises(exc, match=match):
        DecisionPolicy(CLASSES, **kw)


def test_bad_classes():
    with pytest.raises(ValueError, match="at least one class"):
        DecisionPolicy([])
    with pytest.raises(ValueError, match="must be unique"):
        DecisionPolicy(["13.0Hz", "13.0Hz"])


def test_to_dict_roundtrip_through_json():
    p = make(min_margin=0.123, min_probability=0.4)
    q = DecisionPolicy.from_dict(json.loads(json.dumps(p.to_dict())))
    assert q.to_dict() == p.to_dict()
    with pytest.raises(ValueError, match="Unknown decision policy key"):
        DecisionPolicy.from_dict({**p.to_dict(), "dwell": 3})
    with pytest.raises(ValueError, match="needs its 'classes'"):
        DecisionPolicy.from_dict({"n_consecutive": 3})


def _calibration_stream(rng, n_blocks=6, per=40):
    """Rest blocks with noisy scores (margins up to ~0.3), target blocks with clear winners."""
    rows, labels = [], []
    for b in range(n_blocks):
        for _ in range(per):
            s = rng.uniform(0, 0.3, 4)
            s[3] = 0.0
            rows.append(s)
            labels.append("rest")
        target = b % 3
        for _ in range(per):
            s = rng.uniform(0, 0.3, 4)
            s[3] = 0.0
            s[target] = 0.9
            rows.append(s)
            labels.append(CLASSES[target])
    return np.array(rows), labels


def test_fit_thresholds_holds_the_false_activation_target(rng):
    scores, labels = _calibration_stream(rng)
    p = make(min_margin=0.0, n_consecutive=2).fit_thresholds(
        scores, labels, step_s=0.1, max_false_per_min=0.0
    )
    assert 0.05 < p.min_margin <= 0.6 + 1e-9
    fa, hits, wrong = p._simulate(scores, labels, 0.1, p.min_margin)
    assert (fa, hits, wrong) == (0, 6, 0)
    # Without calibration (margin 0), rest windows do produce commands.
    fa0, _, _ = p._simulate(scores, labels, 0.1, 0.0)
    assert fa0 > 0


def test_fit_thresholds_errors(rng):
    scores, labels = _calibration_stream(rng)
    p = make()
    with pytest.raises(ValueError, match="must have shape"):
        p.fit_thresholds(scores[:, :3], labels, step_s=0.1)
    with pytest.raises(ValueError, match="'labels' has 3 entries"):
        p.fit_thresholds(scores, labels[:3], step_s=0.1)
    with pytest.raises(ValueError, match="without rest windows"):
        p.fit_thresholds(scores, ["13.0Hz"] * len(labels), step_s=0.1)
