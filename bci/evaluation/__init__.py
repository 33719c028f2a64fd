"""Offline evaluation: metrics, cross-validation schemes, sweeps, phase locking, reports.

- :mod:`~bci.evaluation.metrics`: accuracy, Wolpaw ITR, confusion matrix;
- :func:`evaluate_within` (stratified 5-fold over a subject's pooled sessions) and
  :func:`evaluate_cross` (calibrate on one session, test on another);
- :func:`run_evaluation`: methods x windows x class sets x schemes over subjects;
- :func:`phase_locking_analysis`: inter-trial coherence at the stimulus frequencies and the
  decoder family it calls for;
- :mod:`~bci.evaluation.report`: table, CSV, JSON, PNG plots.
"""

from bci.evaluation.crossval import GAZE_SHIFT_S, evaluate_cross, evaluate_within
from bci.evaluation.metrics import accuracy, confusion, itr_bits_per_min
from bci.evaluation.phase import PhaseLockingReport, inter_trial_coherence, phase_locking_analysis
from bci.evaluation.report import (
    format_table,
    plot_confusions,
    plot_sweep,
    write_csv,
    write_json,
)
from bci.evaluation.sweep import SCHEMES, class_sets, run_evaluation, summarize

__all__ = [
    "GAZE_SHIFT_S",
    "SCHEMES",
    "PhaseLockingReport",
    "accuracy",
    "class_sets",
    "confusion",
    "evaluate_cross",
    "evaluate_within",
    "format_table",
    "inter_trial_coherence",
    "itr_bits_per_min",
    "phase_locking_analysis",
    "plot_confusions",
    "plot_sweep",
    "run_evaluation",
    "summarize",
    "write_csv",
    "write_json",
]
