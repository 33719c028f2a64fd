"""The values handed from acquisition to the online loop: a window and its health."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class SignalHealth:
    """Health of the EEG stream over one window.

    Attributes
    ----------
    stalled : bool
        No sample arrived for longer than the stall timeout (the stream stopped or vanished).
    lost_samples : int
        Samples missing according to gaps in the timestamps within the window.
    nan_channels : tuple of str
        Channels with NaN or infinite values in the window.
    flat_channels : tuple of str
        Channels whose peak-to-peak amplitude is (near) zero.
    clipped_channels : tuple of str
        Channels stuck at their extreme values for a run of samples (amplifier saturation).
    seconds_since_last_sample : float
        Time on the local clock since the last sample was received.
    """

    stalled: bool = False
    lost_samples: int = 0
    nan_channels: tuple[str, ...] = ()
    flat_channels: tuple[str, ...] = ()
    clipped_channels: tuple[str, ...] = ()
    seconds_since_last_sample: float = 0.0

    @property
    def ok(self) -> bool:
        """True when the window can be decoded safely."""
        return not (
            self.stalled or self.nan_channels or self.flat_channels or self.clipped_channels
        )

    def problems(self) -> list[str]:
        """Human-readable list of what is wrong (empty when healthy)."""
        out = []
        if self.stalled:
            out.append(f"stream stalled ({self.seconds_since_last_sample:.2f} s without data)")
        if self.lost_samples:
            out.append(f"{self.lost_samples} samples lost")
        if self.nan_channels:
            out.append("NaN/inf on " + ",".join(self.nan_channels))
        if self.flat_channels:
            out.append("flat " + ",".join(self.flat_channels))
        if self.clipped_channels:
            out.append("clipped " + ",".join(self.clipped_channels))
        return out

    def to_dict(self) -> dict:
        """Plain-JSON form."""
        return {
            "ok": self.ok,
            "stalled": self.stalled,
            "lost_samples": int(self.lost_samples),
            "nan_channels": list(self.nan_channels),
            "flat_channels": list(self.flat_channels),
            "clipped_channels": list(self.clipped_channels),
            "seconds_since_last_sample": float(self.seconds_since_last_sample),
        }


@dataclass(frozen=True)
class EEGWindow:
    """The latest window of EEG.

    Attributes
    ----------
    data : ndarray, shape (n_channels, n_samples)
        Samples, in the stream's declared unit, channels in ``ch_names`` order.
    timestamps : ndarray, shape (n_samples,)
        LSL timestamps (local clock, after clock synchronisation), seconds.
    ch_names : tuple of str
        Channel labels.
    sfreq : float
        Nominal sampling rate in Hz.
    health : SignalHealth
        Health of the stream over this window.
    """

    data: np.ndarray
    timestamps: np.ndarray
    ch_names: tuple[str, ...]
    sfreq: float
    health: SignalHealth = field(default_factory=SignalHealth)

    @property
    def t_end(self) -> float:
        """Timestamp of the last sample (NaN when empty)."""
        return float(self.timestamps[-1]) if len(self.timestamps) else float("nan")
