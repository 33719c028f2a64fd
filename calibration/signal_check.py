"""Signal check before a live calibration: is every electrode usable?

Per channel, on a few seconds of EEG (volts): *flat* (no signal: standard deviation above
1 Hz below ``flat_uv``), *noisy* (standard deviation far above the other channels' median, or above
``noisy_uv`` when given), and *line noise* (power within ±1 Hz of the mains frequency divided by the power in
the 3-40 Hz EEG band above ``line_ratio``). The message names the electrodes to fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.signal import butter, sosfiltfilt, welch

from calibration.errors import CalibrationError


@dataclass(frozen=True)
class ChannelQuality:
    """Quality figures of one channel.

    Attributes
    ----------
    name : str
        Channel label.
    std_uv : float
        Standard deviation (µV) after removing the mean.
    line_ratio : float
        Mains power (±1 Hz) over 3-40 Hz power.
    problems : tuple of str
        ``"no data"``, ``"flat"``, ``"noisy"``, ``"line noise"`` (empty when fine).
    """

    name: str
    std_uv: float
    line_ratio: float
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class SignalCheck:
    """Result of :func:`check_signal`."""

    channels: tuple[ChannelQuality, ...]
    sfreq: float
    duration_s: float
    line_freq: float = 50.0
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        """True when no channel has a problem."""
        return not any(c.problems for c in self.channels)

    @property
    def bad_channels(self) -> tuple[str, ...]:
        """Names of the channels with a problem."""
        return tuple(c.name for c in self.channels if c.problems)

    def message(self) -> str:
        """One line per bad electrode saying what to fix, or a short all-clear."""
        if self.ok:
            return (f"Signal check passed: {len(self.channels)} channels, "
                    f"{self.duration_s:.1f} s at {self.sfreq:g} Hz.")
        out = []
        for c in self.channels:
            for p in c.problems:
                if p == "no data":
                    out.append(f"Electrode {c.name}: no valid data (NaN or infinite values) - "
                               "check the amplifier channel and its cable.")
                elif p == "flat":
                    out.append(f"Electrode {c.name}: flat signal (std {c.std_uv:.2f} µV) - "
                               "check that it touches the scalp and its cable is connected.")
                elif p == "noisy":
                    out.append(f"Electrode {c.name}: noisy signal (std {c.std_uv:.0f} µV) - "
                               "re-seat it, add gel, and ask the user to relax.")
                else:
                    out.append(f"Electrode {c.name}: strong {self.line_freq:g} Hz line noise "
                               f"(ratio {c.line_ratio:.1f}) - improve its contact and the "
                               "ground/reference electrodes, move away from mains cables.")
        return "\n".join(out)

    def table(self) -> str:
        """A per-channel table."""
        lines = [f"{'channel':<8} {'std uV':>8} {'line ratio':>10}  status"]
        for c in self.channels:
            lines.append(f"{c.name:<8} {c.std_uv:>8.2f} {c.line_ratio:>10.2f}  "
                         f"{', '.join(c.problems) or 'ok'}")
        return "\n".join(lines)

    def raise_if_bad(self) -> None:
        """Raise CalibrationError naming the electrodes to fix."""
        if not self.ok:
            raise CalibrationError(
                f"Signal check failed for {', '.join(self.bad_channels)}: "
                + " ".join(self.message().splitlines())
                + " Fix them and start again (or skip the check with --skip-signal-check)."
            )


def check_signal(data: np.ndarray, sfreq: float, ch_names: Sequence[str], *,
                 line_freq: float = 50.0, flat_uv: float = 0.5, noisy_uv: float | None = None,
                 noisy_factor: float = 5.0, line_ratio: float = 2.0) -> SignalCheck:
    """Assess each channel of a stretch of EEG.

    Parameters
    ----------
    data : ndarray, shape (n_channels, n_samples)
        EEG in volts (at least one second).
    sfreq : float
        Sampling rate in Hz.
    ch_names : sequence of str
        Channel labels.
    line_freq : float, default=50.0
        Mains frequency (50 or 60 Hz).
    flat_uv : float, default=0.5
        A channel with a smaller standard deviation (µV) is flat.
    noisy_uv : float | None, default=None
        A channel with a larger standard deviation (µV) is noisy (None: only the relative
        test below, which does not depend on the stream declaring its unit correctly).
    noisy_factor : float, default=5.0
        A channel whose standard deviation exceeds this many times the median of the
        channels is noisy too.
    line_ratio : float, default=2.0
        A channel whose mains power exceeds this multiple of its 3-40 Hz power has line noise.

    Returns
    -------
    check : SignalCheck
    """
    data = np.asarray(data, dtype=float)
    if data.ndim != 2 or data.shape[0] != len(ch_names):
        raise ValueError(f"'data' must have shape ({len(ch_names)}, n_samples), got {data.shape}.")
    if data.shape[1] < int(sfreq):
        raise ValueError(f"The signal check needs at least 1 s of data, got "
                         f"{data.shape[1] / sfreq:.2f} s.")
    finite = np.isfinite(data)
    x = np.where(finite, data, 0.0)
    x = x - x.mean(axis=1, keepdims=True)
    # amplitude above 1 Hz: electrode offsets and slow drifts are not noise here
    hp = sosfiltfilt(butter(2, 1.0, btype="highpass", fs=sfreq, output="sos"), x, axis=1)
    std_uv = hp.std(axis=1) * 1e6
    f, pxx = welch(x, fs=sfreq, nperseg=min(x.shape[1], int(sfreq)))
    band = (f >= 3) & (f <= 40)
    line = np.abs(f - line_freq) <= 1.0
    eeg_p = pxx[:, band].sum(axis=1)
    line_p = pxx[:, line].sum(axis=1) if line.any() else np.zeros(len(ch_names))
    ratio = line_p / np.maximum(eeg_p, 1e-30)
    med = float(np.median(std_uv))
    chans = []
    for i, name in enumerate(ch_names):
        probs = []
        if not finite[i].all():
            probs.append("no data")
        elif std_uv[i] < flat_uv:
            probs.append("flat")
        elif (noisy_uv is not None and std_uv[i] > noisy_uv) or (med > 0 and std_uv[i] > noisy_factor * med):
            probs.append("noisy")
        if not probs and line.any() and ratio[i] > line_ratio:
            probs.append("line noise")
        chans.append(ChannelQuality(str(name), float(std_uv[i]), float(ratio[i]), tuple(probs)))
    return SignalCheck(tuple(chans), float(sfreq), data.shape[1] / sfreq, float(line_freq))
