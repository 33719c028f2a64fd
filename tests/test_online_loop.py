"""OnlineLoop on synthetic recordings through RecordingSource, faults, session log, LSL outlet."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

from bci.acquisition.window import EEGWindow, SignalHealth
from bci.datasets import cue_table
from bci.decoders import make_decoder
from bci.errors import BCIError, DatasetError, StreamError
from bci.evaluation.harness import score_stream
from bci.evaluation.scoring import Selection, score_trials, totals
from bci.labels import class_labels
from bci.online import (
    DecisionPolicy,
    DecisionsInlet,
    DecisionsOutlet,
    OnlineLoop,
    RecordingSource,
    SessionLog,
    read_session_log,
)
from bci.online.pseudo_online import replay
from bci.sources import synthesize_raw
from calibration.selection import choose_threshold

FREQS = [13.0, 17.0, 21.0]
WINDOW_S = 1.0
STEP_S = 0.1
SNR = 0.5


def _schedule(seed: int, n_rounds: int = 4) -> str:
    """Interleaved rest / target segments in a shuffled order (no rest-first confound)."""
    rng = np.random.default_rng(seed)
    parts = ["rest:4"]
    for _ in range(n_rounds):
        for f in rng.permutation(FREQS):
            parts += [f"{f:g}:5", "rest:4"]
    return ",".join(parts)


def _fbcca(sfreq=256.0, window_s=WINDOW_S):
    return make_decoder("fbcca", sfreq=sfreq, freqs=FREQS).fit(
        np.zeros((1, 8, int(round(window_s * sfreq)))), None
    )


class Constant:
    """Stand-in decoder: fixed scores; can raise or sleep on chosen calls."""

    def __init__(self, scores, *, raise_every=0, sleep_s=0.0):
        self.classes_ = np.array(["13.0Hz", "17.0Hz", "rest"])
        self.scores = np.asarray(scores, float)
        self.raise_every = raise_every
        self.sleep_s = sleep_s
        self.calls = 0

    def decision_function(self, X):
        self.calls += 1
        if self.raise_every and self.calls % self.raise_every == 0:
            raise FloatingPointError("boom")
        if self.sleep_s:
            time.sleep(self.sleep_s)
        return self.scores[None].repeat(len(X), 0)


class FakeSource:
    """A source with a controllable clock, window age and health."""

    def __init__(self, *, age_s=0.0, health=None, none=False):
        self.sfreq = 100.0
        self.ch_names = ("Oz", "O1")
        self.age_s = age_s
        self.health = health or SignalHealth()
        self.none = none
        self.t = 10.0

    def clock(self):
        return self.t

    def latest_window(self, n):
        if self.none:
            return None
        ts = self.t - self.age_s - np.arange(n)[::-1] / self.sfreq
        return EEGWindow(np.zeros((2, n)), ts, self.ch_names, self.sfreq, self.health)


def _policy(decoder, **kw):
    params = dict(threshold=1.5, refractory_s=0.0, release_s=0.5)
    params.update(kw)
    return DecisionPolicy(class_labels(decoder.classes_), **params)


@pytest.mark.slow
def test_synthetic_targets_detected_and_quiet_during_rest():
    # A clear responder (the decoder's accuracy is not under test here, the loop is).
    cal = synthesize_raw(_schedule(1), seed=1, snr=SNR)
    test = synthesize_raw(_schedule(2), seed=2, snr=SNR)
    decoder = _fbcca()
    # Set the threshold on the calibration recording, as calibration does.
    stream = score_stream(decoder, cal, window_s=WINDOW_S, step=STEP_S)
    # plain FBCCA has no rest class: a drift and a short horizon keep rest from adding up
    # (a strict budget: the threshold from the model of rest extrapolates beyond the worst rest
    # window, so it sits above the calibration's own rest: a target or two may be missed)
    policy, _ = choose_threshold([stream], max_false_per_min=0.2, params={
        "drift": 0.1, "horizon_s": 3.0, "release_s": 1.0})
    decs, loop = replay(test, decoder, policy, window_s=WINDOW_S, step_s=STEP_S)
    on, lab = cue_table(test)
    sel = [Selection(d.window_end, d.outcome) for d in decs if d.outcome is not None]
    c = totals(score_trials(sel, on, lab, end_s=test.n_times / test.info["sfreq"]))
    assert c["n_target_trials"] == 12
    assert c["n_hits"] >= 10, c
    assert c["n_false_activations"] == 0, c
    assert c["n_wrong_commands"] == 0, c
    assert loop.counts.get("decoder_error", 0) == 0


def test_recording_source_steps_a_virtual_clock():
    raw = synthesize_raw("rest:3", seed=0)
    src = RecordingSource(raw)
    assert src.latest_window(256) is None  # not enough samples at t=0
    src.seek(1.5)
    w = src.latest_window(256)
    assert w.data.shape == (8, 256)
    assert w.t_end == pytest.approx(1.5, abs=1 / 256)
    np.testing.assert_allclose(w.data, raw.get_data()[:, w.data.shape[1] * 0 + 129:385])
    src.advance(10.0)
    assert src.finished
    with pytest.raises(DatasetError, match=r"Channel\(s\) \['Cz'\] are not in the recording"):
        RecordingSource(raw, picks=["Oz", "Cz"])


def test_decoder_error_is_an_outcome_and_the_loop_goes_on(tmp_path):
    dec = Constant([1.0, 0.0, 0.0], raise_every=3)
    with SessionLog(tmp_path / "s.jsonl") as log:
        loop = OnlineLoop(FakeSource(), dec, _policy(dec), log=log)
        out = [loop.step() for _ in range(9)]
    reasons = [d.reason for d in out]
    assert reasons.count("decoder_error") == 3
    assert all(d.outcome is None for d in out if d.reason == "decoder_error")
    assert all(d.scores == () for d in out if d.reason == "decoder_error")
    lines = read_session_log(tmp_path / "s.jsonl")
    errs = [ln for ln in lines if ln["reason"] == "decoder_error"]
    assert len(errs) == 3 and "FloatingPointError('boom')" in errs[0]["error"]
    # Evidence was cleared at each error: two windows are needed after the error.
    assert reasons[:3] == ["evidence", "committed", "decoder_error"]


def test_bad_scores_from_decoder_are_a_decoder_error():
    dec = Constant([np.nan, 0.0, 0.0])
    loop = OnlineLoop(FakeSource(), dec, _policy(dec))
    d = loop.step()
    assert (d.reason, d.outcome) == ("decoder_error", None)


def test_old_data_is_behind():
    dec = Constant([1.0, 0.0, 0.0])
    loop = OnlineLoop(FakeSource(age_s=0.8), dec, _policy(dec), max_lag_s=0.5)
    out = [loop.step() for _ in range(5)]
    assert {d.reason for d in out} == {"behind"}
    assert all(d.outcome is None for d in out)
    assert dec.calls == 0  # nothing decoded when the data is already too old


def test_slow_decoder_is_behind():
    dec = Constant([1.0, 0.0, 0.0], sleep_s=0.12)
    loop = OnlineLoop(FakeSource(), dec, _policy(dec), max_lag_s=0.05)
    out = [loop.step() for _ in range(3)]
    assert {d.reason for d in out} == {"behind"}
    assert all(d.outcome is None and d.latency_s >= 0.1 for d in out)


def test_stalled_and_unhealthy_windows():
    dec = Constant([1.0, 0.0, 0.0])
    d = OnlineLoop(FakeSource(none=True), dec, _policy(dec)).step()
    assert (d.reason, d.outcome, d.health.stalled) == ("stalled", None, True)
    src = FakeSource(health=SignalHealth(stalled=True, seconds_since_last_sample=0.6))
    assert OnlineLoop(src, dec, _policy(dec)).step().reason == "stalled"
    src = FakeSource(health=SignalHealth(nan_channels=("Oz",)))
    out = [OnlineLoop(src, dec, _policy(dec)).step() for _ in range(4)]
    assert {(d.reason, d.outcome) for d in out} == {("unhealthy", None)}
    assert out[0].health.nan_channels == ("Oz",)


def test_session_log_lines_are_flushed_json(tmp_path):
    dec = Constant([1.0, 0.0, 0.0])
    path = tmp_path / "logs" / "session.jsonl"
    log = SessionLog(path)
    loop = OnlineLoop(FakeSource(), dec, _policy(dec), log=log)
    for i in range(5):
        loop.step()
        # Read back while the log is still open: every line is already on disk.
        lines = path.read_text().splitlines()
        assert len(lines) == i + 1
        rec = json.loads(lines[-1])
        assert rec["event"] == "decision" and rec["classes"] == ["13.0Hz", "17.0Hz", "rest"]
    log("supervisor_stop", {"cause": "test"})
    assert json.loads(path.read_text().splitlines()[-1])["cause"] == "test"
    log.close()
    with pytest.raises(RuntimeError, match="session log is closed"):
        log.event("late")


def test_session_log_unwritable(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(BCIError, match="Cannot open the session log"):
        SessionLog(blocker / "session.jsonl")


def test_decisions_outlet_reaches_an_inlet(unique_name):
    dec = Constant([1.0, 0.0, 0.0])
    with DecisionsOutlet(unique_name, source_id=unique_name, classes=class_labels(dec.classes_),
                         meta={"method": "constant"}) as out:
        with DecisionsInlet(unique_name, source_id=unique_name, timeout=5.0) as inlet:
            assert inlet.classes == ["13.0Hz", "17.0Hz", "rest"]
            assert inlet.info.desc().child_value("method") == "constant"
            assert inlet.info.desc().child("channels").child("channel").child_value(
                "label") == "decision"
            loop = OnlineLoop(FakeSource(), dec, _policy(dec), outlet=out)
            deadline = time.monotonic() + 5.0
            while not out.have_consumers() and time.monotonic() < deadline:
                time.sleep(0.05)
            sent = [loop.step() for _ in range(5)]
            got = []
            while len(got) < 5 and time.monotonic() < deadline:
                got += inlet.pull(timeout=0.5)
    assert [d.to_dict() for d in got] == [d.to_dict() for d in sent]
    assert got[1].outcome == "13.0Hz"


def test_decisions_inlet_not_found(unique_name):
    with pytest.raises(StreamError, match="No decisions stream named"):
        DecisionsInlet(unique_name, timeout=0.2)


def test_run_paces_steps_and_stops():
    dec = Constant([1.0, 0.0, 0.0])
    src = FakeSource()
    src.clock = time.monotonic  # live-like clock
    src.latest_window = lambda n: EEGWindow(
        np.zeros((2, n)), time.monotonic() - np.arange(n)[::-1] / 100.0, ("Oz", "O1"), 100.0
    )
    seen = []
    loop = OnlineLoop(src, dec, _policy(dec), step_s=0.05, on_decision=seen.append)
    t0 = time.monotonic()
    n = loop.run(threading.Event(), duration=0.5)
    elapsed = time.monotonic() - t0
    # paced: never more than one step per step_s (however late a step starts); a loaded
    # machine may run fewer
    assert 1 <= n <= 11 and n <= elapsed / 0.05 + 1
    assert elapsed >= 0.45  # it ran for its duration
    assert len(seen) == n
    stop = threading.Event()
    th = threading.Thread(target=loop.run, args=(stop,))
    th.start()
    time.sleep(0.2)
    stop.set()
    th.join(30.0)
    assert not th.is_alive()
    stats = loop.latency_stats()
    assert stats["n"] == loop.n_steps and 0.0 <= stats["median_s"] <= stats["p99_s"]


def test_loop_argument_errors():
    dec = Constant([1.0, 0.0, 0.0])
    with pytest.raises(TypeError, match="'source' must provide latest_window"):
        OnlineLoop(object(), dec, _policy(dec))
    with pytest.raises(TypeError, match="'decoder' must have a decision_function"):
        OnlineLoop(FakeSource(), object(), _policy(dec))
    with pytest.raises(ValueError, match="policy's classes"):
        OnlineLoop(FakeSource(), dec, DecisionPolicy(["a", "b", "c"]))
    with pytest.raises(ValueError, match="'step_s' must be in"):
        OnlineLoop(FakeSource(), dec, _policy(dec), step_s=0)
    unfitted = make_decoder("fbcca", sfreq=256.0, freqs=FREQS)
    with pytest.raises(RuntimeError, match="not fitted"):
        OnlineLoop(FakeSource(), unfitted, _policy(dec))
