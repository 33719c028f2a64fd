"""LSL conventions of the field: stream types in any case, declared units (names and mne-lsl's
FIFF codes), the amplitude check where no unit is declared, and mne-lsl's annotation streams.

Real LSL outlets (pylsl and ``mne_lsl.player.PlayerLSL``) on this machine.
"""

from __future__ import annotations

import time

import mne
import numpy as np
import pylsl
import pytest

from bci.acquisition import EEGStream
from bci.acquisition._metadata import make_eeg_info
from bci.acquisition.markers import find_cue_stream
from bci.errors import StreamError
from bci.units import amplitude_uv, implausible_amplitude, volts_per_unit

LABELS = ["Oz", "O1", "O2", "POz"]


def _wait(pred, timeout=10.0):
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            return False
        time.sleep(0.01)
    return True


def _eeg_uv(n, seed=0):
    """(n, 4) EEG-like values in microvolts (std ~20)."""
    return (np.random.default_rng(seed).standard_normal((n, len(LABELS))) * 20).astype(
        np.float32)


def _push(outlet, x, sfreq=256.0):
    ts = pylsl.local_clock() - len(x) / sfreq + np.arange(len(x)) / sfreq
    outlet.push_chunk(np.ascontiguousarray(x), ts.tolist())


def _bare_outlet(name, stype="EEG"):
    """Channel labels but no unit at all."""
    info = pylsl.StreamInfo(name, stype, len(LABELS), 256.0, pylsl.cf_float32, name)
    chans = info.desc().append_child("channels")
    for lab in LABELS:
        chans.append_child("channel").append_child_value("label", lab)
    return pylsl.StreamOutlet(info)


# ---------------------------------------------------------------------- units
def test_declared_units_names_and_fiff_codes():
    for unit, volts in (("microvolts", 1e-6), ("uV", 1e-6), ("µV", 1e-6), ("μV", 1e-6),
                        (" V ", 1.0), ("volts", 1.0), ("mV", 1e-3), ("nanovolts", 1e-9),
                        ("0", 1.0), ("-6", 1e-6), ("-3", 1e-3), (0, 1.0), (-6, 1e-6)):
        assert volts_per_unit(unit) == pytest.approx(volts), unit
    for unit in (None, "", "none", "bananas", "-5", "7", "1.5", True):
        assert volts_per_unit(unit) is None, unit


def test_amplitude_plausibility():
    rng = np.random.default_rng(1)
    eeg_v = rng.standard_normal((8, 512)) * 20e-6
    eeg_v[0] = 0.0  # a flat channel is left out, not judged
    assert amplitude_uv(eeg_v) == pytest.approx(20, rel=0.1)
    assert implausible_amplitude(eeg_v) is None
    as_uv = eeg_v * 1e-6  # volts taken for microvolts: 10^6 too small
    why = implausible_amplitude(as_uv)
    assert why is not None and "if they are microvolts" in why and "look like volts" in why
    assert implausible_amplitude(np.zeros((4, 100))) is None  # flat: a health matter


@pytest.mark.parametrize("unit,scale", [("V", 1e-6), ("microvolts", 1.0), ("0", 1e-6),
                                        ("-6", 1.0), ("uV", 1.0)])
def test_stream_units_converted_to_volts(unique_name, unit, scale):
    out = pylsl.StreamOutlet(make_eeg_info(unique_name, unique_name, LABELS, 256.0, unit=unit))
    x = _eeg_uv(64)
    with EEGStream(unique_name) as s:
        assert s.assumed_unit_channels == ()
        _push(out, x * scale)
        assert _wait(lambda: s.n_samples_received >= 64)
        np.testing.assert_allclose(s.latest_window(64).data, x.T * 1e-6, rtol=1e-5)
        assert s.check_amplitude() is None  # every unit declared: nothing assumed
    del out


def test_absent_unit_and_implausible_amplitude_refused(unique_name):
    out = _bare_outlet(unique_name)
    with pytest.warns(RuntimeWarning, match="assuming microvolts"), \
            EEGStream(unique_name) as s:
        assert s.assumed_unit_channels == tuple(LABELS)
        _push(out, _eeg_uv(512) * 1e-6)  # the headset sends volts without saying so
        assert _wait(lambda: s.n_samples_received >= 512)
        with pytest.raises(StreamError, match=r"(?s)declares no voltage unit .* for channels "
                           r"\['Oz', 'O1', 'O2', 'POz'\] \(found \['none'\]\), so microvolts "
                           r"were assumed, but over 2.0 s their median standard deviation is "
                           r"[0-9.e-]+ µV if they are microvolts .*look like volts.*"
                           r"desc/channels/channel/unit"):
            s.check_amplitude(2.0)
    out2 = _bare_outlet(unique_name + "-uv")
    with pytest.warns(RuntimeWarning, match="assuming microvolts"), \
            EEGStream(unique_name + "-uv") as s:
        _push(out2, _eeg_uv(512))  # microvolts without saying so: the guess holds
        assert _wait(lambda: s.n_samples_received >= 512)
        assert s.check_amplitude(2.0) == pytest.approx(20, rel=0.1)
    del out, out2


@pytest.mark.parametrize("published", ["eeg", "EEG", "Eeg"])
def test_stream_type_matched_in_any_case(unique_name, published):
    info = make_eeg_info(unique_name, unique_name, LABELS, 256.0, stype=published)
    out = pylsl.StreamOutlet(info)
    for asked in ("EEG", "eeg"):
        with EEGStream(unique_name, stype=asked) as s:
            assert s.info.type() == published
    with pytest.raises(StreamError, match="No LSL stream matching"):
        EEGStream(unique_name, stype="ExG").connect(timeout=0.3)
    del out


# ---------------------------------------------------------------------- mne-lsl cues
@pytest.mark.parametrize("encoding", ["one-hot", "string"])
def test_mne_lsl_annotations_read_as_cues(unique_name, encoding):
    from mne_lsl.player import PlayerLSL

    sfreq = 256.0
    raw = mne.io.RawArray(np.random.default_rng(0).standard_normal((2, 512)) * 1e-5,
                          mne.create_info(["Oz", "O1"], sfreq, "eeg"), verbose="error")
    raw.set_annotations(mne.Annotations([0.25, 0.75, 1.25], [0.5, 0.5, 0.0],
                                        ["rest", "13.0Hz", "17.0Hz"]))
    player = PlayerLSL(raw, chunk_size=16, name=unique_name, source_id=unique_name,
                       annotations=True, annotations_encoding=encoding).start()
    try:
        markers = find_cue_stream(unique_name, timeout=5.0)
        seen: list[tuple[float, str]] = []
        # the player loops over its 2 s: a whole pass arrives whenever the inlet connected
        assert _wait(lambda: seen.extend(markers.pull()) or
                     "rest,13.0Hz,17.0Hz" in ",".join(lab for _, lab in seen), timeout=15)
        assert markers.info.name() == f"{unique_name}-annotations"
        i = [lab for _, lab in seen].index("rest", 0)
        (t_rest, _), (t_13, _), (t_17, _) = seen[i:i + 3]
        assert t_13 - t_rest == pytest.approx(0.5, abs=0.07)  # timestamps keep the onsets
        assert t_17 - t_13 == pytest.approx(0.5, abs=0.07)
        markers.disconnect()
    finally:
        player.stop()


def test_cue_stream_not_found_says_which_names(unique_name):
    with pytest.raises(StreamError, match=f"No cue stream '{unique_name}-markers' or "
                                          f"'{unique_name}-annotations'"):
        find_cue_stream(unique_name, timeout=0.3)
