"""Property-based: a damaged profile is refused with ProfileError, never loaded changed.

The profile carries two SHA-256 digests (``npz_sha256`` of the arrays, ``json_sha256`` of
the JSON's own content), so corruption of either file must be detected: loading either
raises :class:`ProfileError` or gives back exactly the profile that was saved (a change that
only touches the JSON's layout, such as one whitespace byte for another). When the damage is
re-signed (a consistent forgery, or a deliberate edit), the validation behind the digests
must still raise only ProfileError.
"""

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
from calibration.profile import SubjectProfile, json_digest

_SETTINGS = settings(max_examples=60, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> tuple[bytes, bytes, SubjectProfile]:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((12, 4, 256))
    y = np.array(["13.0Hz", "17.0Hz", "rest"] * 4)
    dec = make_decoder("fbcca", sfreq=256.0, freqs=[13, 17]).fit(X, y)
    prof = SubjectProfile.from_decoder(
        dec, method="fbcca", ch_names=["Oz", "O1", "O2", "POz"], sfreq=256.0, window_s=1.0,
        policy=DecisionPolicy(["13.0Hz", "17.0Hz", "rest"]).to_dict())
    d = tmp_path_factory.mktemp("fuzz")
    prof.save(d)
    return (d / "profile.json").read_bytes(), (d / "profile.npz").read_bytes(), \
        SubjectProfile.load(d)


def _load(d: Path) -> SubjectProfile | None:
    """The loaded profile, or None when it was refused (any other exception fails)."""
    try:
        return SubjectProfile.load(d)
    except ProfileError:
        return None


def _same(a: SubjectProfile, b: SubjectProfile) -> bool:
    return a._json_fields() == b._json_fields() and a.decoder_arrays.keys() == \
        b.decoder_arrays.keys() and all(np.array_equal(a.decoder_arrays[k], b.decoder_arrays[k])
                                        for k in a.decoder_arrays)


def _write(d: Path, js: bytes, npz: bytes) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "profile.json").write_bytes(js)
    (d / "profile.npz").write_bytes(npz)
    return d


def _damage(data: bytes, cut: float, flips: list[tuple[float, int]]) -> bytes:
    out = bytearray(data)
    for pos, x in flips:
        if out:
            out[min(int(pos * len(out)), len(out) - 1)] ^= x
    return bytes(out[: int(cut * len(out))]) if cut < 1 else bytes(out)


@_SETTINGS
@given(which=st.sampled_from(["json", "npz"]), cut=st.floats(0, 1),
       flips=st.lists(st.tuples(st.floats(0, 1), st.integers(1, 255)), max_size=4))
def test_corruption_is_detected(original, tmp_path_factory, which, cut, flips):
    js, npz, prof = original
    if which == "json":
        js = _damage(js, cut, flips)
    else:
        npz = _damage(npz, cut, flips)
    loaded = _load(_write(tmp_path_factory.mktemp("c"), js, npz))
    assert loaded is None or _same(loaded, prof)
    if which == "npz" and npz != original[1]:
        assert loaded is None  # npz_sha256 covers every byte


@_SETTINGS
@given(cut=st.floats(0, 1),
       flips=st.lists(st.tuples(st.floats(0, 1), st.integers(1, 255)), min_size=1,
                      max_size=4))
def test_resigned_damaged_npz_is_refused_or_loads(original, tmp_path_factory, cut, flips):
    """Both digests agree with a damaged npz: the npz itself must be checked (zip, no
    pickle, manifest); it may only load when its arrays still make a valid profile."""
    js, npz, _ = original
    npz = _damage(npz, cut, flips)
    doc = json.loads(js)
    doc["npz_sha256"] = hashlib.sha256(npz).hexdigest()
    doc["json_sha256"] = json_digest(doc)
    loaded = _load(_write(tmp_path_factory.mktemp("f"), json.dumps(doc).encode(), npz))
    if loaded is not None:
        loaded.build_decoder()


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6), c, max_size=4),
    max_leaves=12,
)
_KEYS = ["ch_names", "sfreq", "freqs", "phases", "labels", "menus", "method",
         "decoder_params", "decoder_meta", "window_s", "policy", "cv_results", "arrays",
         "npz_sha256", "json_sha256", "schema_version", "format", "max_false_per_min",
         "extra", "created"]


@_SETTINGS
@given(key=st.sampled_from(_KEYS), value=_json_values, drop=st.booleans(), sign=st.booleans())
def test_wrong_values_in_json(original, tmp_path_factory, key, value, drop, sign):
    """Unsigned, any changed value is refused; re-signed, validation refuses what it must
    and a profile that loads carries the value written."""
    js, npz, prof = original
    doc = json.loads(js)
    if drop:
        doc.pop(key, None)
    else:
        doc[key] = value
    if sign:
        try:
            doc["json_sha256"] = json_digest(doc)
        except ValueError:  # an infinite number is not JSON: nothing can sign it, the loader
            sign = False    # refuses it at parsing (checked as an unsigned edit below)
    changed = doc != json.loads(js)
    loaded = _load(_write(tmp_path_factory.mktemp("v"), json.dumps(doc).encode(), npz))
    if not sign:
        assert loaded is None or (not changed and _same(loaded, prof))
    elif loaded is not None and not drop and key in loaded._json_fields():
        assert loaded._json_fields()[key] == value
