"""Pin-trace analysis of the reference firmware (devices.led_trace), on synthetic traces."""

from __future__ import annotations

import numpy as np
import pytest

from devices.led_trace import TICK_NS, Edges, flicker_runs, measure_run, read_trace


def square_wave(freq: float, start_ns: int, duration_s: float, *, tick_ns: int = TICK_NS,
                latency_ns: int = 0) -> list[tuple[int, int]]:
    """Edges of a 50 % square wave starting on (ending dark), rounded up to the tick grid."""
    n_half = int(duration_s * freq * 2)
    ideal = start_ns + np.arange(n_half) * (1e9 / (2 * freq))
    on_grid = np.ceil((ideal - start_ns) / tick_ns) * tick_ns + start_ns + latency_ns
    return [(int(t), 1 - k % 2) for k, t in enumerate(on_grid)]


def write_trace(path, rows: dict[str, list[tuple[int, int]]]) -> None:
    lines = ["t_ns,wall_ns,signal,value"]
    for name, edges in rows.items():
        lines += [f"{t},{t + 5_000_000},{name},{v}" for t, v in edges]
    path.write_text("\n".join(lines) + "\n")


def test_measures_frequency_duty_and_tick_jitter(tmp_path):
    start = 3_000_000
    write_trace(tmp_path / "t.csv", {
        "led1": [(400_000, 0)] + square_wave(13.0, start, 4.0, latency_ns=62),
        "motor": [(400_000, 0), (1_000_000, 1)],
    })
    tr = read_trace(tmp_path / "t.csv")
    assert set(tr) == {"led1", "motor"}
    assert tr["led1"].wall_ns[1] - tr["led1"].t_ns[1] == 5_000_000
    (run,) = flicker_runs(tr["led1"])
    assert run.t_ns[0] == start + 62 and run.value[0] == 1  # the boot level is not a run
    m = measure_run(run, 13.0)
    assert abs(m.freq_hz - 13.0) < 1e-3
    assert m.duty == pytest.approx(0.5, abs=0.002)
    assert m.jitter_pp_s <= TICK_NS * 1e-9 + 1e-9  # quantisation to the tick: below one tick
    assert m.jitter_rms_s == pytest.approx(TICK_NS * 1e-9 / np.sqrt(12), rel=0.2)
    assert m.tick_latency_pp_s == 0.0  # a constant latency after the tick
    assert m.cycles == 51 and m.duration_s == pytest.approx(51.5 / 13, abs=1e-4)  # to the last fall


def test_a_wrong_frequency_shows(tmp_path):
    write_trace(tmp_path / "t.csv", {"led2": square_wave(17.1, 0, 4.0)})
    (run,) = flicker_runs(read_trace(tmp_path / "t.csv")["led2"])
    m = measure_run(run, 17.0)
    assert m.freq_hz == pytest.approx(17.1, abs=1e-3)
    assert m.jitter_pp_s > 0.01  # the edges drift away from a 17 Hz wave


def test_runs_are_cut_at_pauses_and_a_cut_short_last_pulse_is_left_out():
    first = square_wave(21.0, 0, 1.0)
    second = square_wave(21.0, 3_000_000_000, 1.0)
    rows = first + second[:-2] + [(second[-2][0] - 5 * TICK_NS, 0)]  # LEDOFF mid-pulse
    edges = Edges(*(np.array(c) for c in zip(*[(t, t, v) for t, v in rows])))
    runs = flicker_runs(edges)
    assert [len(r) for r in runs] == [len(first), len(second) - 1]
    m = measure_run(runs[1], 21.0)
    assert abs(m.duty - 0.5) < 0.002  # the shortened pulse does not count
    with pytest.raises(ValueError, match="at least 3 rising edges"):
        measure_run(flicker_runs(Edges(*(np.array(c) for c in zip(
            *[(t, t, v) for t, v in square_wave(1.0, 0, 1.5)]))))[0], 1.0)


def test_not_a_trace(tmp_path):
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a firmware pin trace"):
        read_trace(tmp_path / "x.csv")
