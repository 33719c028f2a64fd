"""Reports of evaluation records: a table on screen, CSV, JSON and PNG plots."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bci.evaluation.sweep import summarize

#: Record keys written to CSV, in this order (other keys follow, sorted).
CSV_KEYS = (
    "subject", "method", "window_s", "n_classes", "scheme", "accuracy", "itr_bits_per_min",
    "itr_bits_per_min_gaze", "gaze_shift_s", "accuracy_std", "n_trials", "n_test_trials",
    "n_sessions", "prefilter", "tmin_s", "available", "note",
)  # fmt: skip


def _pct(x) -> str:
    return "  n/a" if x is None else f"{100 * x:5.1f}"


def _itr(x) -> str:
    return "  n/a" if x is None else f"{x:5.1f}"


def format_table(records: Sequence[dict], *, per_subject: bool = False) -> str:
    """Accuracy (%) and ITR (bits/min) per method and window, mean over subjects.

    One block per scheme and class count; with ``per_subject`` each subject gets its own
    rows below the mean.
    """
    summary = summarize(records)
    windows = sorted({r["window_s"] for r in summary})
    lines = []
    blocks = sorted(
        {(r["scheme"], r["n_classes"]) for r in summary}, key=lambda b: (b[0] != "within", b[1])
    )
    for scheme, n in blocks:
        rows = [r for r in summary if r["scheme"] == scheme and r["n_classes"] == n]
        n_subj = max(r["n_subjects"] for r in rows)
        gaze = rows[0]["gaze_shift_s"]
        lines.append("")
        lines.append(
            f"{scheme}-{'session CV (5-fold, sessions pooled)' if scheme == 'within' else 'session (calibrate on one session, test on another)'}"
            f", {n} classes, mean over {n_subj} subject(s): accuracy % | ITR bits/min "
            f"(ITR with {gaze:g} s gaze shift)"
        )
        width = max(12, *(len(r["method"]) for r in rows)) if per_subject is False else 24
        header = f"  {'method':<{width}}" + "".join(f" | {w:>5g} s acc  ITR (+gz)" for w in windows)
        lines.append(header)
        lines.append("  " + "-" * (len(header) - 2))
        methods = list(dict.fromkeys(r["method"] for r in rows))
        for m in methods:
            cells = []
            for w in windows:
                r = next((r for r in rows if r["method"] == m and r["window_s"] == w), None)
                if r is None:
                    cells.append(" " * 23)
                else:
                    cells.append(
                        f"{_pct(r['accuracy'])} {_itr(r['itr_bits_per_min'])} ({_itr(r['itr_bits_per_min_gaze']).strip():>4})"
                    )
            lines.append(f"  {m:<{width}}" + "".join(f" | {c:>21}" for c in cells))
            if per_subject:
                subs = [
                    r
                    for r in records
                    if r["method"] == m and r["scheme"] == scheme and r["n_classes"] == n
                ]
                for s in dict.fromkeys(r["subject"] for r in subs):
                    cells = []
                    for w in windows:
                        r = next(
                            (r for r in subs if r["subject"] == s and r["window_s"] == w), None
                        )
                        acc = None if r is None else r["accuracy"]
                        itr = None if r is None else r["itr_bits_per_min"]
                        itg = None if r is None else r["itr_bits_per_min_gaze"]
                        cells.append(f"{_pct(acc)} {_itr(itr)} ({_itr(itg).strip():>4})")
                    lines.append(f"    {s:<{width - 2}}" + "".join(f" | {c:>21}" for c in cells))
        unavailable = sum(r["n_not_available"] for r in rows)
        if unavailable:
            lines.append(
                f"  ({unavailable} subject/method result(s) not available, e.g. one session only)"
            )
    return "\n".join(lines).lstrip("\n")


def _plain(value):
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def write_json(records: Sequence[dict], path: str | os.PathLike) -> Path:
    """Write the records as a JSON list (one object per record)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(list(records), indent=1, default=_plain) + "\n")
    return path


