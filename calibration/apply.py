"""Measure a subject profile on another recording of the same user.

:func:`apply_profile` decodes the cued trials with the profile's decoder (accuracy) and
replays its decision policy over sliding windows (false activations per minute of rest),
the way the online loop would issue commands.
"""

from __future__ import annotations

import numpy as np

from bci.datasets import epoch
from calibration import selection as sel
from calibration.profile import SubjectProfile


def apply_profile(profile: SubjectProfile, raw, *, tmin: float = 2.0,
                  step_s: float | None = None, guard_s: float | None = None) -> dict:
    """Decode another recording with a profile; return accuracy and false activations.

    Parameters
    ----------
    profile : SubjectProfile
        A profile (e.g. from :func:`calibration.session.calibrate_from_files`).
    raw : mne.io.Raw
        Another recording of the same user (cue annotations).
    tmin : float, default=2.0
        Start of the cued windows after each cue (s).
    step_s, guard_s : float | None
        Sliding-window step and gaze guard (default: the values the profile was made with).

    Returns
    -------
    result : dict
        ``accuracy`` (all profile classes), ``accuracy_targets`` (targets only, argmax over
        target scores), ``n_trials``, and the policy replay of
        :func:`calibration.selection.replay_policy` (``false_per_min``, ...).
    """
    extra = profile.extra if isinstance(profile.extra, dict) else {}
    step_s = float(step_s if step_s is not None else extra.get("step_s", 0.1))
    guard_s = float(guard_s if guard_s is not None else extra.get("guard_s", 1.0))
    profile.check_compatible(raw.ch_names, raw.info["sfreq"])
    dec = profile.build_decoder()
    classes = sel.class_labels(dec.classes_)
    X, y, _ = epoch(raw, tmin=tmin, window=profile.window_s, channels=profile.ch_names,
                    classes=list(classes))
    y = np.asarray(y).astype(str)
    scores = dec.decision_function(X)
    pred = np.asarray(classes)[np.argmax(scores, axis=1)]
    tcols = [i for i, c in enumerate(classes) if c != "rest"]
    tmask = y != "rest"
    pred_t = np.asarray(classes)[tcols][np.argmax(scores[tmask][:, tcols], axis=1)]
    ls = sel.score_recording(dec, raw, channels=profile.ch_names, window=profile.window_s,
                             step_s=step_s, guard_s=guard_s)
    rep = sel.replay_policy(ls, profile.build_policy())
    return {
        "accuracy": float(np.mean(pred == y)),
        "accuracy_targets": float(np.mean(pred_t == y[tmask])) if tmask.any() else float("nan"),
        "n_trials": int(len(y)),
        **rep,
    }
