"""Synthetic SSVEP EEG: an offline :class:`mne.io.Raw` and a live LSL source.

The model (see :mod:`bci.sources._model`): per channel a 1/f background with a common
component and an amplifier-noise floor, alpha near 10 Hz whose amplitude waxes and wanes
(and drops while a flicker is attended), mains interference with its harmonic, occasional
blinks (strong frontally, attenuated over the occipital channels), and, during target
segments, an SSVEP at the scheduled frequency and its harmonics, starting after a latency of
0.1-0.2 s with a 0.3 s ramp, strongest at Oz/O1/O2, with a random phase per trial unless
``phase_locked``. Values are in volts with microvolt-scale amplitudes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import mne
import numpy as np

from bci._check import check_range, check_type, ensure_int
from bci.sources._base import CyclicMarkers, PacedSource
from bci.sources._model import SyntheticSignal
from bci.sources.schedule import Schedule

DEFAULT_CH_NAMES = ("Oz", "O1", "O2", "PO3", "POz", "PO7", "PO8", "PO4")
#: Default SSVEP fundamental amplitude at Oz over the background's standard deviation.
DEFAULT_SNR = 0.25

__all__ = [
    "DEFAULT_CH_NAMES", "DEFAULT_SNR", "Schedule", "SyntheticEEG", "make_signal", "synthesize_raw",
]


def as_schedule(schedule: Schedule | str | Iterable[object]) -> Schedule:
    """Return ``schedule`` as a :class:`Schedule` (accepts the string and list forms)."""
    return Schedule.from_config(schedule)


def make_signal(
    schedule: Schedule | str | Iterable[object],
    *,
    sfreq: float = 256.0,
    ch_names: Sequence[str] = DEFAULT_CH_NAMES,
    snr: float = DEFAULT_SNR,
    phase_locked: bool = False,
    seed: int = 0,
    loop: bool = False,
    background_uv: float = 10.0,
    alpha_uv: float = 8.0,
    mains_uv: float = 4.0,
    mains_freq: float = 50.0,
    blink_rate: float = 0.08,
    blink_uv: float = 120.0,
    latency_s: tuple[float, float] = (0.1, 0.2),
    ramp_s: float = 0.3,
    harmonics: Sequence[float] = (1.0, 0.5, 0.25),
) -> SyntheticSignal:
    """Validate the parameters and return the stateful generator (see :func:`synthesize_raw`)."""
    schedule = as_schedule(schedule)
    sfreq = check_range(sfreq, "sfreq", 0, None, low_inclusive=False)
    check_type(ch_names, (list, tuple), "ch_names")
    if not ch_names or len(set(ch_names)) != len(ch_names):
        raise ValueError(f"'ch_names' must be non-empty and unique, got {ch_names!r}.")
    check_range(snr, "snr", 0, None)
    check_type(phase_locked, bool, "phase_locked")
    seed = ensure_int(seed, "seed")
    for name, val in (("background_uv", background_uv), ("alpha_uv", alpha_uv),
                      ("mains_uv", mains_uv), ("blink_rate", blink_rate),
                      ("blink_uv", blink_uv)):
        check_range(val, name, 0, None)
    if not 0 <= latency_s[0] <= latency_s[1]:
        raise ValueError(f"'latency_s' must be (low, high) with 0 <= low <= high, got {latency_s!r}.")
    check_range(ramp_s, "ramp_s", 0, None, low_inclusive=False)
    top = max(schedule.freqs, default=0.0)
    if top >= sfreq / 2:
        raise ValueError(
            f"The schedule's {top:g} Hz target is at or above the Nyquist frequency of "
            f"sfreq={sfreq:g} Hz: raise sfreq or lower the target."
        )
    return SyntheticSignal(
        schedule, sfreq=sfreq, ch_names=ch_names, snr=snr, phase_locked=phase_locked,
        seed=seed, loop=loop, background_uv=background_uv, alpha_uv=alpha_uv,
        mains_uv=mains_uv, mains_freq=mains_freq, blink_rate=blink_rate, blink_uv=blink_uv,
        latency_s=tuple(latency_s), ramp_s=ramp_s, harmonics=harmonics,
    )


def _set_montage(raw: mne.io.BaseRaw) -> None:
    """Attach 10-05 positions (for plots) where MNE knows the names; never fails."""
    names = mne.channels.get_builtin_montages()
    name = next((n for n in ("colin27_1005", "standard_1005") if n in names), None)
    if name is None:
        return
    montage = mne.channels.make_standard_montage(name)
    raw.set_montage(montage, on_missing="ignore", verbose=False)


def synthesize_raw(
    schedule: Schedule | str | Iterable[object],
    *,
    sfreq: float = 256.0,
    ch_names: Sequence[str] = DEFAULT_CH_NAMES,
    snr: float = DEFAULT_SNR,
    phase_locked: bool = False,
    seed: int = 0,
    **model: object,
) -> mne.io.RawArray:
    """Synthesize an annotated recording of a simulated SSVEP user.

    Parameters
    ----------
    schedule : Schedule | str | list
        What the user attends, e.g. ``"rest:4,13:5,17:5"`` (see :class:`Schedule`).
    sfreq : float, default=256.0
        Sampling rate in Hz.
    ch_names : sequence of str, default=("Oz", "O1", "O2", "PO3", "POz", "PO7", "PO8", "PO4")
        10-20 channel names; the SSVEP and blink gains follow them.
    snr : float, default=DEFAULT_SNR
        Amplitude of the SSVEP fundamental at Oz divided by the standard deviation of the 1/f
        background (``background_uv``). With the default, the project's FBCCA on windows
        starting 1 s after the cue scores 95-98 % at 2 s and 58-75 % at 1 s (3 classes).
    phase_locked : bool, default=False
        When True every trial of a frequency has the same latency and phase relative to the
        segment start (screen stimuli with marked onsets); otherwise the phase is random per
        trial (free-running LEDs).
    seed : int, default=0
        Seed; the same seed gives the same samples.
    **model
        Further model parameters: ``background_uv`` (10), ``alpha_uv`` (8), ``mains_uv`` (4),
        ``mains_freq`` (50), ``blink_rate`` per second (0.08), ``blink_uv`` frontal (120),
        ``latency_s`` ((0.1, 0.2)), ``ramp_s`` (0.3), ``harmonics`` ((1, 0.5, 0.25)).

    Returns
    -------
    raw : mne.io.RawArray
        EEG in volts with one annotation per segment, named by its label (``"13.0Hz"``,
        ``"rest"``; see :mod:`bci.labels`).
    """
    sig = make_signal(schedule, sfreq=sfreq, ch_names=ch_names, snr=snr,
                      phase_locked=phase_locked, seed=seed, loop=False, **model)
    data = sig.generate(sig.n_cycle)
    info = mne.create_info(list(sig.ch_names), sig.sfreq, ch_types="eeg")
    raw = mne.io.RawArray(data, info, verbose=False)
    _set_montage(raw)
    sched = sig.schedule
    raw.set_annotations(mne.Annotations(
        onset=sched.onset_samples(sig.sfreq) / sig.sfreq,
        duration=np.diff(np.append(sched.onset_samples(sig.sfreq), sig.n_cycle)) / sig.sfreq,
        description=list(sched.labels),
    ))
    return raw


class SyntheticEEG(PacedSource):
    """Synthetic SSVEP EEG published live over LSL, with the schedule as markers.

    Publishes an EEG outlet (type ``"EEG"``, float32 microvolts, full XDF channel metadata)
    and a marker outlet (type ``"Markers"``, name ``f"{name}-markers"``) carrying each
    segment's label at its first sample's timestamp.

    Parameters
    ----------
    schedule : Schedule | str | list
        What the simulated user attends (see :class:`Schedule`).
    name : str, default="ssvep-synthetic"
        EEG stream name.
    source_id : str | None
        Source id (default: ``name``); the marker stream's is ``f"{source_id}-markers"``.
    sfreq : float, default=256.0
        Sampling rate.
    ch_names : sequence of str
        Channel labels (default: Kalunga's 8 occipital channels).
    speed : float, default=1.0
        Speed factor (``> 1``: faster than real time; timestamps are compressed alike).
    chunk_s : float, default=1/16
        Seconds of signal per chunk.
    loop : bool, default=False
        Start the schedule again at its end (otherwise :attr:`finished` is set).
    seed : int, default=0
        Seed of the signal model.
    snr, phase_locked, **model
        See :func:`synthesize_raw`.

    Attributes
    ----------
    finished : threading.Event
        Set when a non-looping schedule has been published.
    n_pushed, n_markers : int
        Samples and markers published.

    Examples
    --------
    >>> with SyntheticEEG("rest:2,13:4", name="sim", speed=4) as src:  # doctest: +SKIP
    ...     src.wait()
    """

    def __init__(
        self,
        schedule: Schedule | str | Iterable[object],
        *,
        name: str = "ssvep-synthetic",
        source_id: str | None = None,
        sfreq: float = 256.0,
        ch_names: Sequence[str] = DEFAULT_CH_NAMES,
        speed: float = 1.0,
        chunk_s: float = 1 / 16,
        loop: bool = False,
        seed: int = 0,
        snr: float = DEFAULT_SNR,
        phase_locked: bool = False,
        **model: object,
    ) -> None:
        self.signal = make_signal(schedule, sfreq=sfreq, ch_names=ch_names, snr=snr,
                                  phase_locked=phase_locked, seed=seed, loop=loop, **model)
        self.schedule = self.signal.schedule
        super().__init__(name=name, source_id=source_id, sfreq=self.signal.sfreq,
                         ch_names=self.signal.ch_names, speed=speed, chunk_s=chunk_s,
                         loop=loop, manufacturer="ssvep-exo synthetic EEG")
        self._cues = CyclicMarkers(self.signal.seg_start, self.schedule.labels,
                                   self.signal.n_cycle)

    def _read(self, n: int) -> tuple[np.ndarray, list[tuple[int, str]]]:
        start = self.signal.position
        data = self.signal.generate(n)
        return data, self._cues.between(start, start + data.shape[1])

    def label_at(self, sample: int) -> str:
        """Label scheduled at a sample index (counted from the first published sample)."""
        j = self.signal.segment_index(sample) % len(self.schedule)
        return self.schedule.labels[j]
