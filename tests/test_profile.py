"""Subject profiles: round trip, validation of every kind of damage, stream compatibility."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from bci.datasets import epoch
from bci.decoders import make_decoder
from bci.online.policy import DecisionPolicy
from bci.sources.synthetic import synthesize_raw
from calibration.errors import ProfileError
from calibration.profile import SubjectProfile, json_digest

SCHEDULE = ",".join(f"{lab}:4" for lab in ["rest", "13", "17", "21"] * 3)


@pytest.fixture(scope="module")
def fitted():
    raw = synthesize_raw(SCHEDULE, seed=3)
    X, y, _ = epoch(raw, tmin=1.0, window_s=1.0)
    dec = make_decoder("fbcca", sfreq=raw.info["sfreq"], freqs=[13, 17, 21]).fit(X, y)
    return raw, X, dec


@pytest.fixture
def profile(fitted):
    raw, _, dec = fitted
    pol = DecisionPolicy(["13.0Hz", "17.0Hz", "21.0Hz", "rest"], threshold=0.7)
    return SubjectProfile.from_decoder(
        dec, method="fbcca", ch_names=raw.ch_names, sfreq=raw.info["sfreq"], window_s=1.0,
        menus={"SITTING": {"13.0Hz": "stand"}, "WALKING": {"17.0Hz": "stop"}},
        policy=pol.to_dict(),
        cv_results=[{"method": "fbcca", "window_s": 1.0, "accuracy": 0.9}],
        source_recordings=["synthetic"], max_false_per_min=1.0,
    )


@pytest.fixture
def saved(profile, tmp_path) -> Path:
    profile.save(tmp_path / "prof")
    return tmp_path / "prof"


def _rewrite_npz(d: Path, arrays: dict, *, fix_checksum: bool = True, raw: bytes | None = None):
    if raw is None:
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        raw = buf.getvalue()
    (d / "profile.npz").write_bytes(raw)
    if fix_checksum:
        doc = json.loads((d / "profile.json").read_text())
        doc["npz_sha256"] = hashlib.sha256(raw).hexdigest()
        doc["json_sha256"] = json_digest(doc)
        (d / "profile.json").write_text(json.dumps(doc))


def _edit_json(d: Path, fn, *, sign: bool = True):
    """Change the JSON; ``sign`` re-signs it (a deliberate edit, so validation is reached)."""
    doc = json.loads((d / "profile.json").read_text())
    fn(doc)
    if sign:
        doc["json_sha256"] = json_digest(doc)
    (d / "profile.json").write_text(json.dumps(doc))


def test_round_trip_decodes_identically(profile, saved, fitted):
    _, X, dec = fitted
    for p in (saved, saved / "profile.json"):
        loaded = SubjectProfile.load(p)
        assert loaded.ch_names == profile.ch_names and loaded.sfreq == 256.0
        assert loaded.freqs == [13.0, 17.0, 21.0] and loaded.phases == [0.0, 0.0, 0.0]
        assert loaded.menus == {"SITTING": {"13.0Hz": "stand"}, "WALKING": {"17.0Hz": "stop"}}
        assert loaded.labels == ["13.0Hz", "17.0Hz", "21.0Hz", "rest"]
        np.testing.assert_allclose(loaded.build_decoder().decision_function(X),
                                   dec.decision_function(X))
        pol = loaded.build_policy()
        assert isinstance(pol, DecisionPolicy) and pol.threshold == pytest.approx(0.7)
    doc = json.loads((saved / "profile.json").read_text())
    assert doc["schema_version"] == 2 and len(doc["npz_sha256"]) == 64
    assert doc["json_sha256"] == json_digest(doc)
    assert doc["software_version"] and doc["created"]
    text = loaded.summary()
    assert "fbcca" in text and "sitting: 13.0Hz -> stand" in text and "Oz" in text


def test_missing_and_invalid_json(saved, tmp_path):
    with pytest.raises(ProfileError, match="No profile at"):
        SubjectProfile.load(tmp_path / "nowhere")
    (saved / "profile.json").write_text("{not json")
    with pytest.raises(ProfileError, match="not valid JSON"):
        SubjectProfile.load(saved)
    (saved / "profile.json").write_text("[1, 2]")
    with pytest.raises(ProfileError, match="not a JSON object"):
        SubjectProfile.load(saved)
    (saved / "profile.json").write_text('{"format": "something-else"}')
    with pytest.raises(ProfileError, match="not an ssvep-exo profile"):
        SubjectProfile.load(saved)


def test_any_change_to_the_json_is_detected(saved, profile):
    """One changed digit, key or value (not re-signed) is refused; layout is not content."""
    text = (saved / "profile.json").read_text()
    for old, new in (('"sfreq": 256.0', '"sfreq": 257.0'),
                     ('"max_false_per_min": 1.0', '"max_false_per_min": 0.5'),
                     ('"window_s": 1.0', '"window_s": 1.5'), ('"Oz"', '"O1"')):
        assert old in text, old
        (saved / "profile.json").write_text(text.replace(old, new, 1))
        with pytest.raises(ProfileError, match="changed or damaged after it was written"):
            SubjectProfile.load(saved)
    _edit_json(saved, lambda d: d.pop("json_sha256"), sign=False)
    with pytest.raises(ProfileError, match="missing key 'json_sha256'"):
        SubjectProfile.load(saved)
    doc = json.loads(text)  # the same content laid out otherwise loads
    (saved / "profile.json").write_text(json.dumps(doc, sort_keys=True))
    assert SubjectProfile.load(saved).window_s == profile.window_s


def test_schema_version_missing_keys_and_types(saved):
    _edit_json(saved, lambda d: d.update(schema_version=99))
    with pytest.raises(ProfileError, match="schema version 99; this ssvep-exo reads schema "
                                           "version 2"):
        SubjectProfile.load(saved)
    _edit_json(saved, lambda d: d.update(schema_version=2))
    _edit_json(saved, lambda d: d.pop("ch_names"))
    with pytest.raises(ProfileError, match=r"missing key\(s\) \['ch_names'\]"):
        SubjectProfile.load(saved)
    _edit_json(saved, lambda d: d.update(ch_names=["Oz"], sfreq="256"))
    with pytest.raises(ProfileError, match="'sfreq' must be int or float, got str"):
        SubjectProfile.load(saved)
    _edit_json(saved, lambda d: d.update(sfreq=-1))
    with pytest.raises(ProfileError, match="'sfreq' must be a positive number"):
        SubjectProfile.load(saved)
    _edit_json(saved, lambda d: d.update(sfreq=256, menus={"SITTING": {"99.0Hz": "stand"}}))
    with pytest.raises(ProfileError, match=r"offers label\(s\) \['99.0Hz'\]"):
        SubjectProfile.load(saved)
    _edit_json(saved, lambda d: d.update(menus={"SITTING": ["stand"]}))
    with pytest.raises(ProfileError, match="must map target labels to command names"):
        SubjectProfile.load(saved)
    _edit_json(saved, lambda d: d.update(menus={}))
    good_policy = json.loads((saved / "profile.json").read_text())["policy"]
    _edit_json(saved, lambda d: d.update(policy={**good_policy, "speed": 3}))
    with pytest.raises(ProfileError, match="not accepted by DecisionPolicy"):
        SubjectProfile.load(saved)
    _edit_json(saved, lambda d: d.update(policy={**good_policy, "classes": ["a", "b"]}))
    with pytest.raises(ProfileError, match="policy's classes"):
        SubjectProfile.load(saved)
    _edit_json(saved, lambda d: d.update(policy=good_policy, decoder_meta={"format": "x"}))
    with pytest.raises(ProfileError, match="decoder state .* cannot be restored"):
        SubjectProfile.load(saved)


def test_npz_missing_tampered_truncated(saved, profile):
    npz = saved / "profile.npz"
    data = npz.read_bytes()
    npz.unlink()
    with pytest.raises(ProfileError, match="array file .* is missing"):
        SubjectProfile.load(saved)
    tampered = bytearray(data)
    tampered[len(data) // 2] ^= 0xFF
    npz.write_bytes(bytes(tampered))
    with pytest.raises(ProfileError, match="Checksum mismatch"):
        SubjectProfile.load(saved)
    npz.write_bytes(data[: len(data) // 2])
    with pytest.raises(ProfileError, match="Checksum mismatch"):
        SubjectProfile.load(saved)
    # truncated with a matching checksum (e.g. both files damaged by the same bad copy)
    _rewrite_npz(saved, {}, raw=data[: len(data) // 2])
    with pytest.raises(ProfileError, match="truncated or not a valid .npz"):
        SubjectProfile.load(saved)


def test_missing_array_wrong_shape_and_pickled_object(saved, profile):
    arrays = dict(profile.decoder_arrays)
    arrays.pop("weights_")
    _rewrite_npz(saved, arrays)
    with pytest.raises(ProfileError, match=r"lacks the array\(s\) \['weights_'\]"):
        SubjectProfile.load(saved)
    arrays = dict(profile.decoder_arrays)
    arrays["weights_"] = np.ones(7)
    _rewrite_npz(saved, arrays)
    with pytest.raises(ProfileError, match=r"Array 'weights_' .* has shape \(7,\), expected \(3,\)"):
        SubjectProfile.load(saved)
    arrays = dict(profile.decoder_arrays)
    arrays["weights_"] = np.array([object(), 1, 2], dtype=object)  # would need pickle
    _rewrite_npz(saved, arrays)
    with pytest.raises(ProfileError, match="truncated or not a valid .npz"):
        SubjectProfile.load(saved)


def test_check_compatible_with_stream(profile):
    profile.check_compatible(list(reversed(profile.ch_names)) + ["Fz"], 256.0)
    assert profile.channel_indices(["Fz"] + profile.ch_names) == list(range(1, 9))
    with pytest.raises(ProfileError, match=r"lacks the profile's channel\(s\) \['PO4'\]"):
        profile.check_compatible(profile.ch_names[:-1], 256.0)
    with pytest.raises(ProfileError, match="sampling rate 250 Hz differs from the profile's 256"):
        profile.check_compatible(profile.ch_names, 250.0)


def test_invalid_construction_is_value_error(fitted):
    raw, _, dec = fitted
    with pytest.raises(ValueError, match="'window_s' must be a positive number"):
        SubjectProfile.from_decoder(dec, method="fbcca", ch_names=raw.ch_names, sfreq=256.0,
                                    window_s=0.0)


def test_profile_copied_elsewhere_still_loads(saved, tmp_path):
    shutil.copytree(saved, tmp_path / "copy")
    assert SubjectProfile.load(tmp_path / "copy" / "profile.json").method == "fbcca"


@pytest.mark.parametrize("method", sorted(__import__("bci.decoders").decoders.METHODS))
def test_every_registry_decoder_round_trips(method, tmp_path, rng):
    ch_names, freqs = ["Oz", "O1", "O2", "POz"], [13, 17]
    if method == "population":  # its prior fixes the channels and the lights
        ch_names, freqs = ["Oz", "O1", "O2", "PO3", "POz", "PO7", "PO8", "PO4"], [13, 17, 21]
    X = rng.standard_normal((24, len(ch_names), 256))
    y = np.array([f"{f:.1f}Hz" for f in freqs] + ["rest"])[np.arange(24) % (len(freqs) + 1)]
    dec = make_decoder(method, sfreq=256.0, freqs=freqs).fit(X, y)
    prof = SubjectProfile.from_decoder(
        dec, method=method, ch_names=ch_names, sfreq=256.0, window_s=1.0,
        policy={"classes": [str(c) for c in dec.classes_]})
    prof.save(tmp_path)
    loaded = SubjectProfile.load(tmp_path)
    np.testing.assert_allclose(loaded.build_decoder().decision_function(X),
                               dec.decision_function(X))
