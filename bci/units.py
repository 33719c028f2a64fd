"""Voltage units of EEG channels, as streams and files declare them, and a plausibility check.

One table for every reader: LSL streams (``desc/channels/channel/unit`` of the XDF meta-data
conventions) and XDF recordings. A declared unit is a name (``microvolts``, ``uV``, ``µV``,
``V``, ``volts``, ``mV``, ...) or mne-lsl's numeric FIFF unit code: the power of ten of the
channel's SI unit (``"0"``: volts, ``"-6"``: microvolts), as
``mne_lsl.lsl.StreamInfo.set_channel_info`` writes it from an MNE ``Raw``.

Where no unit is declared (or one this table does not know), readers assume microvolts and
say so, and :func:`implausible_amplitude` checks the first seconds against that assumption:
EEG in volts read as microvolts is 10^6 too small, which it refuses instead of scaling
silently.
"""

from __future__ import annotations

import numpy as np

#: Declared unit (lower case) -> volts per unit.
VOLTS_PER_UNIT: dict[str, float] = {
    "v": 1.0, "volt": 1.0, "volts": 1.0,
    "mv": 1e-3, "millivolt": 1e-3, "millivolts": 1e-3,
    "uv": 1e-6, "µv": 1e-6, "μv": 1e-6, "microvolt": 1e-6, "microvolts": 1e-6,
    "nv": 1e-9, "nanovolt": 1e-9, "nanovolts": 1e-9,
}  # fmt: skip
#: The FIFF unit multipliers (``FIFF_UNITM_*``) that mne-lsl writes as a channel unit.
FIFF_UNIT_EXPONENTS = frozenset((-18, -15, -12, -9, -6, -3, -2, -1, 0, 1, 2, 3, 6, 9, 12, 15,
                                 18))
#: The unit assumed for a channel that declares none.
ASSUMED_UNIT = "microvolts"
#: Plausible EEG amplitude: the median channel's standard deviation (mean removed) over a
#: few seconds, in microvolts. Scalp EEG is about 5-100 µV; amplifiers without a high-pass
#: filter add drifts of several mV (the Kalunga recordings: 4,000-25,000 µV over 2 s). EEG
#: in volts read as microvolts gives 1e-5 to 2e-2, so this catches a factor of 10^6 surely;
#: millivolts (1e-3) and nanovolts (1e3) only at typical amplitudes.
PLAUSIBLE_STD_UV = (0.1, 50000.0)


def volts_per_unit(unit: str | int | None) -> float | None:
    """Return how many volts one declared unit is (None when absent or unknown).

    Parameters
    ----------
    unit : str | int | None
        A unit name (case-insensitive: ``"microvolts"``, ``"uV"``, ``"µV"``, ``"V"``,
        ``"mV"`` ...) or a FIFF unit multiplier code (``0`` / ``"0"``: volts, ``-6``:
        microvolts), as mne-lsl declares the channels of an MNE recording.

    Returns
    -------
    volts : float | None
    """
    if unit is None or isinstance(unit, bool):
        return None
    if isinstance(unit, (int, np.integer)):
        code = int(unit)
        return 10.0 ** code if code in FIFF_UNIT_EXPONENTS else None
    text = str(unit).strip().lower()
    if text in VOLTS_PER_UNIT:
        return VOLTS_PER_UNIT[text]
    try:
        code = int(text)
    except ValueError:
        return None
    return 10.0 ** code if code in FIFF_UNIT_EXPONENTS else None


def amplitude_uv(data_volts: np.ndarray) -> float | None:
    """Median over channels of the standard deviation (mean removed), in microvolts.

    Channels that are constant or not finite are left out (they are a signal-health matter);
    None when no channel is left.
    """
    x = np.asarray(data_volts, dtype=float)
    x = x.reshape(-1, x.shape[-1]) if x.ndim > 1 else x[None]
    good = np.all(np.isfinite(x), axis=1)
    std = np.std(x[good], axis=1) if good.any() else np.zeros(0)
    std = std[std > 0]
    return float(np.median(std)) * 1e6 if std.size else None


def implausible_amplitude(data_volts: np.ndarray, unit: str = ASSUMED_UNIT) -> str | None:
    """Why EEG read in ``unit`` cannot be right, or None when its amplitude is plausible.

    Parameters
    ----------
    data_volts : ndarray, shape (n_channels, n_samples)
        The first seconds, converted to volts with the assumed unit.
    unit : str
        The unit that was assumed (named in the message).

    Returns
    -------
    reason : str | None
        E.g. ``"their median standard deviation is 1.2e-05 µV if they are microvolts
        (EEG is 0.2-5000 µV); they look like volts"``.
    """
    amp = amplitude_uv(data_volts)
    if amp is None:
        return None
    low, high = PLAUSIBLE_STD_UV
    if low <= amp <= high:
        return None
    scale = volts_per_unit(unit) or 1e-6
    native = amp * 1e-6 / scale  # the amplitude in the stream's own numbers
    guesses = [name for name, v in (("volts", 1.0), ("millivolts", 1e-3),
                                    ("microvolts", 1e-6), ("nanovolts", 1e-9))
               if low <= native * v * 1e6 <= high and v != scale]
    guess = f"; they look like {' or '.join(guesses)}" if guesses else ""
    return (f"their median standard deviation is {amp:.3g} µV if they are {unit} "
            f"(EEG is {low:g}-{high:g} µV){guess}")
