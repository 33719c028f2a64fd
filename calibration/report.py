"""The calibration report: a table of the candidates and PNG plots."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from calibration.rest_model import describe_prediction


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
        False activations per minute of rest and hit rate against the policy's threshold
        for the chosen decoder (out-of-fold replay of the calibration data).
    max_false_per_min : float
        The false-activation budget.
    plots : list of Path
        PNG files written by :meth:`plot`.
    notes : list of str
        One-line remarks for the user (e.g. candidates skipped), printed under the table.
    """

    records: list[dict]
    selected: dict
    far_curve: list[dict] = field(default_factory=list)
    max_false_per_min: float = 0.5
    plots: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def table(self) -> str:
        """A plain-text table of the candidates (the chosen one is starred)."""
        head = (f"{'':1} {'method':<10} {'window s':>8} {'classes':>7} {'accuracy':>8} "
                f"{'ITR b/min':>9}")
        lines = [head, "-" * len(head)]
        for r in self.records:
            star = "*" if (r["method"], r["window_s"]) == (
                self.selected.get("method"), self.selected.get("window_s")) else " "
            lines.append(f"{star} {r['method']:<10} {r['window_s']:>8.2f} {r['n_classes']:>7d} "
                         f"{100 * r['accuracy']:>7.1f}% {r['itr_bits_per_min']:>9.1f}")
        s = self.selected
        if s:
            lines.append("")
            lines.append(
                f"selected: {s.get('method')} {s.get('window_s'):g} s, evidence threshold "
                f"{s.get('threshold', 0.0):.4g}; on the calibration data (out of fold): "
                f"{_f(s.get('false_per_min'))} false activations/min of rest (budget "
                f"{self.max_false_per_min:g}), hits {_pct(s.get('hit_rate'))}, wrong "
                f"{_pct(s.get('wrong_command_rate'))}, median "
                f"{_f(s.get('median_time_to_command_s'))} s from cue"
            )
            pf = s.get("predicted_false")
            if pf:
                lines.append(describe_prediction(pf, self.max_false_per_min))
        lines.extend(self.notes)
        return "\n".join(lines)

    def plot(self, directory: str | Path) -> list[Path]:
        """Write ``calibration_accuracy_itr.png`` and ``calibration_false_activations.png``."""
        from matplotlib.figure import Figure  # no pyplot: no GUI backend, faster import
        from matplotlib.ticker import FuncFormatter

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
            xs = [c["threshold"] for c in self.far_curve]
            ax.plot(xs, [c["false_per_min"] for c in self.far_curve], "o-",
                    label="false activations (calibration rest, out of fold)")
            pred = [c for c in self.far_curve if "predicted_per_min" in c]
            if pred:
                px = [c["threshold"] for c in pred]
                ax.plot(px, [c["predicted_per_min"] for c in pred], "-", color="tab:purple",
                        label="predicted (model of rest)")
                ax.fill_between(px, [c["predicted_interval"][0] for c in pred],
                                [c["predicted_interval"][1] for c in pred],
                                color="tab:purple", alpha=0.15)
            ax.axhline(self.max_false_per_min, color="r", ls="--", label="budget")
            if sel and "threshold" in sel:
                ax.axvline(sel["threshold"], color="k", ls=":", label="chosen threshold")
            ax.set_xscale("log")
            plain = FuncFormatter(lambda v, _: f"{v:.3g}")
            ax.xaxis.set_major_formatter(plain)
            ax.xaxis.set_minor_formatter(plain)
            ax.tick_params(axis="x", which="minor", labelsize=7)
            ax2b = ax.twinx()
            ax2b.plot(xs, [100 * c["hit_rate"] for c in self.far_curve],
                      "s-", color="tab:green", label="target trials reached")
            ax2b.set_ylabel("target trials with the right command (%)", color="tab:green")
            ax2b.set_ylim(0, 105)
            ax.set(xlabel="evidence threshold",
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
                "far_curve": self.far_curve, "max_false_per_min": self.max_false_per_min,
                "plots": [str(p) for p in self.plots], "notes": list(self.notes)}


def _f(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.2f}"


def _pct(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{100 * v:.0f} %"

