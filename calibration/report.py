"""The calibration report: a table of the candidates and PNG plots."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class CalibrationReport:
    """What model selection measured.

    Attributes
    ----------
    records : list of dict
        Cross-validation per candidate (``method, window_s, accuracy, itr_bits_per_min,
        false_per_min`` ...).
    selected : dict
        The chosen candidate and its thresholds.
    far_curve : list of dict
        False activations per minute of rest against ``min_margin`` for the chosen decoder.
    far_target_per_min : float
        The false-activation target.
    plots : list of Path
        PNG files written by :meth:`plot`.
    notes : list of str
        One-line remarks for the user (e.g. candidates skipped), printed under the table.
    """

    records: list[dict]
    selected: dict
    far_curve: list[dict] = field(default_factory=list)
    far_target_per_min: float = 1.0
    plots: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def table(self) -> str:
        """A plain-text table of the candidates (the chosen one is starred)."""
        head = (f"{'':1} {'method':<10} {'window s':>8} {'classes':>7} {'accuracy':>8} "
                f"{'ITR b/min':>9} {'FA/min':>7}")
        lines = [head, "-" * len(head)]
        for r in self.records:
            star = "*" if (r["method"], r["window_s"]) == (
                self.selected.get("method"), self.selected.get("window_s")) else " "
            fa = r.get("false_per_min")
            fa_s = "-" if fa is None or (isinstance(fa, float) and math.isnan(fa)) else f"{fa:.2f}"
            lines.append(f"{star} {r['method']:<10} {r['window_s']:>8.2f} {r['n_classes']:>7d} "
                         f"{100 * r['accuracy']:>7.1f}% {r['itr_bits_per_min']:>9.1f} {fa_s:>7}")
        s = self.selected
        if s:
            lines.append("")
            lines.append(
                f"selected: {s.get('method')} {s.get('window_s'):g} s, min_margin "
                f"{s.get('min_margin', 0.0):.4g}, false activations "
                f"{_f(s.get('false_per_min'))}/min of rest (target {self.far_target_per_min:g}), "
                f"target trials reached {s.get('target_segments_hit', '-')}/"
                f"{s.get('target_segments', '-')}"
            )
        lines.extend(self.notes)
        return "\n".join(lines)

    def plot(self, directory: str | Path) -> list[Path]:
        """Write ``calibration_accuracy_itr.png`` and ``calibration_false_activations.png``."""
        from matplotlib.figure import Figure  # no pyplot: no GUI backend, faster import

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        paths = []
        fig = Figure(figsize=(10, 4))
        ax1, ax2 = fig.subplots(1, 2)
        for m in sorted({r["method"] for r in self.records}):
            rs = sorted((r for r in self.records if r["method"] == m), key=lambda r: r["window_s"])
            w = [r["window_s"] for r in rs]
            ax1.plot(w, [100 * r["accuracy"] for r in rs], "o-", label=m)
            ax2.plot(w, [r["itr_bits_per_min"] for r in rs], "o-", label=m)
        if self.records:
            chance = 100.0 / self.records[0]["n_classes"]
            ax1.axhline(chance, color="grey", ls=":", label="chance")
        sel = self.selected
        if sel:
            ax1.plot([sel["window_s"]], [100 * sel["accuracy"]], "k*", ms=14, label="selected")
        ax1.set(xlabel="window (s)", ylabel="cross-validated accuracy (%)", ylim=(0, 100),
                title="Accuracy vs window")
        ax2.set(xlabel="window (s)", ylabel="ITR (bits/min)", title="ITR vs window")
        ax1.legend(fontsize=8)
        ax2.legend(fontsize=8)
        fig.tight_layout()
        p = d / "calibration_accuracy_itr.png"
        fig.savefig(p, dpi=100)
        paths.append(p)
        if self.far_curve:
            fig = Figure(figsize=(6, 4))
            ax = fig.subplots()
            xs = [c["min_margin"] for c in self.far_curve]
            ax.plot(xs, [c["false_per_min"] for c in self.far_curve], "o-",
                    label="false activations (rest)")
            ax.axhline(self.far_target_per_min, color="r", ls="--", label="target")
            if sel and "min_margin" in sel:
                ax.axvline(sel["min_margin"], color="k", ls=":", label="chosen threshold")
            ax2b = ax.twinx()
            tot = [max(1, c["target_segments"]) for c in self.far_curve]
            ax2b.plot(xs, [100 * c["target_segments_hit"] / t for c, t in zip(self.far_curve, tot)],
                      "s-", color="tab:green", label="target trials reached")
            ax2b.set_ylabel("target trials with the right command (%)", color="tab:green")
            ax2b.set_ylim(0, 105)
            ax.set(xlabel="min_margin (decision threshold)",
                   ylabel="commands per minute of rest",
                   title=f"{sel.get('method')} {sel.get('window_s'):g} s: false activations")
            handles, labels = ax.get_legend_handles_labels()
            more, more_labels = ax2b.get_legend_handles_labels()  # the hit-rate curve
            ax.legend(handles + more, labels + more_labels, loc="upper right", fontsize=8)
            fig.tight_layout()
            p = d / "calibration_false_activations.png"
            fig.savefig(p, dpi=100)
            paths.append(p)
        self.plots = paths
        return paths

    def to_dict(self) -> dict:
        """Plain-JSON form."""
        return {"records": self.records, "selected": self.selected,
                "far_curve": self.far_curve, "far_target_per_min": self.far_target_per_min,
                "plots": [str(p) for p in self.plots], "notes": list(self.notes)}


def _f(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.2f}"
