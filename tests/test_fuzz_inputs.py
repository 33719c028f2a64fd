"""Hostile input, property-based: configuration files (TOML text) and recorded files
(truncated or corrupted FIF and XDF bytes).

Only the documented exceptions come out (``ConfigError``, ``DatasetError``), never another
exception, never a hang (each example is bounded by the test timeout), and an accepted input
is consistent. Parser, profile and LSL-metadata fuzzing live with their modules
(test_devices_protocol.py, test_profile_fuzz.py, test_acquisition_metadata.py).
"""

from __future__ import annotations

import logging
import math
import struct
import tempfile
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import mne
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bci.app import _parts
from bci.app.config import SCHEMA, SessionConfig, load_config
from bci.app.menus import legal
from bci.datasets import load_recording
from bci.errors import BCIError, ConfigError, DatasetError
from bci.recording import SessionRecorder

WORK = Path(tempfile.mkdtemp(prefix="ssvep-fuzz-"))
FAST = settings(max_examples=400, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# ---------------------------------------------------------------------- TOML configuration

_KEYS = {sec: list(keys) for sec, keys in SCHEMA.items()}
_bare = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=12)
_scalar = st.one_of(
    st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
    st.text(max_size=20), st.sampled_from(["13.0Hz", "walk", "stop", "rest", "synthetic",
                                           "lsl", "bridge", "fbcca", "EEG", ""]))
_value = st.recursive(_scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(_bare, inner, max_size=3)), max_leaves=8)


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) \
            else repr(v)
    if isinstance(v, str):
        return '"' + v.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return "{" + ", ".join(f'"{k}" = {_toml_value(x)}' for k, x in v.items()) + "}"


@st.composite
def _config_text(draw) -> str:
    lines = []
    sections = draw(st.lists(st.one_of(st.sampled_from(list(SCHEMA)), _bare), max_size=5,
                             unique=True))
    for sec in sections:
        lines.append(f"[{sec}]")
        known = _KEYS.get(sec) or ["13.0Hz", "17.0Hz", "rest", "99Hz"]
        keys = draw(st.lists(st.one_of(st.sampled_from(known), _bare), max_size=5, unique=True))
        for key in keys:
            lines.append(f'"{key}" = {_toml_value(draw(_value))}')
    return "\n".join(lines) + "\n"


def _load_text(text: str | bytes):
    path = WORK / "fuzz.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
    return load_config(path)


@FAST
@given(text=st.one_of(st.text(max_size=300), st.binary(max_size=300)))
def test_config_arbitrary_text_only_config_errors(text):
    try:
        cfg = _load_text(text)
    except ConfigError as exc:
        assert str(exc) and "\n" not in str(exc).strip() or "TOML" in str(exc)
        return
    assert cfg.source.kind in ("synthetic", "lsl", "replay")


@FAST
@given(text=_config_text())
def test_config_structured_only_config_errors_and_accepted_is_consistent(text):
    try:
        cfg = _load_text(text)
    except ConfigError as exc:
        assert "fuzz.toml" in str(exc)  # names the file
        return
    again = SessionConfig(cfg.to_dict())  # what was accepted validates again
    assert again.to_dict() == cfg.to_dict()
    for posture, menu in cfg.menus.to_dict().items():
        assert set(menu) <= set(cfg.targets)
        assert all(legal(posture, c) for c in menu.values())
    for sec, keys in SCHEMA.items():
        if sec != "menu":
            assert set(cfg.to_dict()[sec]) == set(keys)


_DECODER_PARAMS = st.dictionaries(
    st.sampled_from(["n_harmonics", "n_bands", "a", "b", "bogus", "sfreq", "freqs"]),
    st.one_of(st.integers(-3, 12), st.floats(-2, 5), st.text(max_size=4), st.none()),
    max_size=3).map(lambda d: {k: v for k, v in d.items() if v is not None})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(params=_DECODER_PARAMS,
       method=st.sampled_from(["fbcca", "cca", "trca", "nope", "FBCCA"]),
       freqs=st.lists(st.sampled_from([6.0, 13.0, 17.0, 21.0, 40.0, 127.0]), min_size=1,
                      max_size=4, unique=True),
       threshold=st.floats(0.01, 100.0), window_s=st.floats(0.1, 10.0))
