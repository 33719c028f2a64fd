"""A window source that steps through a recorded ``mne.io.Raw`` on a virtual clock.

It offers the same interface as :class:`bci.acquisition.EEGStream` (``latest_window``,
``sfreq``, ``ch_names``), so pseudo-online evaluation runs the exact online loop code.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bci._check import check_range
from bci.acquisition.window import EEGWindow, SignalHealth
from bci.errors import DatasetError


class RecordingSource:
    """Replay a recording as a window source, as fast as the caller advances its clock.

    Parameters
    ----------
    raw : mne.io.Raw
        The recording (data is loaded into memory once).
    picks : sequence of str | None, default=None
        Channels to hand out, by name (None: all EEG channels, else all channels).
    start_s : float, default=0.0
        Initial position of the virtual clock, seconds from the start of the recording.

    Attributes
    ----------
    time : float
        The virtual clock: seconds since the start of the recording. The latest window ends
        at the last sample at or before this time.
    """

    def __init__(self, raw, *, picks: Sequence[str] | None = None, start_s: float = 0.0) -> None:
        if picks is None:
            eeg = [raw.ch_names[i] for i in _eeg_picks(raw)]
            picks = eeg or list(raw.ch_names)
        missing = [p for p in picks if p not in raw.ch_names]
        if missing:
            raise DatasetError(
                f"Channel(s) {missing} are not in the recording, which has {raw.ch_names}: "
                "pick channels by their names in the file."
            )
        self.ch_names = tuple(picks)
        self.sfreq = float(raw.info["sfreq"])
        self._data = np.ascontiguousarray(raw.get_data(picks=list(picks)))
        self._times = np.arange(self._data.shape[1]) / self.sfreq
        self.time = check_range(start_s, "start_s", 0.0)
        self._health = SignalHealth()

    @property
    def duration(self) -> float:
        """Length of the recording, seconds."""
        return self._data.shape[1] / self.sfreq

    @property
    def finished(self) -> bool:
        """True once the virtual clock has passed the last sample."""
        return self.time >= self.duration

    def clock(self) -> float:
        """The virtual clock (what ``pylsl.local_clock`` is for a live stream)."""
        return self.time

    def advance(self, seconds: float) -> None:
        """Move the virtual clock forward by ``seconds``."""
        self.time += seconds

    def seek(self, time_s: float) -> None:
        """Set the virtual clock to ``time_s`` seconds from the start."""
        self.time = float(time_s)

    def latest_window(self, n_samples: int) -> EEGWindow | None:
        """Return the ``n_samples`` samples ending at the virtual clock (None if not enough yet)."""
        end = min(int(np.floor(self.time * self.sfreq + 1e-9)) + 1, self._data.shape[1])
        start = end - n_samples
        if start < 0:
            return None
        return EEGWindow(
            data=self._data[:, start:end].copy(),
            timestamps=self._times[start:end],
            ch_names=self.ch_names,
            sfreq=self.sfreq,
            health=self._health,
        )


def _eeg_picks(raw) -> list[int]:
    import mne

    return list(mne.pick_types(raw.info, eeg=True, exclude=[]))
