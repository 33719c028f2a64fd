"""PNG plots of a session: decoder scores with cues and commands; the exoskeleton's path."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from bci.app.record import SessionRecord
from bci.app.summary import _canon
from bci.labels import label_to_freq


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _write_png(fig, path: str | Path) -> Path:
    """Save ``fig`` as ``path`` and close it (a long session draws many figures)."""
    fig.savefig(path)
    _pyplot().close(fig)
    return Path(path)


def plot_scores(record: SessionRecord, path: str | Path) -> Path:
    """Scores over time, cue periods shaded, commands marked; below, the exoskeleton's
    posture over time with the command menu in force (what each light meant).

    Log-probabilities (decoders with a calibrated rest class) are drawn as probabilities;
    cue labels that would run into each other are staggered on two rows or left out; refused
    commands are marked under the curves, their reasons listed in the legend.

    Parameters
    ----------
    record : SessionRecord
        The session: its decisions, cues, commands and telemetry are drawn.
    path : str | Path
        PNG file to write.

    Returns
    -------
    path : Path
    """
    return _write_png(scores_figure(record), path)


def scores_figure(record: SessionRecord):
    """The figure :func:`plot_scores` writes (a matplotlib Figure)."""
    plt = _pyplot()
    rec = record.snapshot()
    t0 = rec.t0 if rec.t0 is not None else (rec.decisions[0]["t"] if rec.decisions else 0.0)
    t_end = rec.t_end if rec.t_end is not None else (rec.decisions[-1]["t"] if rec.decisions
                                                     else t0 + 1)
    total = max(1.0, t_end - t0)
    fig, (ax, ax_menu) = plt.subplots(
        2, 1, figsize=(min(24.0, max(13.0, total / 10.0)), 6.8), dpi=110, sharex=True,
        gridspec_kw={"height_ratios": [5.5, 1.0]})
    classes = [_canon(c) for c in rec.classes]
    colors = {c: plt.cm.tab10(i % 10) for i, c in enumerate(c for c in classes if c != "rest")}
    colors["rest"] = (0.55, 0.55, 0.55, 1.0)
    n_exec = sum(1 for e in rec.events if e.get("event") == "command"
                 and e.get("result") == "executed")
    # cue periods
    cues = sorted(rec.cues)
    cue_labels = []
    for i, (tc, lab) in enumerate(cues):
        tn = cues[i + 1][0] if i + 1 < len(cues) else t_end
        lab = _canon(lab)
        color = colors.get(lab, (0.8, 0.8, 0.8, 1.0))
        alpha = 0.10 if lab == "rest" else 0.18
        ax.axvspan(tc - t0, tn - t0, color=color, alpha=alpha, lw=0)
        text = "rest" if lab == "rest" else lab
        cue_labels.append(ax.annotate(
            text, ((tc + tn) / 2 - t0, 1.0), xycoords=("data", "axes fraction"),
            xytext=(0, 2), textcoords="offset points", ha="center", va="bottom", fontsize=8,
            color="0.25", annotation_clip=False))
    # scores
    ylabel = "decoder score (unitless; higher = more likely)"
    if rec.decisions:
        t = np.array([d["t"] for d in rec.decisions]) - t0
        n = len(classes)
        s = np.full((len(rec.decisions), n), np.nan)
        for i, d in enumerate(rec.decisions):
            if len(d["scores"]) == n:
                s[i] = d["scores"]
        if _are_log_probabilities(s):
            s = np.exp(s)
            ylabel = "probability of each class (the decoder's estimate)"
            ax.set_ylim(-0.02, 1.02)
        for j, c in enumerate(classes):
            ax.plot(t, s[:, j], color=colors.get(c), lw=1.3, label=c)
    # commands
    first_exec = True
    refusals: Counter = Counter()
    for e in rec.events:
        if e.get("event") != "command":
            continue
        te = e["t"] - t0
        if e.get("result") == "executed":
            ax.axvline(te, color="black", lw=1.4, ls="-",
                       label="command executed" if first_exec else None)
            first_exec = False
            if n_exec <= total / 4:
                ax.text(te, 0.97, f"{e.get('command')}", transform=ax.get_xaxis_transform(),
                        rotation=90, va="top", ha="left", fontsize=9, fontweight="bold",
                        bbox={"fc": "white", "alpha": 0.85, "lw": 0, "pad": 1.0})
        elif e.get("result") in ("refused", "failed"):
            # under the curves, on the time axis; the reasons go to the legend
            ax.plot(te, 0.0, marker="x", color="red", ms=7, mew=1.6, ls="none",
                    transform=ax.get_xaxis_transform(), clip_on=False)
            refusals[f"{e.get('command') or e.get('label')}: "
                     f"{e.get('reason') or e.get('result')}"] += 1
    first_stop = True
    for e in rec.events:
        if e.get("event") == "safety_stop":
            ax.plot(e["t"] - t0, 0.0, marker="v", color="red", ms=7, ls="none",
                    transform=ax.get_xaxis_transform(), clip_on=False,
                    label="safety STOP (stall, bad signal, lag)" if first_stop else None)
            first_stop = False
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles, labels = ax.get_legend_handles_labels()
    if refusals:
        shown = refusals.most_common(4)
        more = sum(refusals.values()) - sum(k for _, k in shown)
        handles.append(Line2D([], [], marker="x", color="red", mew=1.6, ls="none"))
        labels.append("command refused:\n" + "\n".join(f"  {why} (x{k})" for why, k in shown)
                      + (f"\n  {more} more: see summary.json" if more else ""))
    for lab in sorted({_canon(lab) for _, lab in cues}):
        handles.append(Patch(color=colors.get(lab, (0.8, 0.8, 0.8, 1.0)),
                             alpha=0.15 if lab == "rest" else 0.3, lw=0))
        labels.append(f"cue {lab}")
    ax.set_xlim(0, total)
    _plot_menus(ax_menu, rec, t0, t_end)
    ax_menu.set_xlabel("time since session start (s)")
    ax.set_ylabel(ylabel)
    ax.set_title("Decoder scores; shaded: cue periods; vertical lines: commands", pad=28)
    ax.grid(alpha=0.3)
    if handles:
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8,
                  frameon=False)
    fig.tight_layout()
    _stagger_or_drop(cue_labels, fig)
    return fig


def _are_log_probabilities(scores: np.ndarray) -> bool:
    """True when every row of scores is a vector of log-probabilities (exp sums to 1)."""
    rows = scores[np.isfinite(scores).all(axis=1)]
    if not len(rows) or rows.max() > 1e-9:
        return False
    return bool(np.allclose(np.exp(rows).sum(axis=1), 1.0, atol=1e-3))


def _stagger_or_drop(labels: list, fig, rows: int = 2, gap_px: float = 10.0) -> None:
    """Cue labels above the axes, in time order: each goes on the first row where it does
    not run into the previous label of that row, or is left out (the shading and the legend
    still show the cue)."""
    renderer = fig.canvas.get_renderer()
    right = [-np.inf] * rows
    for ann in labels:
        for row in range(rows):
            ann.xyann = (0, 2 + 11 * row)
            box = ann.get_window_extent(renderer)
            if box.x0 > right[row] + gap_px:
                right[row] = box.x1
                break
        else:
            ann.remove()


def _plot_menus(ax, rec: SessionRecord, t0: float, t_end: float) -> None:
    """The posture over time (telemetry), each span labelled with its command menu."""
    ax.set_yticks([])
    ax.set_ylabel("menu", rotation=0, ha="right", va="center")
    spans: list[tuple[float, float, str]] = []
    for t, *_, posture in rec.poses:
        if spans and spans[-1][2] == posture:
            continue
        if spans:
            spans[-1] = (spans[-1][0], t, spans[-1][2])
        spans.append((t, t_end, posture))
    if not spans:
        ax.text(0.5, 0.5, "no telemetry: postures and menus unknown", ha="center",
                va="center", transform=ax.transAxes, fontsize=8, color="0.4")
        return
    shades: dict[str, float] = {}
    total = max(1.0, t_end - t0)
    min_text_s = total / (ax.figure.get_figwidth() * 1.2)
    for a, b, posture in spans:
        shade = shades.setdefault(posture, 0.95 - 0.07 * (len(shades) % 6))
        ax.axvspan(a - t0, b - t0, color=str(shade), lw=0)
        if b - a >= min_text_s:
            ax.text((a + b) / 2 - t0, 0.5, posture.lower(), ha="center", va="center",
                    fontsize=7, clip_on=True)
        ax.axvline(a - t0, color="0.5", lw=0.6)
    lines = []
    for posture in shades:
        menu = rec.menus.get(posture, {})
        lines.append(f"{posture.lower()}: " + (", ".join(
            f"{label_to_freq(k):g} Hz {v}" for k, v in menu.items()) if menu else "-"))
    ax.text(1.01, 0.5, "\n".join(lines), transform=ax.transAxes, ha="left", va="center",
            fontsize=7)


def plot_path(record: SessionRecord, path: str | Path) -> Path:
    """The exoskeleton's path in the plane (from telemetry), coloured by time.

    When it never left its place, the plot says "no motion" (and any posture change) instead
    of a path and a colour bar over an instant.

    Parameters
    ----------
    record : SessionRecord
        The session: its telemetry (poses and postures) is drawn.
    path : str | Path
        PNG file to write.

    Returns
    -------
    path : Path
    """
    return _write_png(path_figure(record), path)


#: Below these the exoskeleton is taken not to have moved (telemetry noise, rounding).
STILL_M, STILL_DEG = 0.01, 1.0


def path_figure(record: SessionRecord):
    """The figure :func:`plot_path` writes (a matplotlib Figure)."""
    plt = _pyplot()
    rec = record.snapshot()
    fig, ax = plt.subplots(figsize=(7, 7), dpi=110)
    if not rec.poses:
        ax.text(0.5, 0.5, "no telemetry received", ha="center", va="center",
                transform=ax.transAxes)
        ax.set_title("Exoskeleton path")
    else:
        t0 = rec.t0 if rec.t0 is not None else rec.poses[0][0]
        p = np.array([[q[0] - t0, q[1], q[2], q[3]] for q in rec.poses])
        postures = [q[4] for i, q in enumerate(rec.poses) if i == 0 or q[4] != rec.poses[i - 1][4]]
        moved = max(np.ptp(p[:, 1]), np.ptp(p[:, 2])) > STILL_M or \
            np.ptp(np.unwrap(np.deg2rad(p[:, 3]))) > np.deg2rad(STILL_DEG)
        if moved:
            _draw_path(fig, ax, rec, p, t0)
            ax.set_title(f"Exoskeleton path (final posture: {postures[-1]}, heading "
                         f"{p[-1, 3]:.0f} deg)")
        else:
            _draw_still(ax, p, postures)
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def _draw_path(fig, ax, rec: SessionRecord, p: np.ndarray, t0: float) -> None:
    """The path coloured by time, start and end, the commands where they were executed."""
    ax.plot(p[:, 1], p[:, 2], color="0.6", lw=1, zorder=1)
    sc = ax.scatter(p[:, 1], p[:, 2], c=p[:, 0], cmap="viridis", s=14, zorder=2)
    fig.colorbar(sc, ax=ax, shrink=0.8, label="time since session start (s)")
    # the start as a ring around the end marker when the exoskeleton came back (or turned
    # in place): both stay visible
    ax.plot(p[0, 1], p[0, 2], "o", mfc="none", mec="green", mew=2.5, ms=17, label="start",
            zorder=4)
    ax.plot(p[-1, 1], p[-1, 2], "s", color="red", ms=9, label="end", zorder=3)
    span = max(np.ptp(p[:, 1]), np.ptp(p[:, 2]), 1.0)
    _heading_arrow(ax, p[-1], length=0.08 * span)  # longer than the end marker at any scale
    poses_t = p[:, 0]
    at: dict[int, list[str]] = {}
    for e in rec.events:
        if e.get("event") == "command" and e.get("result") == "executed":
            i = int(np.clip(np.searchsorted(poses_t, e["t"] - t0), 0, len(p) - 1))
            # group commands issued at the same place
            j = next((k for k in at if np.hypot(*(p[k, 1:3] - p[i, 1:3])) < 0.05), i)
            at.setdefault(j, []).append(f"{len(sum(at.values(), [])) + 1}. "
                                        f"{e.get('command')}")
    for n, (i, names) in enumerate(sorted(at.items())):
        ax.annotate("\n".join(names), (p[i, 1], p[i, 2]), xytext=(8, -10 - 4 * (n % 2)),
                    textcoords="offset points", fontsize=9, va="top",
                    bbox={"boxstyle": "round", "fc": "white", "alpha": 0.8, "lw": 0.5})
    cx, cy = (p[:, 1].max() + p[:, 1].min()) / 2, (p[:, 2].max() + p[:, 2].min()) / 2
    ax.set_xlim(cx - 0.65 * span, cx + 0.65 * span)
    ax.set_ylim(cy - 0.65 * span, cy + 0.65 * span)
    ax.legend(loc="best")


def _draw_still(ax, p: np.ndarray, postures: list[str]) -> None:
    """No motion: where the exoskeleton stood, its heading, and what changed (posture)."""
    x, y = p[0, 1], p[0, 2]
    ax.plot(x, y, "o", color="0.35", ms=10, zorder=3)
    _heading_arrow(ax, p[-1], color="0.35")
    changed = " -> ".join(postures)
    what = (f"posture {changed}" if len(postures) > 1 else f"posture {postures[0]} throughout")
    ax.text(0.5, 0.1, f"no motion: the exoskeleton stayed at x = {x:+.2f} m, y = {y:+.2f} m,\n"
                      f"heading {p[0, 3]:.0f} deg ({what})",
            transform=ax.transAxes, ha="center", va="center", fontsize=10,
            bbox={"boxstyle": "round", "fc": "white", "lw": 0.5})
    ax.set_xlim(x - 1.0, x + 1.0)
    ax.set_ylim(y - 1.0, y + 1.0)
    ax.set_title("Exoskeleton path: no motion" + (f" (posture {changed})"
                                                  if len(postures) > 1 else ""))


def _heading_arrow(ax, pose: np.ndarray, color: str = "red", length: float = 0.3) -> None:
    h = np.deg2rad(pose[3])
    ax.annotate("", xy=(pose[1] + length * np.cos(h), pose[2] + length * np.sin(h)),
                xytext=(pose[1], pose[2]),
                arrowprops={"arrowstyle": "->", "lw": 2, "color": color})
