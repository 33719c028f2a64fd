"""`ssvep-exo run --profile`: the profile's policy, window and step drive the online loop.

A small profile is calibrated on synthetic EEG (CCA, one window, a 0.25 s step and a policy
unlike the [policy] defaults); sessions run in-process on a real synthetic LSL stream.
"""

from __future__ import annotations

import io
import logging
import math

import pytest

from bci.app import _parts
from bci.app.closed_loop import ClosedLoopSession
from bci.app.config import SessionConfig, load_config
from bci.cli import main as cli_main
from bci.online import read_session_log
from bci.sources.synthetic import synthesize_raw
from calibration.errors import ProfileError
from calibration.session import calibrate_raws

SCHEDULE = ",".join(["rest:3"] + [f"{f}:4,rest:3" for f in (13, 17, 21)] * 3)
POLICY = {"horizon_s": 2.0, "refractory_s": 2.5, "release_s": 0.7}
STEP_S = 0.25
WINDOW_S = 1.0


def _profile(out, raw):
    profile, _ = calibrate_raws([raw], methods=["cca"], windows=[WINDOW_S], tmin=1.0,
                                step_s=STEP_S, n_folds=3, policy_params=POLICY, output=out)
    return profile


@pytest.fixture(scope="module")
def profile_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("profile") / "alice"
    _profile(out, synthesize_raw(SCHEDULE, snr=0.6, seed=1))
    return out


def _cfg(tmp_path, profile_dir, unique_name, speed=2.0, **decoder):
    return SessionConfig({
        "session": {"role": "decoder", "output": str(tmp_path / "sessions"),
                    "duration_s": 2.5, "live_view": False},
        "source": {"kind": "synthetic", "schedule": "rest:2,13:4", "snr": 0.6,
                   "stream_name": unique_name, "speed": speed},
        "decoder": {"profile": str(profile_dir), "freqs": [13.0, 17.0, 21.0], **decoder},
        "lsl": {"decisions_stream": unique_name + "-decisions"},
    }, origin="test")


def _run(cfg):
    out = io.StringIO()
    session = ClosedLoopSession(cfg, out=out, install_signal_handlers=False)
    session.run()
    return session, out.getvalue()


@pytest.mark.parametrize("speed", [1.0, 2.0])
def test_run_uses_the_profiles_policy_window_and_step(tmp_path, profile_dir, unique_name,
                                                      speed):
    """The profile's policy timings and step are seconds of signal. A source run at ``speed``
    stamps a second of signal 1/speed s apart on the LSL clock the loop runs on, so both are
    divided by the speed (they were not: at x10 the policy integrated 10 times more signal
    than calibrated); at speed 1 they are the profile's, untouched."""
    from calibration.profile import SubjectProfile

    profile = SubjectProfile.load(profile_dir)
    assert profile.extra["step_s"] == STEP_S
    session, text = _run(_cfg(tmp_path, profile_dir, unique_name, speed=speed))
    loop = session.loop
    assert loop.window_s == pytest.approx(WINDOW_S)  # the config's default window is 2 s
    calibrated = profile.build_policy().to_dict()
    assert (calibrated["horizon_s"], calibrated["refractory_s"], calibrated["release_s"]) == (
        2.0, 2.5, 0.7)
    got = loop.policy.to_dict()
    if speed == 1.0:
        assert loop.step_s == STEP_S  # the config's default step is 0.1 s
        assert got == calibrated
        assert "Speed x" not in text
    else:
        assert loop.step_s == pytest.approx(STEP_S / speed)
        assert (got["horizon_s"], got["refractory_s"], got["release_s"]) == pytest.approx(
            (2.0 / speed, 2.5 / speed, 0.7 / speed))
        assert {k: v for k, v in got.items() if not k.endswith("_s")} == \
            {k: v for k, v in calibrated.items() if not k.endswith("_s")}
        said = [ln for ln in text.splitlines() if ln.startswith("Speed x")]
        assert said == [f"Speed x{speed:g}: the policy's timings and the decision step are "
                        f"seconds of signal, so they run {speed:g} times faster: horizon "
                        f"{2.0 / speed:.3g} s, refractory {2.5 / speed:.3g} s, release "
                        f"{0.7 / speed:.3g} s and a decision every {STEP_S / speed:.3g} s "
                        "of real time"]
        logged = [e for e in read_session_log(session.folder / "session.jsonl")
                  if e["event"] == "source_speed"]
        assert len(logged) == 1 and logged[0]["policy"] == got
        assert logged[0]["step_s"] == loop.step_s and logged[0]["speed"] == speed
    assert "a decision every 0.25 s" in text  # the profile's step, in seconds of signal
    assert "Warning" not in text
    assert session.record.decisions  # it did decode


