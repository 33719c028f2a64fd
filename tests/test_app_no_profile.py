"""`ssvep-exo run` without a profile: the population decoder (rest class included) when the
lights are its prior's, training-free FBCCA otherwise, with a log line saying which and why."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from bci.app import _parts
from bci.app.closed_loop import ClosedLoopSession
from bci.app.config import SessionConfig
from bci.datasets import cue_table, find_recordings, load_recording
from bci.decoders import METHODS, make_decoder
from bci.decoders.cca import FBCCA
from bci.decoders.population import NO_CALIBRATION, PopulationRessFBCCA
from bci.evaluation.scoring import Selection, score_trials, totals
from bci.online import DecisionPolicy
from bci.online.pseudo_online import replay

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "kalunga2016"


def _cfg(tmp_path, unique_name, **decoder):
    return SessionConfig({
        "session": {"role": "decoder", "output": str(tmp_path / "sessions"),
                    "duration_s": 3.0, "live_view": False},
        "source": {"kind": "synthetic", "schedule": "rest:2,13:6", "snr": 0.6,
                   "stream_name": unique_name, "speed": 2.0},
        "decoder": decoder,
        "lsl": {"decisions_stream": unique_name + "-decisions"},
    }, origin="test")


def test_the_population_decoder_is_registered():
    dec = make_decoder("population", sfreq=256.0, freqs=[13, 17, 21])
    assert isinstance(dec, PopulationRessFBCCA) and METHODS["population"]["calibrated"]


def test_lights_of_the_prior_get_the_population_decoder_over_real_lsl(tmp_path, unique_name):
    cfg = _cfg(tmp_path, unique_name, freqs=[21.0, 13.0, 17.0])  # any order
    out = io.StringIO()
    session = ClosedLoopSession(cfg, out=out, install_signal_handlers=False)
    session.run()
    loop = session.loop
    assert isinstance(loop.decoder, PopulationRessFBCCA) and not loop.decoder.adapted_
    assert loop.policy.classes == ("13.0Hz", "17.0Hz", "21.0Hz", "rest")
    assert loop.policy.threshold == NO_CALIBRATION["policy"]["threshold"]
    # the source runs at x2: the policy's timings (seconds of signal) and the step follow it
    prior_policy = DecisionPolicy(loop.policy.classes, **NO_CALIBRATION["policy"])
    assert loop.policy.to_dict() == prior_policy.for_speed(2.0).to_dict()
    assert loop.step_s == pytest.approx(cfg.decoder.step_s / 2)
    assert loop.window_s == NO_CALIBRATION["window_s"]
    assert session.record.decisions  # it decoded the stream
    said = [ln for ln in out.getvalue().splitlines() if ln.startswith("Decoder:")]
    assert len(said) == 1, said
    assert said[0].startswith("Decoder: population RESS-FBCCA without calibration (rest class "
                              "included) on 21.0Hz, 13.0Hz, 17.0Hz (2 s windows): the lights "
                              "(13, 17, 21 Hz) are those of the population prior")
    assert "its channels Oz, O1, O2, PO3, POz, PO7, PO8, PO4" in said[0]


def test_other_lights_or_an_explicit_method_get_training_free_fbcca(tmp_path, unique_name):
    setup = _parts.build_decoder(_cfg(tmp_path, unique_name, freqs=[10.0, 12.0, 15.0]))
    assert isinstance(setup.decoder, FBCCA) and "rest" not in setup.policy.classes
    assert setup.why == ("the lights (10, 12, 15 Hz) are not those of the population prior "
                         "'kalunga2016' (13, 17, 21 Hz)")
    setup = _parts.build_decoder(_cfg(tmp_path, unique_name, method="fbcca"))
    assert isinstance(setup.decoder, FBCCA) and setup.why == ""
    setup = _parts.build_decoder(_cfg(tmp_path, unique_name, channels=["O1", "O2"]))
    assert isinstance(setup.decoder, FBCCA)  # the prior needs its own channels


@pytest.mark.slow
@pytest.mark.skipif(not DATA.is_dir(), reason="needs the Kalunga recordings")
def test_population_setup_commands_a_recorded_user_without_calibration():
    """The setup of `run` without a profile, replayed over a real session: most cued
    trials give the right command and rest stays nearly quiet (the shipped prior was trained
    on these recordings: a wiring check, not a figure; docs/evaluation.md has the
    leave-one-subject-out ones)."""
    setup = _parts.build_decoder(SessionConfig({}, origin="test"))
    raw = load_recording(find_recordings(DATA)["subject03"][0])
    dec = setup.decoder
    dec.fit(np.zeros((1, len(setup.channels), int(setup.window_s * raw.info["sfreq"]))))
    decs, _ = replay(raw, dec, setup.policy, window_s=setup.window_s, step_s=0.1,
                     picks=setup.channels)
    on, lab = cue_table(raw)
    sel = [Selection(d.window_end, d.outcome) for d in decs
           if d.outcome is not None and d.outcome != "rest"]
    c = totals(score_trials(sel, on, lab, end_s=raw.n_times / raw.info["sfreq"]))
    assert c["n_hits"] >= 0.7 * c["n_target_trials"], c
    assert c["n_false_activations"] <= 1 and c["n_wrong_trials"] <= 2, c


def test_a_stream_without_the_priors_channels_falls_back_to_fbcca(tmp_path, unique_name):
    """A headset with other channels: the population decoder cannot run on it; the session
    says so and decodes with training-free FBCCA (real LSL)."""
    from bci.sources import SyntheticEEG

    cfg = SessionConfig({
        "session": {"role": "decoder", "output": str(tmp_path / "sessions"),
                    "duration_s": 3.0, "live_view": False},
        # source.speed is the speed of a synthetic or replayed source: a headset's stream
        # runs in real time whatever it says
        "source": {"kind": "lsl", "stream_name": unique_name, "speed": 3.0},
        "lsl": {"decisions_stream": unique_name + "-decisions"},
    }, origin="test")
    out = io.StringIO()
    with SyntheticEEG("rest:2,13:8", name=unique_name, ch_names=["Oz", "O1", "O2", "POz"],
                      seed=3):
        session = ClosedLoopSession(cfg, out=out, install_signal_handlers=False)
        session.run()
    said = [ln for ln in out.getvalue().splitlines() if ln.startswith("Decoder:")]
    assert len(said) == 2 and "population" in said[0], said
    assert said[1].startswith("Decoder: training-free fbcca on 13.0Hz, 17.0Hz, 21.0Hz")
    assert "does not offer the population prior's channels" in said[1]
    assert isinstance(session.loop.decoder, FBCCA) and session.record.decisions
    # the [policy] settings and the step as configured: no speed applies to a live stream
    assert session.loop.policy.to_dict() == _parts.training_free_setup(cfg).policy.to_dict()
    assert session.loop.step_s == cfg.decoder.step_s and "Speed x" not in out.getvalue()
