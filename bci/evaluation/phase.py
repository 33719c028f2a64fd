"""How phase-locked the SSVEP is to the cues, and which decoder family that calls for.

Template decoders (TRCA, eTRCA, TDCA) average training trials into a phase-locked template;
they only work when the response phase repeats from trial to trial (screen stimuli with
marked onsets). Free-running lights give a random phase per trial, where only
phase-invariant decoders (CCA/FBCCA, filter-bank covariances) work. The inter-trial
coherence (ITC) at each stimulus frequency tells the two cases apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import mne
import numpy as np

from bci.datasets import cue_freqs, epoch
from bci.labels import freq_label

#: A (subject, frequency) pair counts as phase-locked when the Rayleigh test gives p below this.
LOCKED_P = 1e-3


def inter_trial_coherence(X: np.ndarray, sfreq: float, freq: float) -> np.ndarray:
    """Inter-trial phase coherence at ``freq`` for each channel.

    Parameters
    ----------
    X : ndarray, shape (n_trials, n_channels, n_samples)
        Windows cut at the same delay after each cue.
    sfreq : float
        Sampling rate (Hz).
    freq : float
        Frequency (Hz).

    Returns
    -------
    itc : ndarray, shape (n_channels,)
        ``|mean over trials of exp(i * phase)|`` of the Hann-tapered Fourier coefficient;
        1 = identical phase in every trial, about ``1/sqrt(n_trials)`` for random phases.
    """
    n = X.shape[-1]
    t = np.arange(n) / sfreq
    kernel = np.hanning(n) * np.exp(-2j * np.pi * freq * t)
    coef = X @ kernel
    unit = coef / np.maximum(np.abs(coef), np.finfo(float).tiny)
    return np.abs(unit.mean(axis=0))


@dataclass
class PhaseLockingReport:
    """Result of :func:`phase_locking_analysis`.

    Attributes
    ----------
    rows : list of dict
        One per subject and frequency: ``subject``, ``freq``, ``itc`` (mean over
        channels), ``n_trials``, ``chance`` (``1/sqrt(n_trials)``), ``p_value`` (Rayleigh,
        approximate), ``locked``.
    family : str
        ``"template"`` when most pairs are phase-locked, else ``"phase-invariant"``.
    recommendation : str
        One sentence for the user.
    """

    rows: list[dict] = field(default_factory=list)
    family: str = "phase-invariant"
    recommendation: str = ""

    def format(self) -> str:
        """Human-readable table plus the recommendation."""
        lines = ["Phase locking (inter-trial coherence at the stimulus frequencies):"]
        by_subject: dict[str, list[dict]] = {}
        for r in self.rows:
            by_subject.setdefault(r["subject"], []).append(r)
        for subject, rows in by_subject.items():
            cells = [
                f"{r['freq']:g} Hz ITC={r['itc']:.2f} (n={r['n_trials']}, chance~{r['chance']:.2f})"
                f"{' *' if r['locked'] else ''}"
                for r in rows
            ]
            lines.append(f"  {subject}: " + "; ".join(cells))
        lines.append(f"  (* = phase-locked, Rayleigh p < {LOCKED_P:g})")
        lines.append(f"Recommendation: {self.recommendation}")
        return "\n".join(lines)


def phase_locking_analysis(
    recordings: Mapping[str, Sequence[mne.io.BaseRaw]],
    *,
    tmin: float = 2.0,
    window_s: float = 2.0,
    channels: Sequence[str] | None = None,
) -> PhaseLockingReport:
    """Measure phase locking per subject and frequency and recommend a decoder family.

    Parameters
    ----------
    recordings : dict of str to list of mne.io.Raw
        Loaded recordings by subject (sessions pooled).
    tmin, window_s : float
        The window analysed, seconds after the cue.
    channels : list of str | None
        Channels to average the ITC over (default: all EEG channels).

    Returns
    -------
    report : PhaseLockingReport
    """
    rows = []
    for subject, raws in recordings.items():
        freqs = sorted({f for raw in raws for f in cue_freqs(raw)})
        for freq in freqs:
            parts = [
                epoch(raw, tmin=tmin, window_s=window_s, channels=channels, classes=[freq])[0]
                for raw in raws
                if freq in cue_freqs(raw)
            ]
            X = np.concatenate(parts)
            n = len(X)
            if n < 2:
                continue
            itc = float(inter_trial_coherence(X, raws[0].info["sfreq"], freq).mean())
            p_value = float(np.exp(-n * itc**2))
            rows.append(
                {
                    "subject": subject,
                    "freq": freq,
                    "label": freq_label(freq),
                    "itc": itc,
                    "n_trials": n,
                    "chance": 1.0 / np.sqrt(n),
                    "p_value": p_value,
                    "locked": p_value < LOCKED_P,
                }
            )
    n_locked = sum(r["locked"] for r in rows)
    share = n_locked / len(rows) if rows else 0.0
    if rows and share >= 0.5:
        family = "template"
        text = (
            f"{n_locked} of {len(rows)} subject/frequency pairs are phase-locked to the cues: "
            f"template decoders (eTRCA, TDCA) fit this data, and phase-invariant ones (FBCCA) "
            f"work too."
        )
    else:
        family = "phase-invariant"
        text = (
            f"only {n_locked} of {len(rows)} subject/frequency pairs are phase-locked to the "
            f"cues (free-running stimulus): use phase-invariant decoders (FBCCA, calibrated "
            f"phase-invariant ones); template decoders (TRCA, eTRCA, TDCA) will score near "
            f"chance."
        )
    return PhaseLockingReport(rows=rows, family=family, recommendation=text)
