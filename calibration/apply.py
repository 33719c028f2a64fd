"""Measure a subject profile on another recording of the same user.

:func:`apply_profile` decodes the cued trials with the profile's decoder (accuracy) and
replays its decision policy over the windows the online loop decodes, scoring its commands
per cued trial with the project's scorer (hits, wrong commands, false activations per minute
of rest).
"""

from __future__ import annotations

import numpy as np

from bci.datasets import epoch
from bci.evaluation.harness import score_stream
from bci.labels import REST_LABEL, class_labels
from calibration import selection as sel
from calibration.profile import SubjectProfile


def apply_profile(profile: SubjectProfile, raw, *, tmin: float = 2.0,
                  step_s: float | None = None) -> dict:
    """Decode another recording with a profile; return accuracy and the policy's commands.

    Parameters
    ----------
    profile : SubjectProfile
        A profile (e.g. from :func:`calibration.session.calibrate_from_files`).
    raw : mne.io.Raw
        Another recording of the same user (cue annotations).
    tmin : float, default=2.0
        Start of the cued windows after each cue (s).
    step_s : float | None
        Step of the replayed windows (default: the step the profile was made for).

    Returns
    -------
    result : dict
        ``accuracy`` (all profile classes), ``accuracy_targets`` (targets only, argmax over
        target scores), ``n_trials``, and the scored replay of the profile's policy
        (:func:`calibration.selection.replay`: ``hit_rate``, ``false_activations_per_min``,
        ...).
    """
    extra = profile.extra if isinstance(profile.extra, dict) else {}
    step_s = float(step_s if step_s is not None else extra.get("step_s", 0.1))
    profile.check_compatible(raw.ch_names, raw.info["sfreq"])
    dec = profile.build_decoder()
    classes = class_labels(dec.classes_)
    X, y, _ = epoch(raw, tmin=tmin, window_s=profile.window_s, channels=profile.ch_names,
                    classes=list(classes))
    y = np.asarray(y).astype(str)
    scores = dec.decision_function(X)
    pred = np.asarray(classes)[np.argmax(scores, axis=1)]
    tcols = [i for i, c in enumerate(classes) if c != REST_LABEL]
    tmask = y != REST_LABEL
    pred_t = np.asarray(classes)[tcols][np.argmax(scores[tmask][:, tcols], axis=1)]
    stream = score_stream(dec, raw, window_s=profile.window_s, step=step_s,
                          channels=profile.ch_names)
    rep = sel.replay([stream], profile.build_policy())
    return {
        "accuracy": float(np.mean(pred == y)),
        "accuracy_targets": float(np.mean(pred_t == y[tmask])) if tmask.any() else float("nan"),
        "n_trials": int(len(y)),
        **rep,
    }
