"""The cue sequence of a live calibration: which target to look at, when, for how long."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bci.labels import REST_LABEL, freq_label, label_to_freq
from bci.sources.schedule import Schedule


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
    """

    labels: tuple[str, ...]
    trial_s: float = 4.0
    cue_s: float = 0.0
    rest_s: float = 0.0
    lead_s: float = 2.0

    @classmethod
    def balanced(cls, freqs: Sequence[float], n_per_class: int, *, include_rest: bool = True,
                 trial_s: float = 4.0, cue_s: float = 0.0, rest_s: float = 0.0,
                 lead_s: float = 2.0, seed: int | None = None) -> CueSequence:
        """``n_per_class`` trials of each target (and rest), in random order."""
        if isinstance(n_per_class, bool) or not isinstance(n_per_class, int) or n_per_class < 2:
            raise ValueError(f"'n_per_class' must be an int >= 2 (cross-validation needs two "
                             f"trials per class), got {n_per_class!r}.")
        for name, v in (("trial_s", trial_s), ("cue_s", cue_s), ("rest_s", rest_s),
                        ("lead_s", lead_s)):
            if not (np.isfinite(v) and v >= (0.5 if name == "trial_s" else 0.0)):
                raise ValueError(f"'{name}' must be a number of seconds "
                                 f"{'>= 0.5' if name == 'trial_s' else '>= 0'}, got {v!r}.")
        labels = [freq_label(f) for f in freqs] + ([REST_LABEL] if include_rest else [])
        if len(set(labels)) < 2:
            raise ValueError(f"A calibration needs at least two classes, got {labels}.")
        seq = np.repeat(labels, n_per_class)
        np.random.default_rng(seed).shuffle(seq)
        return cls(tuple(str(s) for s in seq), float(trial_s), float(cue_s), float(rest_s),
                   float(lead_s))

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
