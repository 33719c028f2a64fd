"""Real LSL: SyntheticEEG (2x real time) -> EEGStream -> OnlineLoop.run yields the schedule.

How fast the loop is (per-step latency, keeping up with a fast replay) is measured by
``scripts/bench_online.py`` (``make bench``), not asserted here.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pylsl
import pytest

from bci.acquisition import EEGStream
from bci.decoders import make_decoder
from bci.evaluation.scoring import Selection, score_trials, totals
from bci.labels import class_labels
from bci.online import DecisionPolicy, OnlineLoop
from bci.sources import SyntheticEEG

SPEED = 2.0
SCHEDULE = "rest:4,13:5,rest:4,17:5,rest:4,21:5,rest:4"
TOTAL_S = 31.0


@pytest.mark.slow
def test_synthetic_lsl_stream_through_the_loop(unique_name):
    decoder = make_decoder("fbcca", sfreq=256.0, freqs=[13.0, 17.0, 21.0]).fit(
        np.zeros((1, 8, 256)), None
    )
    # Times in the policy are LSL timestamps; at 2x they run 2x slower than the data.
    policy = DecisionPolicy(class_labels(decoder.classes_), threshold=1.5, drift=0.2, clip=0.5,
                            horizon_s=3.0 / SPEED, refractory_s=1.0 / SPEED,
                            release_s=1.0 / SPEED)
    decisions = []
    stop = threading.Event()
    with SyntheticEEG(SCHEDULE, name=unique_name, speed=SPEED, snr=1.0, seed=3) as src, \
            EEGStream(name=unique_name, source_id=unique_name) as stream:
        loop = OnlineLoop(stream, decoder, policy, window_s=1.0, step_s=0.1 / SPEED,
                          on_decision=decisions.append, max_lag_s=0.5)
        th = threading.Thread(target=loop.run, args=(stop,))
        th.start()
        deadline = time.monotonic() + 90.0
        while not src.markers_sent and time.monotonic() < deadline:
            time.sleep(0.02)
        # Run until the schedule has played (LSL clock), plus one step.
        end_ts = src.markers_sent[0][0] + TOTAL_S / SPEED + 0.2
        while pylsl.local_clock() < end_ts and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        th.join(5.0)
        markers = list(src.markers_sent)
    assert not th.is_alive()
    onsets = np.array([t for t, _ in markers])
    labels = [lab for _, lab in markers]
    assert labels[:7] == ["rest", "13.0Hz", "rest", "17.0Hz", "rest", "21.0Hz", "rest"]
    cmds = [Selection(d.window_end, d.outcome) for d in decisions if d.outcome is not None]
    end = max(d.window_end for d in decisions if np.isfinite(d.window_end))
    c = totals(score_trials(cmds, onsets, labels, end_s=end))
    assert c["n_hits"] == c["n_target_trials"] == 3, (cmds, markers)
    assert c["n_false_activations"] == 0 and c["n_wrong_commands"] == 0, (cmds, markers)
    assert len(decisions) == loop.n_steps
