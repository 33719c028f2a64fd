"""LSL stream metadata following the XDF meta-data conventions.

``desc/channels/channel/{label, unit, type}`` and ``desc/acquisition/manufacturer``, so any
LSL tool (LabRecorder, viewers) understands the streams this project publishes, and
:class:`~bci.acquisition.EEGStream` reads the same fields from any headset.
"""

from __future__ import annotations

from collections.abc import Sequence

import pylsl

MANUFACTURER = "ssvep-exo"


def make_eeg_info(
    name: str,
    source_id: str,
    ch_names: Sequence[str],
    sfreq: float,
    *,
    stype: str = "EEG",
    unit: str = "microvolts",
    ch_type: str = "EEG",
    manufacturer: str = MANUFACTURER,
) -> pylsl.StreamInfo:
    """Return the StreamInfo of a float32 EEG outlet with full channel metadata."""
    info = pylsl.StreamInfo(name, stype, len(ch_names), float(sfreq), pylsl.cf_float32,
                            source_id)
    desc = info.desc()
    chans = desc.append_child("channels")
    for label in ch_names:
        ch = chans.append_child("channel")
        ch.append_child_value("label", str(label))
        ch.append_child_value("unit", unit)
        ch.append_child_value("type", ch_type)
    acq = desc.append_child("acquisition")
    acq.append_child_value("manufacturer", manufacturer)
    return info


def make_marker_info(name: str, source_id: str) -> pylsl.StreamInfo:
    """Return the StreamInfo of a string marker outlet (irregular rate, one channel)."""
    info = pylsl.StreamInfo(name, "Markers", 1, pylsl.IRREGULAR_RATE, pylsl.cf_string,
                            source_id)
    info.desc().append_child("acquisition").append_child_value("manufacturer", MANUFACTURER)
    return info


def _channel_field(info: pylsl.StreamInfo, field: str) -> list[str | None]:
    """Per-channel values of ``field`` from desc/channels (None where absent or empty)."""
    out: list[str | None] = []
    ch = info.desc().child("channels").child("channel")
    while not ch.empty() and len(out) < info.channel_count():
        value = ch.child_value(field).strip()
        out.append(value or None)
        ch = ch.next_sibling("channel")
    out += [None] * (info.channel_count() - len(out))
    return out


def channel_labels(info: pylsl.StreamInfo) -> list[str | None]:
    """Channel labels from the metadata (None for a channel without one)."""
    return _channel_field(info, "label")


def channel_units(info: pylsl.StreamInfo) -> list[str | None]:
    """Channel units from the metadata (None for a channel without one)."""
    return _channel_field(info, "unit")


def describe(info: pylsl.StreamInfo) -> str:
    """One line naming a stream: name, type, source id, host, channels, rate."""
    rate = "irregular" if info.nominal_srate() == pylsl.IRREGULAR_RATE else \
        f"{info.nominal_srate():g} Hz"
    return (f"{info.name()!r} (type {info.type()!r}, source_id {info.source_id()!r}, "
            f"host {info.hostname()!r}, {info.channel_count()} ch, {rate})")
