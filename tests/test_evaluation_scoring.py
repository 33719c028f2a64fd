"""The one scorer: per-trial hit/wrong/none, execution, false activations, pooling."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bci.evaluation.scoring import Selection, format_scores, pool, score_trials, totals, trial_ends

ONSETS = [0.0, 5.0, 10.0, 15.0, 20.0]
LABELS = ["rest", "13.0Hz", "17.0Hz", "rest", "21.0Hz"]


def test_trial_rules():
    sel = [
        Selection(1.0, "13.0Hz"),  # during rest: false activation
        Selection(6.5, "13.0Hz"),  # hit, 1.5 s after the cue
        Selection(11.0, "21.0Hz"),  # wrong first selection
        Selection(12.0, "17.0Hz"),  # right but not first
        Selection(22.0, "21.0Hz"),  # hit in the last trial (ends at 25 = cue + spacing)
        Selection(26.0, "13.0Hz"),  # after the last trial: not scored
    ]
    rows = score_trials(sel, ONSETS, LABELS, end_s=40.0)
    assert [r.decision for r in rows] == ["rest", "hit", "wrong", "rest", "hit"]
    assert rows[-1].end == 25.0
    assert rows[1].time_s == pytest.approx(1.5) and rows[2].time_s == pytest.approx(1.0)
    assert rows[2].n_wrong == 1 and rows[2].selections == ["21.0Hz", "17.0Hz"]
    t = totals(rows)
    assert (t["n_target_trials"], t["n_hits"], t["n_wrong_trials"], t["n_none"]) == (3, 2, 1, 0)
    assert t["n_false_activations"] == 1 and t["rest_minutes"] == pytest.approx(10 / 60)
    assert t["false_activations_per_min"] == pytest.approx(6.0)
    assert t["times_to_command_s"] == [1.5, 2.0]
    assert t["executed_rate"] is None  # nothing says what was executed
    assert t["n_selections"] == 5


def test_consecutive_trials_of_the_same_class_are_not_merged():
    onsets, labels = [0.0, 5.0, 10.0], ["13.0Hz", "13.0Hz", "13.0Hz"]
    rows = score_trials([Selection(2.0, "13.0Hz"), Selection(7.0, "13.0Hz")], onsets, labels,
                        end_s=15.0)
    assert [r.decision for r in rows] == ["hit", "hit", "none"]
    assert totals(rows)["hit_rate"] == pytest.approx(2 / 3)


def test_last_trial_ends_one_cue_spacing_after_its_cue_or_at_the_end_of_data():
    assert trial_ends([0.0, 6.5, 13.0], end_s=100.0).tolist() == [6.5, 13.0, 19.5]
    assert trial_ends([0.0, 6.5, 13.0], end_s=15.0).tolist() == [6.5, 13.0, 15.0]
    rows = score_trials([Selection(30.0, "13.0Hz")], [0.0, 6.5, 13.0], ["rest"] * 3,
                        end_s=100.0)
    assert totals(rows)["n_false_activations"] == 0  # 30 s is past the last trial


def test_refused_selections_during_rest_are_still_false_activations():
    sel = [Selection(1.0, "13.0Hz", "refused", None, "13.0Hz means nothing while sitting"),
           Selection(6.0, "13.0Hz", "awaiting_confirmation", "stand"),
           Selection(8.0, "13.0Hz", "executed", "stand"),
           Selection(11.0, "17.0Hz", "refused", "walk", "walk is not legal while sitting")]
    rows = score_trials(sel, ONSETS, LABELS, end_s=25.0)
    assert rows[0].n_false == 1 and rows[0].result == "refused"
    # the first right selection awaited confirmation; the second was executed
    assert rows[1].decision == "hit" and rows[1].executed is True
    assert rows[1].result == "awaiting_confirmation" and rows[1].command == "stand"
    assert rows[2].decision == "hit" and rows[2].executed is False
    assert rows[2].reason == "walk is not legal while sitting"
    t = totals(rows)
    assert t["n_executed"] == 1 and t["executed_rate"] == pytest.approx(1 / 3)
    json.dumps([r.to_dict() for r in rows])


def test_scored_mask():
    sel = [Selection(1.0, "13.0Hz"), Selection(6.0, "13.0Hz")]
    rows = score_trials(sel, ONSETS, LABELS, end_s=25.0, scored=np.arange(5) % 2 == 1)
    assert [r.index for r in rows] == [1, 3]


def test_pool_sums_counts_and_takes_the_median_over_every_hit():
    a = totals(score_trials([Selection(6.0, "13.0Hz")], ONSETS, LABELS, end_s=25.0))
    b = totals(score_trials([Selection(8.0, "13.0Hz"), Selection(2.0, "17.0Hz")], ONSETS,
                            LABELS, end_s=25.0))
    p = pool([a, b], subject="ALL")
    assert p["subject"] == "ALL" and p["n_target_trials"] == 6 and p["n_hits"] == 2
    assert p["median_time_to_command_s"] == pytest.approx(2.0)
    assert p["false_activations_per_min"] == pytest.approx(1 / (20 / 60))
    text = format_scores([{**a, "subject": "s1", "method": "m"},
                          {**b, "subject": "s2", "method": "m"}])
    assert "ALL" in text and "s2" in text and "hit %" in text
