"""DecisionPolicy: evidence against the runner-up, threshold, clip, drift, horizon, refractory,
latching and release, rest, health, serialisation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bci.online import DecisionPolicy

CLASSES = ("13.0Hz", "17.0Hz", "21.0Hz", "rest")
# log-posterior-like rows: A favours 13 Hz by 1.0 over the runner-up, B 17 Hz, R rest
A, B, R = [1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]
WEAK_A = [0.1, 0.0, 0.0, 0.0]


def feed(policy, rows, step=0.1, t0=0.0):
    """Feed rows; return the list of (time, outcome, reason)."""
    out = []
    for i, row in enumerate(rows):
        t = round(t0 + i * step, 6)
        r = policy.update(t, np.asarray(row, float))
        out.append((round(t, 3), r.outcome, r.reason))
    return out


def commits(results):
    return [(t, o) for t, o, _ in results if o is not None]


def make(**kw):
    params = dict(threshold=3.0, refractory_s=0.5, release_s=0.5, horizon_s=3.0)
    params.update(kw)
    return DecisionPolicy(CLASSES, **params)


def test_commits_when_the_evidence_reaches_the_threshold():
    res = feed(make(), [A] * 3)
    assert [r[2] for r in res] == ["evidence", "evidence", "committed"]
    assert res[2][1] == "13.0Hz"


def test_evidence_is_against_the_strongest_competitor_rest_included():
    # 13 Hz leads the other targets by 1 but rest is higher still: no evidence at all
    row = [1.0, 0.0, 0.0, 1.2]
    res = feed(make(), [row] * 20)
    assert commits(res) == [] and {r[2] for r in res} == {"rest"}
    # 13 Hz leads rest by 0.2: five times slower than by 1.0
    assert commits(feed(make(threshold=0.95), [[1.0, 0.0, 0.0, 0.8]] * 6)) == [(0.4, "13.0Hz")]


def test_clip_bounds_what_one_window_adds():
    strong = [10.0, 0.0, 0.0, 0.0]
    assert commits(feed(make(), [strong])) == [(0.0, "13.0Hz")]
    res = feed(make(clip=0.5), [strong] * 6)
    assert commits(res) == [(0.5, "13.0Hz")]


def test_drift_keeps_weak_sustained_evidence_from_adding_up():
    assert commits(feed(make(threshold=0.95), [WEAK_A] * 30)) == [(0.9, "13.0Hz")]
    assert commits(feed(make(threshold=1.0, drift=0.1), [WEAK_A] * 200)) == []


def test_evidence_older_than_the_horizon_does_not_count():
    rows = [A, A] + [WEAK_A] * 25 + [A]
    # within a long horizon the evidence adds up (2 + 25 * 0.1 > 3) ...
    assert commits(feed(make(horizon_s=10.0), rows)) != []
    # ... within 1 s it never does (at most 1 + 9 * 0.1)
    assert commits(feed(make(horizon_s=1.0), rows)) == []


def test_a_run_against_the_target_is_dropped_as_in_a_cusum():
    # two strong windows, then evidence against 13 Hz: the accumulated 2.0 is lost
    rows = [A, A] + [B] * 3 + [A, A]
    res = feed(make(threshold=3.0, refractory_s=0.0), rows)
    assert commits(res) == [(0.4, "17.0Hz")]  # B reached 3 first; A never reaches 3 again


def test_rest_winner_is_no_control():
    res = feed(make(), [R] * 10)
    assert commits(res) == []
    assert {r[2] for r in res} == {"rest"}


def test_refractory_blocks_another_target():
    p = make(refractory_s=1.0, release_s=0.0)
    res = feed(p, [A] * 3 + [B] * 12)
    # B reaches the threshold at 0.5, within the refractory period (commit at 0.2 + 1.0)
    assert commits(res)[0] == (0.2, "13.0Hz")
    assert commits(res)[1] == (1.2, "17.0Hz")
    assert "refractory" in {r[2] for r in res[3:12]}


def test_latching_blocks_the_same_command_until_released():
    p = make(release_s=0.5)
    res = feed(p, [A] * 30)
    assert commits(res) == [(0.2, "13.0Hz")]
    assert res[-1][2] == "latched"
    assert p.latched == "13.0Hz"


def test_short_dip_does_not_release_the_latch():
    p = make(release_s=0.5)
    assert commits(feed(p, [A] * 5 + [R] * 3 + [A] * 10)) == [(0.2, "13.0Hz")]


def test_release_after_release_s_away_and_fresh_evidence():
    p = make(release_s=0.5)
    res = feed(p, [A] * 5 + [R] * 7 + [A] * 5)
    # released at 1.0 (0.5 s after the dip began at 0.5); evidence restarts at 1.2
    assert commits(res) == [(0.2, "13.0Hz"), (1.4, "13.0Hz")]


def test_another_target_releases_too():
    p = make(release_s=0.3, refractory_s=0.0)
    res = feed(p, [A] * 3 + [B] * 3 + [A] * 3)
    assert commits(res) == [(0.2, "13.0Hz"), (0.5, "17.0Hz"), (0.8, "13.0Hz")]


def test_without_latching_the_command_repeats():
    p = make(release_s=0.0, refractory_s=0.5)
    assert len(commits(feed(p, [A] * 20))) > 1


def test_unhealthy_window_clears_the_evidence():
    p = make()
    p.update(0.0, np.asarray(A))
    p.update(0.1, np.asarray(A))
    r = p.update(0.2, None, healthy=False)
    assert (r.outcome, r.reason, r.winner) == (None, "unhealthy", None)
    assert p.update(0.3, np.asarray(A)).reason == "evidence"
    assert p.update(0.4, np.asarray(A)).reason == "evidence"
    assert p.update(0.5, np.asarray(A)).outcome == "13.0Hz"


def test_result_reports_the_evidence():
    p = make()
    assert p.update(0.0, np.asarray(A)).evidence == pytest.approx(1.0)
    assert p.update(0.1, np.asarray(A)).evidence == pytest.approx(2.0)


def test_reset_forgets_latch():
    p = make()
    feed(p, [A] * 3)
    p.reset()
    assert p.latched is None
    assert commits(feed(p, [A] * 3, t0=1.0)) == [(1.2, "13.0Hz")]


def test_replay_equals_updates(rng):
    scores = rng.normal(size=(300, 4))
    t = np.arange(300) * 0.1
    p = make(threshold=2.0, clip=1.0, drift=0.2)
    expected = [(ti, r.outcome) for ti in t.tolist()
                for r in [p.update(ti, scores[int(round(ti * 10))])] if r.outcome]
    assert p.replay(t, scores) == expected
    assert expected  # the stream commits something


@pytest.mark.parametrize("speed", [4.0, 10.0])
def test_for_speed_commits_the_same_on_a_clock_speed_times_faster(rng, speed):
    """A source played ``speed`` times faster stamps its windows ``1/speed`` s apart per
    second of signal: the policy for that speed commits the same targets at the same
    windows (horizon, refractory and latching included)."""
    scores = rng.normal(size=(600, 4))
    t = np.arange(600) * 0.1  # seconds of signal
    p = make(threshold=2.0, clip=1.0, drift=0.2, horizon_s=2.0, refractory_s=1.5,
             release_s=0.8)
    fast = p.for_speed(speed)
    assert (fast.horizon_s, fast.refractory_s, fast.release_s) == pytest.approx(
        (2.0 / speed, 1.5 / speed, 0.8 / speed))
    assert {k: v for k, v in fast.to_dict().items() if not k.endswith("_s")} == \
        {k: v for k, v in p.to_dict().items() if not k.endswith("_s")}
    slow_commits = p.replay(t, scores)
    assert len(slow_commits) >= 5
    # window times on the fast clock, scaled back to compare
    got = [(ti * speed, c) for ti, c in fast.replay(t / speed, scores)]
    assert [c for _, c in got] == [c for _, c in slow_commits]
    np.testing.assert_allclose([ti for ti, _ in got], [ti for ti, _ in slow_commits])
    # the unscaled policy on the fast clock integrates `speed` times more signal: it differs
    assert p.replay(t / speed, scores) != [(ti / speed, c) for ti, c in slow_commits]
    assert p.for_speed(1.0).to_dict() == p.to_dict()


def test_wrong_number_of_scores():
    with pytest.raises(ValueError, match="Expected 4 scores"):
        make().update(0.0, np.zeros(3))


@pytest.mark.parametrize(
    ("kw", "exc", "match"),
    [
        ({"threshold": 0.0}, ValueError, "'threshold' must be in"),
        ({"drift": -1.0}, ValueError, "'drift' must be in"),
        ({"clip": 0.0}, ValueError, "'clip' must be in"),
        ({"horizon_s": 0.0}, ValueError, "'horizon_s' must be in"),
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
    with pytest.raises(ValueError, match="no target"):
        DecisionPolicy(["rest"])


def test_to_dict_roundtrip_through_json():
    p = make(threshold=1.23, drift=0.1, clip=0.6, horizon_s=2.0)
    q = DecisionPolicy.from_dict(json.loads(json.dumps(p.to_dict())))
    assert q.to_dict() == p.to_dict()
    with pytest.raises(ValueError, match="Unknown decision policy key"):
        DecisionPolicy.from_dict({**p.to_dict(), "n_consecutive": 3})
    with pytest.raises(ValueError, match="needs its 'classes'"):
        DecisionPolicy.from_dict({"threshold": 3})


def test_noise_that_adds_no_evidence_releases_the_latch():
    # after the commit, 13 Hz still leads by 0.1 (below the drift): that is not favouring it
    p = make(threshold=1.5, drift=0.2, release_s=0.5, refractory_s=0.0)
    res = feed(p, [A] * 3 + [WEAK_A] * 8 + [A] * 3)
    assert commits(res) == [(0.1, "13.0Hz"), (1.2, "13.0Hz")]
