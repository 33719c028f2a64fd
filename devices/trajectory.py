"""The simulated exoskeleton's path: CSV file and a PNG drawing (path, posture changes, stops)."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

from devices.errors import DeviceError

COLUMNS = ("t", "state", "x", "y", "heading", "steps", "fault")


def write_trajectory(rows: Sequence[Sequence], path: str | Path) -> Path:
    """Write trajectory rows (t, state, x, y, heading, steps, fault) as CSV; return the path."""
    path = Path(path)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        w.writerows(rows)
    return path


def read_trajectory(path: str | Path) -> list[tuple]:
    """Read a CSV written by :func:`write_trajectory`."""
    path = Path(path)
    try:
        with path.open(newline="") as fh:
            r = csv.reader(fh)
            if tuple(next(r, ())) != COLUMNS:
                raise DeviceError(f"{path} is not a trajectory file (expected the header "
                                  f"{','.join(COLUMNS)}).")
            return [(float(t), s, float(x), float(y), float(h), int(n), f)
                    for t, s, x, y, h, n, f in r]
    except FileNotFoundError:
        raise DeviceError(f"Trajectory file {path} not found.") from None
    except ValueError as exc:
        raise DeviceError(f"{path} has a malformed row ({exc}).") from None


def plot_trajectory(rows: Sequence[Sequence] | str | Path, png_path: str | Path,
                    title: str = "Exoskeleton path") -> Path:
    """Draw the path (x, y) with posture changes, stops and faults marked; save a PNG."""
    import matplotlib  # heavy, and only needed to draw: imported on first use

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if isinstance(rows, (str, Path)):
        rows = read_trajectory(rows)
    fig, ax = plt.subplots(figsize=(6, 6))
    xs = [r[2] for r in rows] or [0.0]
    ys = [r[3] for r in rows] or [0.0]
    ax.plot(xs, ys, "-", color="tab:blue", lw=2, label="path")
    ax.plot(xs[0], ys[0], "o", color="tab:green", ms=9, label="start")
    marks = {"SITTING": ("v", "tab:purple", "sit"), "STANDING": ("^", "tab:olive", "stand"),
             "STOPPED": ("s", "tab:orange", "stop"), "FAULT": ("X", "tab:red", "fault"),
             "ESTOP": ("X", "black", "e-stop")}
    shown = set()
    prev = None
    for r in rows:
        state = r[1]
        posture_change = state in ("SITTING", "STANDING") and prev in ("SITTING", "STANDING",
                                                                       "STOPPED")
        if (state != prev and state in marks and prev is not None
                and (posture_change or state not in ("SITTING", "STANDING"))):
            m, c, lab = marks[state]
            ax.plot(r[2], r[3], m, color=c, ms=10, label=None if lab in shown else lab)
            shown.add(lab)
        prev = state
    if rows:
        h = math.radians(rows[-1][4])
        ax.annotate("", xy=(xs[-1] + 0.3 * math.cos(h), ys[-1] + 0.3 * math.sin(h)),
                    xytext=(xs[-1], ys[-1]), arrowprops={"arrowstyle": "->", "lw": 2})
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_aspect("equal", adjustable="datalim")
    ax.grid(True, alpha=0.3)
    ax.set_title(title)
    ax.legend(loc="best", fontsize=8)
    png_path = Path(png_path)
    fig.savefig(png_path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return png_path
