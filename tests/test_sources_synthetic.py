"""Schedule parsing and the offline synthetic recording."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from bci.sources import Schedule, synthesize_raw
from bci.sources.synthetic import make_signal


def test_schedule_parse_and_views():
    s = Schedule.parse("rest:4, 13:5,17.0Hz:5.5")
    assert s.labels == ("rest", "13.0Hz", "17.0Hz")
    np.testing.assert_allclose(s.onsets, [0, 4, 9])
    assert s.duration == pytest.approx(14.5)
    assert s.freqs == (13.0, 17.0)
    assert Schedule.parse(s.to_string()) == s
    assert s.n_samples(256) == round(14.5 * 256)


def test_schedule_from_toml_like_lists():
    a = Schedule.from_config([["rest", 4], [13, 5]])
    b = Schedule.from_config([{"label": "rest", "duration": 4}, {"label": "13", "duration_s": 5}])
    assert a == b == Schedule.parse("rest:4,13:5")


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("rest:4,13", "write label:seconds"),
        ("rest:4,13:x", "Cannot read the duration"),
        ("rest:-1", "positive number of seconds"),
        ("blah:3", "Cannot read a stimulus frequency"),
        ("", "at least one"),
        ([{"label": "rest"}], "label = ..., duration = seconds"),
        ([["rest", 4, 5]], "must be a \\(label, duration_s\\) pair"),
    ],
)
def test_schedule_errors(value, match):
    with pytest.raises(ValueError, match=match):
        Schedule.from_config(value)


def test_interleaved_has_rest_between_targets():
    s = Schedule.interleaved((13, 17, 21), n_repeats=3, seed=0)
    labels = s.labels
    assert labels[0] == "rest"
    assert sorted(lab for lab in labels if lab != "rest") == sorted(
        ["13.0Hz", "17.0Hz", "21.0Hz"] * 3)
    assert all(labels[i + 1] == "rest" for i, lab in enumerate(labels) if lab != "rest")


def test_synthesize_raw_annotations_units_and_reproducible():
    raw = synthesize_raw("rest:3,13:4,21:4", seed=1)
    assert raw.info["sfreq"] == 256.0
    assert raw.ch_names == ["Oz", "O1", "O2", "PO3", "POz", "PO7", "PO8", "PO4"]
    assert raw.n_times == 11 * 256
    ann = raw.annotations
    assert list(ann.description) == ["rest", "13.0Hz", "21.0Hz"]
    np.testing.assert_allclose(ann.onset, [0, 3, 7])
    np.testing.assert_allclose(ann.duration, [3, 4, 4])
    std_uv = raw.get_data().std(axis=1) * 1e6
    assert np.all((std_uv > 3) & (std_uv < 60)), std_uv  # microvolt scale, in volts
    again = synthesize_raw("rest:3,13:4,21:4", seed=1)
    np.testing.assert_array_equal(raw.get_data(), again.get_data())
    other = synthesize_raw("rest:3,13:4,21:4", seed=2)
    assert not np.allclose(raw.get_data(), other.get_data())


def test_chunked_generation_equals_whole():
    whole = make_signal("rest:2,13:3,rest:1,17:3", seed=5).generate(10**6)
    sig = make_signal("rest:2,13:3,rest:1,17:3", seed=5)
    rng = np.random.default_rng(0)
    parts = []
    while True:
        part = sig.generate(int(rng.integers(1, 100)))
        if not part.shape[1]:
            break
        parts.append(part)
    np.testing.assert_allclose(np.concatenate(parts, axis=1), whole, atol=1e-15)


def _power_at(x, sfreq, f):
    freqs, p = signal.welch(x, sfreq, nperseg=int(2 * sfreq), axis=-1)
    return p[..., np.argmin(abs(freqs - f))]


def test_ssvep_present_only_when_scheduled_and_strongest_occipital():
    raw = synthesize_raw("rest:40,17:40", seed=3, blink_rate=0.0)
    d = raw.get_data()
    sf = raw.info["sfreq"]
    rest, target = d[:, 256:40 * 256], d[:, 41 * 256:]
    ratio = _power_at(target, sf, 17) / _power_at(rest, sf, 17)
    assert ratio[0] > 4, ratio  # Oz
    assert _power_at(target, sf, 34)[0] > 2 * _power_at(rest, sf, 34)[0]  # harmonic
    assert ratio[0] > ratio[raw.ch_names.index("PO7")]
    # mains and alpha are there in both
    assert _power_at(rest, sf, 50)[0] > 10 * _power_at(rest, sf, 45)[0]
    assert _power_at(rest, sf, 10)[0] > 2 * _power_at(rest, sf, 30)[0]


def test_ssvep_latency_and_random_phase():
    sched = "rest:2," + ",".join(["13:3,rest:2"] * 6)
    raw = synthesize_raw(sched, seed=4, snr=5.0, blink_rate=0.0, alpha_uv=0.0,
                         background_uv=1.0, mains_uv=0.0)
    oz = raw.get_data()[0]
    sf = 256
    onset = 2 * sf
    # nothing in the first 0.1 s after the cue, response by 0.6 s
    assert np.abs(oz[onset:onset + 25]).max() < 0.5 * np.abs(oz[onset + 150:onset + 250]).max()
    starts = raw.annotations.onset[1::2]
    t = np.arange(sf) / sf
    phases = []
    for s in starts:
        x = oz[int((s + 1) * sf):int((s + 1) * sf) + sf]
        phases.append(np.angle(np.sum(x * np.exp(-2j * np.pi * 13 * t))))
    assert np.ptp(np.unwrap(phases)) > 1.0  # random per trial
    locked = synthesize_raw(sched, seed=4, snr=5.0, blink_rate=0.0, alpha_uv=0.0,
                            background_uv=1.0, mains_uv=0.0, phase_locked=True)
    oz = locked.get_data()[0]
    lphases = []
    for s in starts:
        x = oz[int((s + 1) * sf):int((s + 1) * sf) + sf]
        lphases.append(np.angle(np.sum(x * np.exp(-2j * np.pi * 13 * t))))
    assert np.abs(np.angle(np.exp(1j * (np.array(lphases) - lphases[0])))).max() < 0.3


def test_blinks_frontal_strong_occipital_attenuated():
    raw = synthesize_raw("rest:60", ch_names=("Fp1", "Oz"), seed=0, blink_rate=0.3,
                         alpha_uv=0.0, mains_uv=0.0, background_uv=2.0)
    fp1, oz = raw.get_data() * 1e6
    assert np.ptp(fp1) > 80
    assert np.ptp(fp1) > 5 * np.ptp(oz)


def test_synthesize_raw_errors():
    with pytest.raises(ValueError, match="Nyquist"):
        synthesize_raw("40:2", sfreq=64.0)
    with pytest.raises(ValueError, match="non-empty and unique"):
        synthesize_raw("13:2", ch_names=("Oz", "Oz"))
    with pytest.raises(ValueError, match="'snr' must be in"):
        synthesize_raw("13:2", snr=-1.0)
