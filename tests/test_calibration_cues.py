"""The live calibration's cue sequence with realistic no-control."""

from __future__ import annotations

import numpy as np
import pytest

from calibration.cues import NO_CONTROL_TASKS, REALISTIC_TASKS, CueSequence


def test_realistic_sequence_mixes_targets_and_no_control():
    seq = CueSequence.realistic([13, 17, 21], 8, rest_block_s=60.0, trial_s=5.0, seed=3)
    labels = np.array(seq.labels)
    tasks = list(seq.tasks)
    # 8 trials per target, 60 s of fixation (12 trials, half first and half last) and two
    # trials of each other task
    for f in ("13.0Hz", "17.0Hz", "21.0Hz"):
        assert np.sum(labels == f) == 8
    assert tasks[:6] == ["fixate"] * 6 and tasks[-6:] == ["fixate"] * 6
    for task in REALISTIC_TASKS:
        assert tasks.count(task) == 2
    assert seq.no_control_s == pytest.approx((12 + 8) * 5.0)
    assert all((t is None) == (lab != "rest") for lab, t in zip(labels, tasks))
    # every prefix is balanced: after the opening block, each round of four trials holds
    # every target once (and one no-control trial)
    middle = labels[6:-6]
    for r in range(8):
        assert sorted(middle[4 * r: 4 * r + 4]) == ["13.0Hz", "17.0Hz", "21.0Hz", "rest"]
    # the synthetic user of the sequence rests in every no-control trial
    sched = seq.schedule()
    assert {lab for lab, _ in sched.segments} == {"rest", "13.0Hz", "17.0Hz", "21.0Hz"}
    assert seq.task_of(0) == "fixate" and seq.task_of(int(np.argmax(labels != "rest"))) is None


def test_realistic_rounds_each_hold_every_target():
    seq = CueSequence.realistic([13, 17], 4, rest_block_s=10.0, tasks=("blink",),
                                n_per_task=4, trial_s=5.0, seed=0)
    middle = [lab for lab, t in zip(seq.labels, seq.tasks) if t != "fixate"]
    # four rounds of (13, 17, one blink), shuffled within each round
    assert len(middle) == 12
    for r in range(4):
        assert sorted(middle[3 * r: 3 * r + 3]) == ["13.0Hz", "17.0Hz", "rest"]


def test_task_validation():
    with pytest.raises(ValueError, match="Unknown no-control task"):
        CueSequence.realistic([13, 17], 2, tasks=("dance",))
    with pytest.raises(ValueError, match="every rest trial needs a no-control task"):
        CueSequence(("13.0Hz", "rest"), tasks=("blink", None))
    with pytest.raises(ValueError, match="entries for 2 trials"):
        CueSequence(("13.0Hz", "rest"), tasks=(None,))
    with pytest.raises(ValueError, match="'n_per_class' must be an int >= 2"):
        CueSequence.realistic([13, 17], 1)
    assert set(REALISTIC_TASKS) < set(NO_CONTROL_TASKS)
    plain = CueSequence.balanced([13, 17], 2, seed=0)
    assert plain.tasks is None and plain.task_of(plain.labels.index("rest")) == "fixate"