def test_a_step_divided_below_the_shortest_is_kept_there_and_said():
    from bci.app.config import MIN_STEP_S
    from bci.online import DecisionPolicy

    policy = DecisionPolicy(["13.0Hz", "rest"], horizon_s=3.0, refractory_s=1.0,
                            release_s=1.0)
    same = _parts.at_source_speed(policy, 0.1, 1.0)
    assert same.policy is policy and same.step_s == 0.1 and same.note == ""
    fast = _parts.at_source_speed(policy, 0.1, 50.0)
    assert fast.step_s == MIN_STEP_S == 0.01
    assert fast.policy.horizon_s == pytest.approx(0.06)
    assert fast.note.endswith("a decision every 0.01 s of real time (not 0.002 s: the "
                              "shortest step is 0.01 s; a decision comes every 0.5 s of "
                              "signal instead of 0.1 s, so the policy sees fewer windows "
                              "than it was set for)")


def test_explicit_window_and_step_win_with_a_warning(profile_dir, caplog):
    base = SessionConfig({"decoder": {"profile": str(profile_dir), "step_s": 0.1}})
    with caplog.at_level(logging.WARNING, logger="bci"):
        setup = _parts.build_decoder(base.with_overrides({"decoder.window_s": 1.5}))
    assert setup.step_s == pytest.approx(0.1)
    assert setup.window_s == pytest.approx(1.5)
    assert len(setup.notes) == 2
    assert any("0.25 s step" in n and "calibrated" in n for n in setup.notes)
    assert any("overrides the profile's 1 s windows" in n for n in setup.notes)
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("0.25 s step" in m for m in warned)
    # An explicit setting equal to the profile's is no mismatch.
    same = SessionConfig({"decoder": {"profile": str(profile_dir), "step_s": STEP_S,
                                      "window_s": WINDOW_S}})
    assert _parts.build_decoder(same).notes == []


def test_defaults_and_command_line_options_keep_explicitness(tmp_path, profile_dir):
    toml = tmp_path / "run.toml"
    toml.write_text("[decoder]\nstep_s = 0.5\n", encoding="utf-8")
    cfg = load_config(toml).with_overrides({"decoder.profile": str(profile_dir),
                                             "decoder.window_s": None})
    assert cfg.is_explicit("decoder.step_s") and not cfg.is_explicit("decoder.window_s")
    setup = _parts.build_decoder(cfg)
    assert (setup.step_s, setup.window_s) == (0.5, WINDOW_S)
    setup = _parts.build_decoder(load_config(None).with_overrides(
        {"decoder.profile": str(profile_dir)}))
    assert (setup.step_s, setup.window_s, setup.notes) == (STEP_S, WINDOW_S, [])


def test_profile_channels_missing_from_the_stream_is_a_profile_error(tmp_path, unique_name):
    raw = synthesize_raw(SCHEDULE, snr=0.6, seed=1)
    raw.rename_channels({"Oz": "Cz"})
    prof = tmp_path / "other-cap"
    _profile(prof, raw)
    with pytest.raises(ProfileError, match=r"lacks the profile's channel\(s\) \['Cz'\]"):
        _run(_cfg(tmp_path, prof, unique_name))


def test_profile_sampling_rate_mismatch_is_one_line(tmp_path, unique_name, capsys):
    raw = synthesize_raw(SCHEDULE, snr=0.6, seed=1).resample(128.0, verbose=False)
    prof = tmp_path / "slow"
    _profile(prof, raw)
    code = cli_main(["run", "--profile", str(prof), "--role", "decoder", "--stream",
                     unique_name, "--duration", "2", "--no-live-view", "--output",
                     str(tmp_path / "o"), "--decisions-stream", unique_name + "-d"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1
    assert "sampling rate 256 Hz differs from the profile's 128 Hz" in err


def test_explicit_window_override_runs_with_a_warning(tmp_path, profile_dir, unique_name):
    # CCA builds its references for any length, so a longer window decodes
    cfg = _cfg(tmp_path, profile_dir, unique_name, window_s=1.5)
    session, text = _run(cfg)
    assert session.loop.window_s == pytest.approx(1.5)
    assert "Warning: decoder.window_s = 1.5 s overrides" in text
    assert math.isclose(session.loop.step_s, STEP_S / 2)  # the profile's, at speed 2


def test_window_a_template_decoder_cannot_take_is_a_config_error(tmp_path, unique_name, rng):
    import numpy as np

    from bci.decoders import make_decoder
    from bci.errors import ConfigError
    from bci.sources.synthetic import DEFAULT_CH_NAMES
    from calibration.profile import SubjectProfile

    X = rng.standard_normal((12, 8, 256))
    y = np.repeat(["13.0Hz", "17.0Hz", "21.0Hz"], 4)
    dec = make_decoder("etrca", sfreq=256.0, freqs=[13.0, 17.0, 21.0]).fit(X, y)
    prof = tmp_path / "etrca"
    SubjectProfile.from_decoder(
        dec, method="etrca", ch_names=list(DEFAULT_CH_NAMES), sfreq=256.0, window_s=1.0,
        policy={"classes": list(dec.classes_)}, extra={"step_s": 0.1}).save(prof)
    with pytest.raises(ConfigError, match=r"etrca decoder \(fitted on 1 s windows\) cannot "
                                          r"decode 1.5 s windows .*drop decoder.window_s"):
        _run(_cfg(tmp_path, prof, unique_name, window_s=1.5))
