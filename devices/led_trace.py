"""Read and measure pin traces of the reference firmware (``devices/firmware``).

A trace is the CSV the simavr runner (or the host build) writes with ``--trace``: one row per
pin edge, ``t_ns,wall_ns,signal,value``. ``t_ns`` is the board's time (simulated cycles of the
16 MHz clock, in ns); ``wall_ns`` is the ``CLOCK_MONOTONIC`` time at which the simulation
produced the edge, the clock of :func:`time.monotonic` and of ``pylsl.local_clock`` on Linux,
so the edge can be compared with what the host saw.

:func:`flicker_runs` cuts one light's edges into runs (one LEDON each) and
:func:`measure_run` measures a run: frequency, duty cycle, and edge jitter.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass

import numpy as np

#: Timer tick of the reference firmware's LED engine (10 kHz): edges lie on this grid.
TICK_NS = 100_000


@dataclass(frozen=True)
class Edges:
    """The edges of one signal, in order.

    Attributes
    ----------
    t_ns : numpy.ndarray of int64
        Board time of each edge.
    wall_ns : numpy.ndarray of int64
        Host monotonic time at which the edge was produced.
    value : numpy.ndarray of int8
        Level after the edge (1 high, 0 low).
    """

    t_ns: np.ndarray
    wall_ns: np.ndarray
    value: np.ndarray

    def __len__(self) -> int:
        return len(self.t_ns)

    def select(self, mask: np.ndarray) -> Edges:
        """Return the edges where ``mask`` holds."""
        return Edges(self.t_ns[mask], self.wall_ns[mask], self.value[mask])


def read_trace(path: str | os.PathLike) -> dict[str, Edges]:
    """Return the edges of every signal in a trace file, keyed by signal name."""
    rows: dict[str, list[tuple[int, int, int]]] = {}
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames != ["t_ns", "wall_ns", "signal", "value"]:
            raise ValueError(f"{path} is not a firmware pin trace (header "
                             f"{reader.fieldnames}, expected t_ns,wall_ns,signal,value).")
        for row in reader:
            rows.setdefault(row["signal"], []).append(
                (int(row["t_ns"]), int(row["wall_ns"]), int(row["value"])))
    out = {}
    for name, r in rows.items():
        a = np.array(r, dtype=np.int64)
        order = np.argsort(a[:, 0], kind="stable")
        a = a[order]
        out[name] = Edges(a[:, 0], a[:, 1], a[:, 2].astype(np.int8))
    return out


def flicker_runs(edges: Edges, *, gap_s: float = 1.5) -> list[Edges]:
    """Cut a light's edges into runs: a pause longer than ``gap_s`` dark ends a run.

    Each run starts at its first rising edge and ends with its last falling edge (the light
    is dark between runs). Choose ``gap_s`` above the longest period in use (1 s at 1 Hz).
    """
    v, t = edges.value, edges.t_ns
    idx = np.arange(len(edges))
    rises = np.flatnonzero(v == 1)
    if len(rises) == 0:
        return []
    pause = (v[1:] == 1) & (v[:-1] == 0) & (np.diff(t) > gap_s * 1e9)
    cuts = sorted({int(rises[0])} | {int(i) + 1 for i in np.flatnonzero(pause)
                                     if i + 1 > rises[0]})
    runs = []
    for a, b in zip(cuts, cuts[1:] + [len(edges)]):
        run = edges.select((idx >= a) & (idx < b))
        if len(run) and run.value[-1] == 1:  # a rise still waiting for its fall
            run = run.select(np.arange(len(run)) < len(run) - 1)
        if len(run) >= 2:
            runs.append(run)
    return runs


@dataclass(frozen=True)
class FlickerMeasurement:
    """What one run of a light measured from its edges.

    Attributes
    ----------
    cycles : int
        Complete cycles (rising edges minus one).
    duration_s : float
        From the first rising edge to the last falling edge.
    freq_hz : float
        Least-squares frequency of the rising edges.
    duty : float
        Mean on-time over mean period (0..1).
    period_min_s, period_max_s : float
        Shortest and longest period (rise to rise).
    jitter_rms_s, jitter_pp_s : float
        Deviation of every edge (rises and falls) from the ideal square wave of the requested
        frequency and 50 % duty, best aligned in time: RMS and peak to peak.
    tick_latency_pp_s : float
        Spread of the edges' offsets from the 100 us timer grid (interrupt latency variation;
        the rest of the jitter is the tick quantisation).
    """

    cycles: int
    duration_s: float
    freq_hz: float
    duty: float
    period_min_s: float
    period_max_s: float
    jitter_rms_s: float
    jitter_pp_s: float
    tick_latency_pp_s: float


def measure_run(run: Edges, requested_hz: float) -> FlickerMeasurement:
    """Measure one run of a light that was asked for ``requested_hz`` (started at phase 0)."""
    if requested_hz <= 0:
        raise ValueError(f"'requested_hz' must be positive, got {requested_hz!r}.")
    t = run.t_ns.astype(np.float64) * 1e-9
    rises = t[run.value == 1]
    falls = t[run.value == 0]
    n_on = min(len(rises), len(falls))
    if n_on >= 3:  # a run cut short by LEDOFF or its timer may end with a shortened on-time
        on = falls[:n_on] - rises[:n_on]
        if abs(on[-1] - np.median(on)) > 1.5 * TICK_NS * 1e-9:
            rises, falls = rises[:n_on - 1], falls[:n_on - 1]
    if len(rises) < 3:
        raise ValueError(f"A run needs at least 3 rising edges to be measured, got {len(rises)}.")
    k = np.arange(len(rises))
    slope = np.polyfit(k, rises, 1)[0]
    periods = np.diff(rises)
    # on-times: each rise with the next fall
    n_on = min(len(rises), len(falls))
    on = falls[:n_on] - rises[:n_on]
    duty = float(np.mean(on) / np.mean(periods))
    # every edge against the ideal wave: edge j at j / (2 f) from the first rise
    edges_t = np.sort(np.concatenate([rises, falls]))
    j = np.arange(len(edges_t))
    resid = edges_t - edges_t[0] - j / (2.0 * requested_hz)
    resid -= resid.mean()
    grid = np.mod(run.t_ns, TICK_NS).astype(np.float64) * 1e-9
    return FlickerMeasurement(
        cycles=len(rises) - 1,
        duration_s=float(falls[-1] - rises[0]) if len(falls) else float("nan"),
        freq_hz=float(1.0 / slope),
        duty=duty,
        period_min_s=float(periods.min()),
        period_max_s=float(periods.max()),
        jitter_rms_s=float(np.sqrt(np.mean(resid ** 2))),
        jitter_pp_s=float(resid.max() - resid.min()),
        tick_latency_pp_s=float(grid.max() - grid.min()),
    )
