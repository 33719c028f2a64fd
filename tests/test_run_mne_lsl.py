"""`ssvep-exo run` on streams published the MNE ecosystem's way (mne-lsl's PlayerLSL), and
on streams in volts, in microvolts, and without a unit.

Real LSL; each session runs in a subprocess as a user starts it; the assertions read the
session folder it wrote.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import mne
import numpy as np
import pylsl
import pytest

from bci.acquisition import EEGStream
from bci.acquisition._metadata import make_eeg_info
from bci.datasets import load_recording
from bci.decoders import make_decoder
from bci.online import DecisionPolicy
from bci.online.pseudo_online import replay

EXE = [sys.executable, "-m", "bci"]
#: 19.5 s of subject 01's first session, looped by the player: rest at 0.5 s, 21 Hz at 7 s,
#: 17 Hz at 13.5 s. Any 20 s of the loop hold at least three cues, so whenever the session
#: starts (a loaded machine delays it) it sees rest and both targets.
SEGMENT_S = (60.5, 80.0)
CYCLE = ["rest", "21.0Hz", "17.0Hz"]


def _env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    env.pop("BCI_RAISE_THREAD_ERRORS", None)
    return env


def _run(args: list[str], timeout: float = 90.0) -> subprocess.CompletedProcess:
    return subprocess.run(EXE + args, capture_output=True, text=True, timeout=timeout,
                          env=_env())


def _session(out: Path) -> Path:
    (folder,) = [p for p in out.iterdir() if p.is_dir()]
    return folder


def _player(raw, name: str, stype: str | None):
    """mne-lsl's PlayerLSL; ``stype`` other than None re-declares its stream type.

    PlayerLSL names the type after MNE's channel type (``"eeg"``) and offers no parameter
    for it, so the variant rebuilds its StreamInfo the way PlayerLSL does
    (``set_channel_info`` of the Raw: labels, types, FIFF unit codes) with another type.
    """
    from mne_lsl.lsl import StreamInfo
    from mne_lsl.player import PlayerLSL

    player = PlayerLSL(raw, chunk_size=16, name=name, source_id=name)  # loops
    if stype is not None:
        sinfo = StreamInfo(name, stype, len(raw.ch_names), raw.info["sfreq"], np.float64,
                           name)
        sinfo.set_channel_info(raw.info)
        player._sinfo = sinfo
    return player


@pytest.mark.realdata
@pytest.mark.parametrize("stype", [None, "EEG"], ids=["as-published-eeg", "type-EEG"])
def test_player_lsl_recording_accepted_and_cues_scored(tmp_path, kalunga_session, unique_name,
                                                       stype):
    raw = load_recording(kalunga_session).crop(*SEGMENT_S)
    ann = raw.annotations  # drop the cue cut at the segment's start
    raw.set_annotations(ann[ann.onset - raw.first_time > 0.1])
    assert list(raw.annotations.description) == CYCLE
    player = _player(raw, unique_name, stype).start()
    try:
        r = _run(["run", "--source", "lsl", "--stream", unique_name, "--simulator",
                  "--duration", "20", "--no-live-view", "--output", str(tmp_path / "out")])
    finally:
        player.stop()
    assert r.returncode == 0, r.stdout + r.stderr
    assert "assuming microvolts" not in r.stdout + r.stderr  # the unit "0" is understood
    folder = _session(tmp_path / "out")
    summary = json.loads((folder / "summary.json").read_text())
    cues = summary["cues"]
    assert cues is not None, "the -annotations stream was not read"
    labels = [c["label"] for c in cues]
    assert len(labels) >= 3 and ",".join(labels) in ",".join(CYCLE * 10)  # in order
    assert set(labels) == set(CYCLE)
    targets = [c for c in cues if c["label"] != "rest"]
    assert all(isinstance(c["hit"], bool) for c in targets)  # scored against the mapping
    assert summary["false_activations_per_min_rest"] is not None
    # volts (FIFF unit code "0") reached the recording as microvolts, like the file's own
    import pyxdf

    streams, _ = pyxdf.load_xdf(str(folder / "recording.xdf"))
    (eeg,) = [s for s in streams if s["info"]["type"][0] == "EEG"]
    rec_std = np.median(np.std(np.asarray(eeg["time_series"]), axis=0))
    file_std = np.median(np.std(raw.get_data(), axis=1)) * 1e6
    assert rec_std == pytest.approx(file_std, rel=0.3)


def test_volts_and_microvolts_give_the_same_decisions(unique_name):
    """The same EEG on two streams, one declared in V and one in microvolts: the windows the
    inlets deliver are the same volts, so the decoder and the policy decide the same."""
    from bci.sources import synthesize_raw

    sim = synthesize_raw("rest:3,13:4,rest:2,17:4,21:4", seed=3, snr=0.5)
    uv = sim.get_data().T * 1e6  # (n, ch) in microvolts
    n = len(uv)
    outlets, streams = {}, {}
    for unit, scale in (("V", 1e-6), ("microvolts", 1.0)):
        name = f"{unique_name}-{unit}"
        outlets[unit] = (pylsl.StreamOutlet(make_eeg_info(name, name, sim.ch_names,
                                                          sim.info["sfreq"], unit=unit)), scale)
        streams[unit] = EEGStream(name, buffer_s=n / sim.info["sfreq"] + 5).connect()
    try:
        t0 = pylsl.local_clock() - n / sim.info["sfreq"]
        ts = (t0 + np.arange(n) / sim.info["sfreq"]).tolist()
        for outlet, scale in outlets.values():
            outlet.push_chunk(np.ascontiguousarray((uv * scale).astype(np.float32)), ts)
        deadline = threading.Event()
        for s in streams.values():
            for _ in range(500):
                if s.n_samples_received >= n:
                    break
                deadline.wait(0.02)
            assert s.n_samples_received == n
        wins = {unit: s.latest_window(n) for unit, s in streams.items()}
    finally:
        for s in streams.values():
            s.disconnect()
    np.testing.assert_allclose(wins["V"].data, wins["microvolts"].data, rtol=1e-6)
    health = {u: {k: v for k, v in w.health.to_dict().items()
                  if k != "seconds_since_last_sample"} for u, w in wins.items()}
    assert health["V"] == health["microvolts"] and wins["V"].health.ok
    decided = {}
    for unit, win in wins.items():
        raw = mne.io.RawArray(win.data, mne.create_info(list(win.ch_names), win.sfreq, "eeg"),
                              verbose="error")
        dec = make_decoder("fbcca", sfreq=win.sfreq, freqs=[13.0, 17.0, 21.0])
        dec.fit(np.zeros((1, len(win.ch_names), 512)))
        decisions, _ = replay(raw, dec, DecisionPolicy(["13.0Hz", "17.0Hz", "21.0Hz"],
                                                       n_consecutive=4),
                              window_s=2.0, step_s=0.25)
        decided[unit] = [(d.outcome, d.winner, d.reason) for d in decisions]
    assert len(decided["V"]) > 40
    assert decided["V"] == decided["microvolts"]
    assert sum(o is not None for o, _, _ in decided["V"]) >= 2  # the commands are there to compare


def test_run_refuses_a_unitless_stream_in_volts(tmp_path, unique_name):
    info = pylsl.StreamInfo(unique_name, "EEG", 4, 256.0, pylsl.cf_float32, unique_name)
    chans = info.desc().append_child("channels")
    for lab in ("Oz", "O1", "O2", "POz"):
        chans.append_child("channel").append_child_value("label", lab)
    outlet = pylsl.StreamOutlet(info)
    stop = threading.Event()

    def pace():  # a headset sending volts in real time without declaring the unit
        rng = np.random.default_rng(0)
        while not stop.wait(1 / 16):
            outlet.push_chunk((rng.standard_normal((16, 4)) * 20e-6).astype(np.float32))

    th = threading.Thread(target=pace, daemon=True)
    th.start()
    try:
        r = _run(["run", "--source", "lsl", "--stream", unique_name, "--simulator",
                  "--duration", "20", "--no-live-view", "--output", str(tmp_path / "out")])
    finally:
        stop.set()
        th.join(2.0)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "declares no voltage unit" in r.stderr
    assert "so microvolts were assumed" in r.stderr and "they look like volts" in r.stderr
    assert "Traceback" not in r.stderr
    log = [json.loads(line) for line in
           (_session(tmp_path / "out") / "session.jsonl").read_text().splitlines()]
    assert not [e for e in log if e["event"] == "decision"]  # refused before decoding
    assert [e["event"] for e in log][-1] == "device_closed"  # and ended with STOP, closed
