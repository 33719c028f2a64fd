"""The cue sequence of a live calibration: which target to look at, when, for how long.

Besides the targets, a calibration records *no-control*: time in which the user looks at no
light, which teaches the decoder its rest class and sets the threshold for a false-activation
budget (:mod:`calibration.rest_model`). Every no-control trial is labelled ``"rest"`` in the
recording; its *task* says what the user does meanwhile (:data:`NO_CONTROL_TASKS`): fixate
a cross between the lights, let the gaze wander between the lights without dwelling, look
around the room, blink, talk. :meth:`CueSequence.realistic` mixes them with the targets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bci.labels import REST_LABEL, freq_label, label_to_freq
from bci.sources.schedule import Schedule

#: No-control tasks and the instruction the stimulus shows for each.
NO_CONTROL_TASKS = {
    "fixate": "Look at the cross",
    "between": "Let your gaze wander between the lights; do not stop on one",
    "around": "Look around the room, away from the lights",
    "blink": "Blink a few times",
    "talk": "Say something aloud",
}
#: The tasks of :meth:`CueSequence.realistic` besides fixation.
REALISTIC_TASKS = ("between", "around", "blink", "talk")
#: Fewest trials of each class in a sequence: the calibration cross-validates, which needs two.
MIN_TRIALS_PER_CLASS = 2
#: Shortest stimulation of a cued trial (s), the cue before it not included.
MIN_TRIAL_S = 0.5


@dataclass(frozen=True)
class CueSequence:
    """A randomised, balanced sequence of cued calibration trials.

    Trial ``k`` starts with its cue at ``onsets[k]`` (seconds from the start of the
    sequence): the cued tile is highlighted for ``cue_s``, the user attends it for
    ``trial_s`` (stimulation), then pauses for ``rest_s``. A lead-in of ``lead_s`` (no cue)
    comes first.

    Attributes
    ----------
    labels : tuple of str
        Cue of each trial (``"13.0Hz"`` ... or ``"rest"``).
    trial_s, cue_s, rest_s, lead_s : float
        Durations in seconds.
    tasks : tuple of (str | None) | None
        The no-control task of each rest trial (a key of :data:`NO_CONTROL_TASKS`), None
        for targets; None: every rest trial is fixation.
    """

    labels: tuple[str, ...]
    trial_s: float = 4.0
    cue_s: float = 0.0
    rest_s: float = 0.0
    lead_s: float = 2.0
    tasks: tuple[str | None, ...] | None = None

    def __post_init__(self) -> None:
        if self.tasks is None:
            return
        if len(self.tasks) != len(self.labels):
            raise ValueError(f"'tasks' has {len(self.tasks)} entries for {len(self.labels)} "
                             "trials.")
        for lab, task in zip(self.labels, self.tasks):
            if (task is None) != (lab != REST_LABEL):
                raise ValueError(f"Trial {lab!r} has task {task!r}: every rest trial needs a "
                                 "no-control task and no target trial has one.")
            if task is not None and task not in NO_CONTROL_TASKS:
                raise ValueError(f"Unknown no-control task {task!r}; choose from "
                                 f"{', '.join(NO_CONTROL_TASKS)}.")

    @classmethod
    def balanced(cls, freqs: Sequence[float], n_per_class: int, *, include_rest: bool = True,
                 trial_s: float = 4.0, cue_s: float = 0.0, rest_s: float = 0.0,
                 lead_s: float = 2.0, seed: int | None = None) -> CueSequence:
        """``n_per_class`` trials of each target (and rest), in random order."""
        if isinstance(n_per_class, bool) or not isinstance(n_per_class, int) or \
                n_per_class < MIN_TRIALS_PER_CLASS:
            raise ValueError(f"'n_per_class' must be an int >= {MIN_TRIALS_PER_CLASS} "
                             f"(cross-validation needs two trials per class), got "
                             f"{n_per_class!r}.")
        for name, v in (("trial_s", trial_s), ("cue_s", cue_s), ("rest_s", rest_s),
                        ("lead_s", lead_s)):
            least = MIN_TRIAL_S if name == "trial_s" else 0.0
            if not (np.isfinite(v) and v >= least):
                raise ValueError(f"'{name}' must be a number of seconds >= {least:g}, got "
                                 f"{v!r}.")
        labels = [freq_label(f) for f in freqs] + ([REST_LABEL] if include_rest else [])
        if len(set(labels)) < 2:
            raise ValueError(f"A calibration needs at least two classes, got {labels}.")
        seq = np.repeat(labels, n_per_class)
        np.random.default_rng(seed).shuffle(seq)
        return cls(tuple(str(s) for s in seq), float(trial_s), float(cue_s), float(rest_s),
                   float(lead_s))

    @classmethod
    def realistic(cls, freqs: Sequence[float], n_per_class: int = 8, *,
                  rest_block_s: float = 60.0, tasks: Sequence[str] = REALISTIC_TASKS,
                  n_per_task: int = 2, trial_s: float = 5.0, cue_s: float = 0.0,
                  rest_s: float = 0.0, lead_s: float = 2.0,
                  seed: int | None = None) -> CueSequence:
        """Targets with realistic no-control, balanced in every prefix.

        Half of a fixation block of ``rest_block_s`` seconds opens the sequence and half
        closes it (so no-control is not confined to the start of the recording, where slow
        drifts would tell it apart). In between come ``n_per_class`` rounds; each round holds
        every target once and, while any are left, no-control trials of the ``tasks`` (each
        ``n_per_task`` times in all), shuffled within the round. Any first minutes of the
        recording therefore hold every class, which lets a population decoder adapt on
        them.

        Parameters
        ----------
        freqs : sequence of float
            Target frequencies (Hz).
        n_per_class : int, default=8
            Trials of each target (>= 2).
        rest_block_s : float, default=60
            Fixation, in trials of ``trial_s`` (rounded up to an even number of trials).
        tasks : sequence of str, default=("between", "around", "blink", "talk")
            No-control tasks mixed with the targets (keys of :data:`NO_CONTROL_TASKS`).
        n_per_task : int, default=2
            Trials of each task.
        trial_s, cue_s, rest_s, lead_s : float
            Durations (s), as :meth:`balanced`.
        seed : int | None
            Seed of the order.
        """
        base = cls.balanced(freqs, n_per_class, include_rest=False, trial_s=trial_s,
                            cue_s=cue_s, rest_s=rest_s, lead_s=lead_s, seed=seed)
        unknown = [t for t in tasks if t not in NO_CONTROL_TASKS]
        if unknown:
            raise ValueError(f"Unknown no-control task(s) {unknown}; choose from "
                             f"{', '.join(NO_CONTROL_TASKS)}.")
        if isinstance(n_per_task, bool) or not isinstance(n_per_task, int) or n_per_task < 0:
            raise ValueError(f"'n_per_task' must be a non-negative int, got {n_per_task!r}.")
        if not (np.isfinite(rest_block_s) and rest_block_s >= 0):
            raise ValueError(f"'rest_block_s' must be >= 0 seconds, got {rest_block_s!r}.")
        rng = np.random.default_rng(seed)
        targets = [freq_label(f) for f in freqs]
        pending = [t for _ in range(n_per_task) for t in tasks]
        rng.shuffle(pending)
        half = int(np.ceil(rest_block_s / trial_s / 2))
        trials: list[tuple[str, str | None]] = [(REST_LABEL, "fixate")] * half
        for r in range(n_per_class):
            left = n_per_class - r
            k = int(np.ceil(len(pending) / left)) if pending else 0
            rnd = [(t, None) for t in targets] + [(REST_LABEL, pending.pop()) for _ in range(k)]
            rng.shuffle(rnd)
            trials.extend(rnd)
        trials.extend([(REST_LABEL, "fixate")] * half)
        return cls(tuple(lab for lab, _ in trials), base.trial_s, base.cue_s, base.rest_s,
                   base.lead_s, tuple(task for _, task in trials))

    def task_of(self, k: int) -> str | None:
        """The no-control task of trial ``k`` (``"fixate"`` for a plain rest trial), None for
        a target."""
        if self.labels[k] != REST_LABEL:
            return None
        return "fixate" if self.tasks is None else self.tasks[k]

    @property
    def no_control_s(self) -> float:
        """Seconds of no-control trials (cue and stimulation)."""
        return sum(self.cue_s + self.trial_s for lab in self.labels if lab == REST_LABEL)

    @property
    def period_s(self) -> float:
        """Cue-to-cue interval."""
        return self.cue_s + self.trial_s + self.rest_s

    @property
    def onsets(self) -> np.ndarray:
        """Cue times (s) from the start of the sequence."""
        return self.lead_s + self.period_s * np.arange(len(self.labels))

    @property
    def duration_s(self) -> float:
        """Total length (s)."""
        return self.lead_s + self.period_s * len(self.labels)

    @property
    def freqs(self) -> list[float]:
        """Target frequencies of the sequence, ascending."""
        return sorted({label_to_freq(lab) for lab in self.labels if lab != REST_LABEL})

    def schedule(self, tail_s: float = 0.0):
        """The :class:`bci.sources.Schedule` a simulated user following the cues would have
        (for :class:`bci.sources.SyntheticEEG`): rest during the lead-in and pauses, the cued
        class from the cue to the end of the stimulation, and ``tail_s`` of rest after the
        last trial (so that a live source outlasts the sequence)."""
        segs = [(REST_LABEL, self.lead_s)] if self.lead_s > 0 else []
        for lab in self.labels:
            segs.append((lab, self.cue_s + self.trial_s))
            if self.rest_s > 0:
                segs.append((REST_LABEL, self.rest_s))
        if tail_s > 0:
            segs.append((REST_LABEL, float(tail_s)))
        return Schedule(segs)