def test_accepted_config_builds_a_decoder_or_says_why(params, method, freqs, threshold,
                                                      window_s):
    """A configuration the loader accepts must not fail later with a traceback: building
    its decoder and policy raises only a BCIError (one line for the user)."""
    try:
        cfg = SessionConfig({"decoder": {"method": method, "params": params, "freqs": freqs,
                                         "window_s": window_s},
                             "policy": {"threshold": threshold}})
    except ConfigError:
        return
    stream = SimpleNamespace(sfreq=256.0, ch_names=("Oz", "O1", "O2", "POz"))
    try:
        setup = _parts.build_decoder(cfg)
        _parts.prepare_decoder(setup, stream)
    except BCIError as exc:
        assert "\n" not in str(exc)
        return
    assert setup.window_s == window_s and not setup.needs_fit
    assert hasattr(setup.decoder, "classes_")


def test_decoder_params_errors_are_one_line_config_errors():
    cfg = SessionConfig({"decoder": {"method": "trca", "params": {"n_harmonics": 2}}})
    with pytest.raises(ConfigError, match=r"decoder.params \{'n_harmonics': 2\} are not "
                                          r"accepted by decoder.method 'trca'"):
        _parts.build_decoder(cfg)
    cfg = SessionConfig({"decoder": {"params": {"sfreq": 100}}})
    with pytest.raises(ConfigError, match=r"are not accepted by decoder.method 'fbcca'"):
        _parts.build_decoder(cfg)
    setup = _parts.build_decoder(SessionConfig({"decoder": {"params": {"n_harmonics": 0}}}))
    with pytest.raises(ConfigError, match=r"do not work on this stream \(2 channels at 256 Hz"):
        _parts.prepare_decoder(setup, SimpleNamespace(sfreq=256.0, ch_names=("Oz", "O1")))


# ---------------------------------------------------------------------- recorded files


def _xdf_bytes() -> bytes:
    path = WORK / "base.xdf"
    rec = SessionRecorder(path, ch_names=["Oz", "O1"], sfreq=256.0, flush_s=0.0).start()
    rec.push_marker(50.25, "13.0Hz")
    for k in range(4):
        rec.push_eeg(np.full((64, 2), k + 1.0) * 1e-6, 50.0 + (k * 64 + np.arange(64)) / 256)
    rec.push_marker(50.75, "rest")
    rec.push_decision({"timestamp": 50.5, "outcome": "13.0Hz"})
    rec.close()
    return path.read_bytes()


def _fif_bytes() -> bytes:
    info = mne.create_info(["Oz", "O1"], 256.0, "eeg")
    raw = mne.io.RawArray(np.random.default_rng(0).standard_normal((2, 512)) * 1e-5, info,
                          verbose="error")
    raw.set_annotations(mne.Annotations([0.2, 1.0], [0.8, 0.9], ["13.0Hz", "rest"]))
    path = WORK / "base_raw.fif"
    raw.save(path, overwrite=True, verbose="error")
    return path.read_bytes()


BLOBS = {"xdf": _xdf_bytes(), "fif": _fif_bytes()}


def _xdf_with_marker_time(t: float) -> bytes:
    """The base XDF with the first cue's time stamp (50.25) replaced by ``t``."""
    blob = bytearray(BLOBS["xdf"])
    at = blob.find(struct.pack("<d", 50.25))
    assert at > 0
    blob[at:at + 8] = struct.pack("<d", t)
    return bytes(blob)


#: Damaged files the fuzzing found, run on every test run before the random examples:
#: a cue time stamp of 1e300 made MNE's annotations raise OverflowError; inf/NaN a ValueError.
XDF_FOUND = [_xdf_with_marker_time(t) for t in (1e300, -1e300, math.inf, math.nan)]


@st.composite
def _damaged(draw, kind: str) -> bytes:
    blob = bytearray(BLOBS[kind])
    cut = draw(st.one_of(st.none(), st.integers(0, len(blob))))
    if cut is not None:
        del blob[cut:]
    for pos, val in draw(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)),
                                  max_size=6)):
        if blob:
            blob[pos % len(blob)] = val
    if draw(st.booleans()):
        at = draw(st.integers(0, len(blob)))
        blob[at:at] = draw(st.binary(max_size=40))
    return bytes(blob)


def _load_damaged(kind: str, data: bytes):
    path = WORK / ("damaged.xdf" if kind == "xdf" else "damaged_raw.fif")
    path.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_recording(path)


@pytest.mark.parametrize("kind", ["xdf", "fif"])
def test_undamaged_base_files_load(kind):
    raw = _load_damaged(kind, BLOBS[kind])
    assert raw.ch_names == ["Oz", "O1"] and "13.0Hz" in raw.annotations.description


@pytest.mark.parametrize("kind", ["xdf", "fif"])
def test_damaged_recordings_raise_only_dataset_errors(kind):
    @settings(max_examples=600 if kind == "xdf" else 400, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(data=_damaged(kind))
    @_examples(XDF_FOUND if kind == "xdf" else [])
    def check(data):
        try:
            raw = _load_damaged(kind, data)
        except DatasetError as exc:
            # names the file as damaged, or the damaged value (a header byte flipped into the
            # sampling rate reads as a rate too low for the stimulus frequencies)
            assert "damaged" in str(exc) or str(exc).startswith("Sampling rate "), exc
            return
        # loaded: a consistent Raw (a flipped sample byte may read as inf: the online
        # health check flags it when such a file is replayed)
        assert raw.info["sfreq"] > 0 and raw.n_times > 0 and len(raw.ch_names) == 2
        assert len(raw.annotations) >= 1

    check()


def _examples(blobs: list[bytes]):
    def add(test):
        for blob in blobs:
            test = example(data=blob)(test)
        return test

    return add


def test_xdf_cue_with_a_damaged_time_stamp_is_refused_or_ignored_with_a_warning(caplog):
    for blob in XDF_FOUND[2:]:  # no time at all: the file is damaged
        with pytest.raises(DatasetError, match=r"damaged.xdf: the file looks truncated or "
                                               r"corrupted \(marker '13.0Hz' has no valid"):
            _load_damaged("xdf", blob)
    bci_logger = logging.getLogger("bci")
    bci_logger.addHandler(caplog.handler)  # the package logger does not propagate
    try:
        for blob in XDF_FOUND[:2]:  # a time far outside the EEG: that cue is left out
            caplog.clear()
            with caplog.at_level(logging.WARNING, logger="bci"):
                raw = _load_damaged("xdf", blob)
            assert list(raw.annotations.description) == ["rest"]  # the other cue is kept
            assert "1 marker(s) outside the EEG recording" in caplog.text
    finally:
        bci_logger.removeHandler(caplog.handler)


def test_fif_whose_tag_chain_loops_is_refused_at_once():
    """A damaged `next` pointer made MNE read the same tags forever (GBs, then MemoryError)."""
    blob = bytearray(BLOBS["fif"])
    # third tag (after the 36-byte file id and the 20-byte dir pointer) points back to the 2nd
    kind, typ, size, _ = struct.unpack(">iiii", blob[56:72])
    blob[56:72] = struct.pack(">iiii", kind, typ, size, 36)
    t0 = time.monotonic()
    with pytest.raises(DatasetError, match=r"damaged_raw.fif: the file looks truncated or "
                                           r"corrupted \(its tag chain loops back to byte 36\)"):
        _load_damaged("fif", bytes(blob))
    assert time.monotonic() - t0 < 10.0  # at once (it used to read GBs, then MemoryError)
    blob[56:72] = struct.pack(">iiii", kind, typ, -5, 0)
    with pytest.raises(DatasetError, match=r"\(bad tag header at byte 56\)"):
        _load_damaged("fif", bytes(blob))
