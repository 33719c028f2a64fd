"""MOABB's FakeDataset with the SSVEP paradigm, plus a variant whose trials hold an SSVEP.

``FakeDataset`` draws white noise: a pipeline scores chance on it, which shows that MOABB
runs it but not that labels and frequencies line up. ``SSVEPFakeDataset`` adds, after each
event, a sinusoid at the event's frequency (random phase per trial), so a decoder that reads
MOABB's labels right scores far above chance. Both generate their data in memory (no
download, nothing read from the MNE data folder).

Used by the tests directly and, through ``--moabb moabb_fake:SSVEP_FAKE`` with this folder
on ``PYTHONPATH``, by ``ssvep-exo evaluate``.
"""

from __future__ import annotations

import numpy as np
from moabb.datasets.fake import FakeDataset

EVENTS = ("13", "17", "21", "rest")
CHANNELS = ("O1", "Oz", "O2", "POz")


class SSVEPFakeDataset(FakeDataset):
    """FakeDataset (paradigm ``"ssvep"``) whose target trials carry their frequency."""

    def __init__(self, amplitude: float = 1e-5, **kwargs) -> None:
        self.amplitude = amplitude
        super().__init__(**kwargs)

    def _generate_raw(self, n_events, duration):
        raw = super()._generate_raw(n_events, duration)
        events = self._generate_events(n_events, duration)
        code_to_name = {v: k for k, v in self.event_id.items()}
        n_win = int((self.interval[1] - self.interval[0]) * self.sfreq)
        t = np.arange(n_win) / self.sfreq
        data = raw._data
        eeg = [i for i, ch in enumerate(raw.ch_names) if ch != "stim"]
        rng = np.random.default_rng(int(events[0, 0]) + n_events)
        for onset, _, code in events:
            name = code_to_name[code]
            if name == "rest":
                continue
            f = float(name)
            stop = min(onset + n_win, data.shape[1])
            wave = self.amplitude * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
            data[np.ix_(eeg, np.arange(onset, stop))] += wave[: stop - onset]
        return raw


def fake_kwargs(n_subjects: int = 2) -> dict:
    """Small SSVEP FakeDataset settings: 2 sessions x 1 run of 48 trials at 256 Hz."""
    return dict(event_list=EVENTS, paradigm="ssvep", n_subjects=n_subjects, n_sessions=2,
                n_runs=1, channels=CHANNELS, sfreq=256, duration=150, n_events=48, seed=7)


#: For ``ssvep-exo evaluate --moabb moabb_fake:SSVEP_FAKE``.
SSVEP_FAKE = SSVEPFakeDataset(**fake_kwargs())
#: MOABB's own FakeDataset with the SSVEP paradigm (noise only).
NOISE_FAKE = FakeDataset(**fake_kwargs())
