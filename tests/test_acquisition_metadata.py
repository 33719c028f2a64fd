"""Hostile LSL metadata (property-based): only StreamError or a warning, never a crash."""

from __future__ import annotations

import warnings

import numpy as np
import pylsl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bci.acquisition import EEGStream
from bci.acquisition._metadata import channel_labels, make_eeg_info
from bci.errors import StreamError
from bci.units import volts_per_unit

_label = st.one_of(st.none(), st.just(""), st.sampled_from(["Oz", "O1", "O2", "POz", "oz"]),
                   st.text(min_size=1, max_size=6))
_units = st.one_of(st.none(), st.sampled_from(["microvolts", "uV", "µV", "V", "mV", "", "counts"]))


def _info(labels, units, srate, fmt):
    info = pylsl.StreamInfo("fuzz", "EEG", len(labels), srate, fmt, "fuzz")
    chans = info.desc().append_child("channels")
    for lab, unit in zip(labels, units):
        ch = chans.append_child("channel")
        if lab is not None:
            ch.append_child_value("label", lab)
        if unit is not None:
            ch.append_child_value("unit", unit)
    return info


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    labels=st.lists(_label, min_size=1, max_size=8),
    units=st.lists(_units, min_size=8, max_size=8),
    srate=st.sampled_from([0.0, 1e-3, 128.0, 256.0, 1e6]),
    fmt=st.sampled_from([pylsl.cf_float32, pylsl.cf_int16, pylsl.cf_string, pylsl.cf_double64]),
    channels=st.one_of(st.none(), st.lists(st.sampled_from(["Oz", "O1", "O2", "POz", "Cz"]),
                                           min_size=1, max_size=4, unique=True)),
)
def test_only_stream_errors_or_warnings(labels, units, srate, fmt, channels):
    info = _info(labels, units, srate, fmt)
    stream = EEGStream("fuzz", channels=channels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            stream._configure(info)
        except StreamError:
            return
    # accepted: a consistent selection
    n = len(labels)
    assert srate > 0 and fmt != pylsl.cf_string
    assert len(stream.ch_names) == len(stream._picks) == len(set(stream.ch_names))
    assert all(0 <= p < n for p in stream._picks)
    declared = channel_labels(info)
    for name, p in zip(stream.ch_names, stream._picks):
        assert declared[p] in (name, None)
    if channels is not None:
        assert stream.ch_names == tuple(channels)
    assert np.all(stream._scale > 0)


def test_labels_read_back_from_our_metadata():
    info = make_eeg_info("x", "x", ["Oz", "O1"], 256.0)
    assert channel_labels(info) == ["Oz", "O1"]
    assert volts_per_unit("µV") == 1e-6 and volts_per_unit("counts") is None


@pytest.mark.parametrize("labels", [["Oz", None, "O2"], ["Oz", "", "O2"]])
def test_partly_missing_labels_named_by_position(labels):
    s = EEGStream("x", unit="native")
    with pytest.warns(RuntimeWarning, match=r"channels without labels \(positions \[2\]\)"):
        s._configure(_info(labels, ["uV"] * 3, 256.0, pylsl.cf_float32))
    assert s.ch_names == ("Oz", "ch2", "O2")
