"""Figures of the LSL layer: pacing, latency, stall/loss/re-acquisition, replay speed, costs.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_streams.py [--kalunga FILE]``.
Prints one line per figure (real LSL outlets and inlets on this machine).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pylsl

from bci.acquisition import EEGStream
from bci.recording import SessionRecorder
from bci.sources import RecordingPlayer, SyntheticEEG
from bci.sources.synthetic import make_signal


def _wait(pred, timeout=10.0):
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            raise TimeoutError
        time.sleep(0.001)
    return time.monotonic() - t0


def pacing_and_latency(seconds: float = 6.0) -> None:
    name = f"bench-{uuid.uuid4().hex[:6]}"
    lags = []
    src = SyntheticEEG("rest:600", name=name, loop=True).open()
    with EEGStream(name) as eeg:
        eeg.add_listener(lambda c, ts: lags.append(pylsl.local_clock() - ts[-1]))
        src.start()
        time.sleep(1.0)  # steady state
        n0, t0 = eeg.n_samples_received, time.monotonic()
        time.sleep(seconds)
        n, wall = eeg.n_samples_received - n0, time.monotonic() - t0
        window_cost = []
        for _ in range(200):
            t = time.perf_counter()
            eeg.latest_window(512)
            window_cost.append(time.perf_counter() - t)
    src.close()
    lags_ms = np.array(lags) * 1e3
    print(f"pacing at 1x: {n} samples in {wall:.2f} s = {n / wall:.1f} Hz (nominal 256)")
    print(f"latency newest sample -> in the buffer: median {np.median(lags_ms):.1f} ms, "
          f"p99 {np.percentile(lags_ms, 99):.1f} ms (chunks of 1/16 s)")
    wc = np.array(window_cost) * 1e6
    print(f"latest_window(512 x 8) incl. health: median {np.median(wc):.0f} us, "
          f"p99 {np.percentile(wc, 99):.0f} us")


def stall_loss_reacquire(n_rep: int = 5) -> None:
    paused, lost, back = [], [], []
    for _ in range(n_rep):
        name = f"bench-{uuid.uuid4().hex[:6]}"
        src = SyntheticEEG("rest:600", name=name, loop=True)
        with src, EEGStream(name, stall_timeout=0.5) as eeg:
            _wait(lambda e=eeg: e.n_buffered >= 64)
            src.stop()  # the sender pauses (outlet still there)
            paused.append(_wait(lambda e=eeg: e.latest_window(64).health.stalled))
            src.start()
            _wait(lambda e=eeg: not e.blind)
            src.close()  # the outlet vanishes
            lost.append(_wait(lambda e=eeg: e.latest_window(64).health.stalled))
            t0 = time.monotonic()
            src.start()
            _wait(lambda e=eeg: e.n_reconnections == 1)
            _wait(lambda e=eeg: e.n_buffered >= 1)
            back.append(time.monotonic() - t0)
    for label, v in (("stalled after the sender paused (stall_timeout 0.5 s)", paused),
                     ("stalled after the outlet vanished", lost),
                     ("first sample after the outlet came back", back)):
        v = np.array(v)
        print(f"{label}: median {np.median(v) * 1e3:.0f} ms, max {v.max() * 1e3:.0f} ms "
              f"(n={len(v)})")


def replay_speed(path: str | None, speeds=(20.0, 40.0)) -> None:
    from bci.sources import synthesize_raw

    rec = path or synthesize_raw("rest:60,13:60,17:60", seed=1)
    for speed in speeds:
        name = f"bench-{uuid.uuid4().hex[:6]}"
        player = RecordingPlayer(rec, name=name, speed=speed, chunk_s=0.25).open()
        with EEGStream(name, buffer_s=5) as eeg:
            t0 = time.monotonic()
            player.start()
            player.wait(600)
            _wait(lambda e=eeg, p=player: e.n_samples_received >= p.n_times, timeout=30)
            wall = time.monotonic() - t0
            got = eeg.n_samples_received
        player.close()
        print(f"replay {player.duration:.0f} s at {speed:g}x: {wall:.2f} s wall = "
              f"{player.duration / wall:.1f}x, {got}/{player.n_times} "
              f"samples received")


def synthetic_cost() -> None:
    sig = make_signal("rest:30,13:30", seed=0)
    t = time.perf_counter()
    sig.generate(sig.n_cycle)
    dt = time.perf_counter() - t
    sig = make_signal("rest:30,13:30", seed=0)
    t = time.perf_counter()
    while sig.generate(16).shape[1]:
        pass
    dt16 = time.perf_counter() - t
    print(f"synthetic model: 60 s x 8 ch in {dt * 1e3:.0f} ms at once, {dt16 * 1e3:.0f} ms in "
          f"1/16 s chunks ({60 / dt16:.0f}x real time)")


def recorder_cost() -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "r.xdf"
        for fsync in (False, True):
            rec = SessionRecorder(path, ch_names=[f"c{i}" for i in range(8)], sfreq=256,
                                  fsync=fsync, flush_s=0.0).start()
            x = np.zeros((16, 8))
            t = time.perf_counter()
            for k in range(200):
                rec.push_eeg(x, k * 16 / 256 + np.arange(16) / 256)
            rec.close()
            dt = time.perf_counter() - t
            print(f"XDF recorder (fsync={fsync}): 200 chunks of 16 x 8 in {dt * 1e3:.0f} ms "
                  f"({dt / 200 * 1e3:.2f} ms per chunk), {path.stat().st_size} bytes")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--kalunga", default=None, help="a Kalunga *_raw.fif to replay")
    args = p.parse_args()
    pacing_and_latency()
    stall_loss_reacquire()
    replay_speed(args.kalunga)
    synthetic_cost()
    recorder_cost()


if __name__ == "__main__":
    main()
