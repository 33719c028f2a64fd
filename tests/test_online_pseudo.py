"""Pseudo-online evaluation: scoring rules, synthetic sessions end to end, a real Kalunga subject."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bci.errors import BCIError
from bci.online.pseudo_online import (
    check_recordings,
    evaluate_online,
    format_online_table,
    score_commands,
)
from bci.sources import synthesize_raw

KEYS = {"subject", "method", "hit_rate", "false_activations_per_min", "wrong_commands",
        "median_time_to_command_s", "n_target_trials", "n_hits", "calibration"}


def test_score_commands_rules():
    onsets = np.array([0.0, 5.0, 10.0, 15.0, 20.0])
    labels = ["rest", "13.0Hz", "17.0Hz", "rest", "21.0Hz"]
    cmds = [
        (1.0, "13.0Hz"),  # during rest: false activation
        (6.5, "13.0Hz"),  # hit, 1.5 s after the cue
        (11.0, "21.0Hz"),  # wrong first command: a miss and a wrong trial
        (12.0, "17.0Hz"),  # right but not first
        (22.0, "21.0Hz"),  # hit in the last trial (ends at 25 = cue + median spacing)
        (26.0, "13.0Hz"),  # after the last trial: not scored
    ]
    c = score_commands(cmds, onsets, labels, end_s=40.0)
    assert c["n_target_trials"] == 3 and c["n_hits"] == 2
    assert c["n_wrong_trials"] == 1 and c["n_wrong_commands"] == 1
    assert c["times_to_command"] == [1.5, 2.0]
    assert c["n_rest_trials"] == 2 and c["rest_s"] == 10.0
    assert c["n_false_activations"] == 1
    only_odd = score_commands(cmds, onsets, labels, 40.0, scored=np.arange(5) % 2 == 1)
    assert only_odd["n_target_trials"] == 1 and only_odd["n_rest_trials"] == 1


def _schedule(seed):
    rng = np.random.default_rng(seed)
    parts = ["rest:4"]
    for _ in range(2):
        for f in rng.permutation([13, 17, 21]):
            parts += [f"{f}:5", "rest:4"]
    return ",".join(parts)


@pytest.mark.slow
def test_evaluate_online_on_synthetic_sessions(tmp_path):
    files = {}
    for subject, seeds in {"s1": (1, 2), "s2": (3,)}.items():
        files[subject] = []
        for seed in seeds:
            path = tmp_path / subject / f"session{seed}_raw.fif"
            path.parent.mkdir(exist_ok=True)
            synthesize_raw(_schedule(seed), seed=seed, snr=0.5).save(path, verbose="error")
            files[subject].append(path)
    lines = []
    recs = evaluate_online(files, ["fbcca"], window_s=1.0, step_s=0.1, progress=lines.append,
                           policy_params={"n_consecutive": 10})
    assert len(recs) == 2 and len(lines) == 3
    for r in recs:
        assert KEYS <= set(r)
        json.dumps(r)  # the CLI writes these as JSON
    s1, s2 = recs
    assert s1["calibration"] == "another session of the same subject"
    assert s1["n_target_trials"] == 12 and s1["hit_rate"] >= 0.9, s1
    assert s1["false_activations_per_min"] <= 2.0 and s1["wrong_commands"] == 0, s1
    assert 0.5 < s1["median_time_to_command_s"] < 4.0
    assert s2["calibration"].startswith("held-apart trials")
    assert s2["n_target_trials"] + s2["n_rest_trials"] == 6  # the odd-numbered trials only
    table = format_online_table(recs)
    assert "s1" in table and "ALL" in table and "hit %" in table


@pytest.mark.slow
@pytest.mark.realdata
def test_evaluate_online_on_a_kalunga_subject(kalunga_root):
    sessions = sorted((kalunga_root / "subject03").glob("*_raw.fif"))
    recs = evaluate_online({"subject03": sessions}, ["fbcca"], window_s=1.0, step_s=0.25,
                           policy_params={"n_consecutive": 5})
    (r,) = recs
    assert KEYS <= set(r)
    assert r["n_target_trials"] == 48 and r["n_rest_trials"] == 16
    # A good responder: most cued targets commanded, thresholds from the other session.
    assert r["hit_rate"] >= 0.6, r
    assert len(r["sessions"]) == 2 and "<-" in r["sessions"][0]


def test_nothing_to_evaluate():
    with pytest.raises(BCIError, match="No recordings to evaluate online"):
        check_recordings({})