def write_csv(records: Sequence[dict], path: str | os.PathLike) -> Path:
    """Write the records as CSV (lists such as the confusion matrix as JSON text)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = [k for k in CSV_KEYS if any(k in r for r in records)]
    keys += sorted({k for r in records for k in r} - set(keys))
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        for r in records:
            writer.writerow(
                {k: json.dumps(v, default=_plain) if isinstance(v, (list, dict)) else v
                 for k, v in r.items()}
            )  # fmt: skip
    return path


def plot_sweep(records: Sequence[dict], outdir: str | os.PathLike) -> list[Path]:
    """PNG per scheme and class count: accuracy and ITR against window length per method."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    summary = summarize(records)
    paths = []
    for scheme, n in sorted({(r["scheme"], r["n_classes"]) for r in summary}):
        rows = [r for r in summary if r["scheme"] == scheme and r["n_classes"] == n]
        if all(r["accuracy"] is None for r in rows):
            continue
        fig, (ax_acc, ax_itr) = plt.subplots(1, 2, figsize=(12.5, 4.8), constrained_layout=True)
        handles = []
        for m in dict.fromkeys(r["method"] for r in rows):
            mr = sorted((r for r in rows if r["method"] == m and r["accuracy"] is not None),
                        key=lambda r: r["window_s"])  # fmt: skip
            if not mr:
                continue
            w = [r["window_s"] for r in mr]
            acc = np.array([100 * r["accuracy"] for r in mr])
            sd = np.array([100 * (r["accuracy_std"] or 0.0) for r in mr])
            (line,) = ax_acc.plot(w, acc, "o-", label=m, lw=2)
            ax_acc.fill_between(w, acc - sd, acc + sd, color=line.get_color(), alpha=0.08)
            color = line.get_color()
            ax_itr.plot(w, [r["itr_bits_per_min"] for r in mr], "o-", color=color, lw=2)
            ax_itr.plot(w, [r["itr_bits_per_min_gaze"] for r in mr], "o--", color=color,
                        lw=1.2, alpha=0.7, ms=4)  # fmt: skip
            handles.append(line)
        chance = ax_acc.axhline(
            100 / n, color="0.3", ls=":", lw=1.5, label=f"chance ({100 / n:.0f} %)"
        )
        ax_acc.set(xlabel="window length (s)", ylabel="accuracy (%)", ylim=(0, 100),
                   title="accuracy (mean over subjects, band = ± 1 SD)")  # fmt: skip
        gaze = rows[0]["gaze_shift_s"]
        ax_itr.set(xlabel="window length (s)", ylabel="ITR (bits/min, Wolpaw)", ylim=(0, None),
                   title=f"ITR: solid = window only, dashed = window + {gaze:g} s gaze shift")  # fmt: skip
        for ax in (ax_acc, ax_itr):
            ax.grid(alpha=0.3)
            ax.set_xticks(sorted({r["window_s"] for r in rows}))
        fig.legend(handles=[*handles, chance], loc="outside right center", fontsize=10,
                   title="method")  # fmt: skip
        n_subj = max(r["n_subjects"] for r in rows)
        fig.suptitle(f"{scheme}-session evaluation, {n} classes, {n_subj} subject(s)", fontsize=13)
        path = outdir / f"sweep_{scheme}_{n}class.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def plot_confusions(records: Sequence[dict], outdir: str | os.PathLike) -> list[Path]:
    """PNG per scheme, class count and window: row-normalised confusion matrix per method,
    summed over subjects."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    paths = []
    keys = sorted(
        {(r["scheme"], r["n_classes"], r["window_s"]) for r in records if r.get("confusion")}
    )
    for scheme, n, w in keys:
        rs = [r for r in records if (r["scheme"], r["n_classes"], r["window_s"]) == (scheme, n, w)
              and r.get("confusion")]  # fmt: skip
        methods = list(dict.fromkeys(r["method"] for r in rs))
        labels = rs[0]["classes"]
        cols = min(4, len(methods))
        nrows = int(np.ceil(len(methods) / cols))
        fig, axes = plt.subplots(nrows, cols, figsize=(3.3 * cols + 0.8, 3.3 * nrows + 0.6),
                                 squeeze=False, constrained_layout=True)  # fmt: skip
        im = None
        for ax, m in zip(axes.flat, methods):
            cm = np.sum([np.asarray(r["confusion"]) for r in rs if r["method"] == m], axis=0)
            pct = 100 * cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
            im = ax.imshow(pct, vmin=0, vmax=100, cmap="Blues")
            for i in range(len(labels)):
                for j in range(len(labels)):
                    ax.text(j, i, f"{pct[i, j]:.0f}", ha="center", va="center", fontsize=9,
                            color="white" if pct[i, j] > 60 else "black")  # fmt: skip
            acc = np.trace(cm) / max(cm.sum(), 1)
            ax.set_title(
                f"{m}\n(pooled accuracy {100 * acc:.1f} %, {cm.sum()} trials)", fontsize=10
            )
            ax.set_xticks(range(len(labels)), labels, rotation=45, fontsize=8)
            ax.set_yticks(range(len(labels)), labels, fontsize=8)
            ax.set_xlabel("predicted", fontsize=9)
            ax.set_ylabel("true", fontsize=9)
        for ax in list(axes.flat)[len(methods) :]:
            ax.axis("off")
        if im is not None:
            fig.colorbar(im, ax=axes, shrink=0.8, label="% of the true class's trials")
        fig.suptitle(f"Confusion (% of true class), {scheme}-session, {n} classes, {w:g} s windows")
        path = outdir / f"confusion_{scheme}_{n}class_{w:g}s.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths
