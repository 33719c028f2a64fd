"""Property-based: damaged profile files only ever raise ProfileError (or load)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bci.decoders import make_decoder
from bci.online.policy import DecisionPolicy
from calibration.errors import ProfileError
from calibration.profile import SubjectProfile

_SETTINGS = settings(max_examples=60, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> tuple[bytes, bytes]:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((12, 4, 256))
    y = np.array(["13.0Hz", "17.0Hz", "rest"] * 4)
    dec = make_decoder("fbcca", sfreq=256.0, freqs=[13, 17]).fit(X, y)
    prof = SubjectProfile.from_decoder(
        dec, method="fbcca", ch_names=["Oz", "O1", "O2", "POz"], sfreq=256.0, window_s=1.0,
        policy=DecisionPolicy(["13.0Hz", "17.0Hz", "rest"]).to_dict())
    d = tmp_path_factory.mktemp("fuzz")
    prof.save(d)
    return (d / "profile.json").read_bytes(), (d / "profile.npz").read_bytes()


def _load_only_profile_error(d: Path) -> None:
    try:
        SubjectProfile.load(d)
    except ProfileError:
        pass


def _write(d: Path, js: bytes, npz: bytes) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "profile.json").write_bytes(js)
    (d / "profile.npz").write_bytes(npz)
    return d


@_SETTINGS
@given(which=st.sampled_from(["json", "npz"]), cut=st.floats(0, 1),
       flips=st.lists(st.tuples(st.floats(0, 1), st.integers(1, 255)), max_size=4),
       fix_checksum=st.booleans())
def test_corrupted_or_truncated_files(original, tmp_path_factory, which, cut, flips,
                                      fix_checksum):
    js, npz = original
    data = bytearray(js if which == "json" else npz)
    for pos, x in flips:
        if data:
            data[min(int(pos * len(data)), len(data) - 1)] ^= x
    data = bytes(data[: int(cut * len(data))]) if cut < 1 else bytes(data)
    if which == "json":
        js = data
    else:
        npz = data
        if fix_checksum:  # the JSON agrees with the damaged npz: the npz itself must be checked
            doc = json.loads(js)
            doc["npz_sha256"] = hashlib.sha256(npz).hexdigest()
            js = json.dumps(doc).encode()
    _load_only_profile_error(_write(tmp_path_factory.mktemp("c"), js, npz))


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6), c, max_size=4),
    max_leaves=12,
)


@_SETTINGS
@given(key=st.sampled_from(["ch_names", "sfreq", "freqs", "phases", "labels", "menus",
                            "method", "decoder_params", "decoder_meta", "window_s", "policy",
                            "cv_results", "arrays", "npz_sha256", "schema_version", "format",
                            "max_false_per_min", "extra", "created"]),
       value=_json_values, drop=st.booleans())
def test_wrong_values_in_json(original, tmp_path_factory, key, value, drop):
    js, npz = original
    doc = json.loads(js)
    if drop:
        doc.pop(key, None)
    else:
        doc[key] = value
    _load_only_profile_error(_write(tmp_path_factory.mktemp("v"), json.dumps(doc).encode(), npz))
