"""Live calibration over LSL: check the signal, run the cues, record, then calibrate.

:func:`calibrate_live` connects to the headset's EEG stream, checks the electrodes, records
EEG and cues to an XDF file while the :class:`~calibration.cues.CueSequence` runs (cues from
the on-screen :class:`~calibration.stimulus.Stimulus`, stamped at the frame flips, or from a
plain marker outlet at the scheduled times), and hands the recording to
:func:`calibration.session.calibrate_from_files`: the offline path, so that a live
calibration and one from files give the same profile for the same data.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import pylsl

from bci.acquisition import EEGStream
from bci.labels import freq_label
from bci.recording import SessionRecorder
from calibration.cues import NO_CONTROL_TASKS, CueSequence
from calibration.errors import CalibrationError
from calibration.profile import SubjectProfile
from calibration.report import CalibrationReport
from calibration.session import DEFAULT_WINDOWS, calibrate_from_files
from calibration.signal_check import check_signal
from calibration.stimulus import Stimulus, Target

logger = logging.getLogger("calibration")


def live_sequence(freqs: Sequence[float], n_per_class: int = 8, *, trial_s: float = 5.0,
                  cue_s: float = 0.0, rest_s: float = 0.0, include_rest: bool = True,
                  no_control: str = "realistic", rest_block_s: float = 60.0,
                  seed: int | None = None) -> CueSequence:
    """The cue sequence of a live calibration (see :func:`calibrate_live`)."""
    if no_control not in ("realistic", "rest"):
        raise ValueError(f"'no_control' must be 'realistic' or 'rest', got {no_control!r}.")
    if include_rest and no_control == "realistic":
        return CueSequence.realistic(freqs, n_per_class, rest_block_s=rest_block_s,
                                     trial_s=trial_s, cue_s=cue_s, rest_s=rest_s, seed=seed)
    return CueSequence.balanced(freqs, n_per_class, include_rest=include_rest,
                                trial_s=trial_s, cue_s=cue_s, rest_s=rest_s, seed=seed)


def calibrate_live(
    *,
    name: str | None = None,
    source_id: str | None = None,
    freqs: Sequence[float] = (13.0, 17.0, 21.0),
    n_per_class: int = 8,
    trial_s: float = 5.0,
    cue_s: float = 0.0,
    rest_s: float = 0.0,
    include_rest: bool = True,
    no_control: str = "realistic",
    rest_block_s: float = 60.0,
    sequence: CueSequence | None = None,
    start_at: float | None = None,
    stimulus: bool = False,
    refresh_rate: float | None = None,
    menus: Mapping[str, Mapping[str, str]] | None = None,
    output: str | os.PathLike,
    record_path: str | os.PathLike | None = None,
    signal_check: bool = True,
    check_s: float = 2.0,
    marker_name: str = "ssvep-exo-cues",
    connect_timeout: float = 10.0,
    seed: int | None = None,
    progress=None,
    **calibration_kw,
) -> tuple[SubjectProfile, CalibrationReport]:
    """Run a live calibration over LSL, record it, and build the profile from the recording.

    Steps: connect to the EEG stream (``name`` and/or ``source_id``); check the signal
    (:func:`calibration.signal_check.check_signal`, raising CalibrationError naming the
    electrodes to fix); record EEG and cues to ``record_path`` (XDF, via
    :class:`bci.recording.SessionRecorder`) while the cue sequence runs, with cue markers
    published over LSL (by the on-screen :class:`~calibration.stimulus.Stimulus` when
    ``stimulus``, timestamped at the frame flips; otherwise by a plain marker outlet at the
    scheduled times); then :func:`calibrate_from_files` on the recording.

    Parameters
    ----------
    name, source_id : str | None
        The EEG stream to use (at least one).
    freqs : sequence of float, default=(13, 17, 21)
        Target frequencies (ignored when ``sequence`` is given).
    n_per_class, trial_s, cue_s, rest_s, include_rest
        The trial sequence (see :meth:`CueSequence.balanced`), ignored with ``sequence``.
    no_control : {"realistic", "rest"}, default="realistic"
        The no-control trials (with ``include_rest``): ``"realistic"``
        (:meth:`CueSequence.realistic`: a fixation block of ``rest_block_s`` split between
        the start and the end, and trials in which the user looks between the lights, looks
        around, blinks or talks, all labelled rest; about 2.5 minutes of no-control at the
        defaults, enough blocks for the model of rest that sets the threshold);
        ``"rest"``: one plain rest trial per round (:meth:`CueSequence.balanced`).
    rest_block_s : float, default=60
        The fixation block of the realistic schedule (s).
    sequence : CueSequence | None
        A ready sequence (e.g. the one a synthetic source follows).
    start_at : float | None
        LSL time at which the sequence starts (its lead-in); default: when recording starts.
    stimulus : bool, default=False
        Show the on-screen stimulus (pygame-ce) and let it publish the cues.
    refresh_rate : float | None
        Declared display refresh rate for the stimulus (default: measured).
    menus : dict | None
        Posture -> {target label: command}, stored in the profile (and shown on the
        stimulus tiles).
    output : path-like
        Directory for the profile, the report plots and (by default) the recording.
    record_path : path-like | None
        The XDF file (default ``output/calibration.xdf``).
    signal_check : bool, default=True
        Run the signal check first.
    check_s : float, default=2.0
        Seconds of EEG the signal check looks at.
    marker_name : str, default="ssvep-exo-cues"
        Name of the cue marker outlet.
    connect_timeout : float, default=10.0
        Seconds to look for the stream.
    seed : int | None
        Seed of the trial order.
    progress : callable | None
        Called with a one-line status per trial.
    **calibration_kw
        Passed to :func:`calibrate_raws` (``methods``, ``windows``, ``max_false_per_min``,
        ``tmin`` ...).
    """
    if name is None and source_id is None:
        raise ValueError("Give the EEG stream's 'name' or 'source_id'.")
    seq = sequence or live_sequence(freqs, n_per_class, trial_s=trial_s, cue_s=cue_s,
                                    rest_s=rest_s, include_rest=include_rest,
                                    no_control=no_control, rest_block_s=rest_block_s,
                                    seed=seed)
    # the windows the recording will be decoded with, checked before anything is recorded
    kw = dict(calibration_kw)
    tmin = kw.pop("tmin", seq.cue_s + min(1.0, seq.trial_s / 4))
    room = seq.cue_s + seq.trial_s - tmin
    windows = [w for w in kw.pop("windows", DEFAULT_WINDOWS) if w <= room + 1e-9]
    if not windows:
        raise CalibrationError(f"No window fits {seq.trial_s:g} s trials starting {tmin:g} s "
                               "after the cue; use longer trials or shorter windows.")
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    rec_path = Path(record_path) if record_path is not None else out / "calibration.xdf"
    say = progress or (lambda msg: logger.info("%s", msg))
    stream = EEGStream(name=name, source_id=source_id)
    stream.connect(timeout=connect_timeout)
    try:
        if signal_check:
            n = int(round(check_s * stream.sfreq))
            win = _wait_window(stream, n, timeout=check_s * 3 + 5)
            stream.check_amplitude(check_s)  # a unit assumed wrongly would read as flat
            chk = check_signal(win.data, stream.sfreq, stream.ch_names)
            say(chk.message())
            chk.raise_if_bad()
        recorder = SessionRecorder(rec_path, stream=stream).start()
        try:
            if stimulus:
                t_end = _run_with_stimulus(seq, recorder, refresh_rate=refresh_rate,
                                           marker_name=marker_name, menus=menus,
                                           start_at=start_at, say=say)
            else:
                t_end = _run_with_outlet(seq, recorder, marker_name=marker_name,
                                         start_at=start_at, say=say)
            _wait_until(stream, t_end + 0.25, timeout=5.0)  # the last samples arrive late
        finally:
            recorder.close()
        if recorder.error is not None:
            raise CalibrationError(f"The calibration recording {str(rec_path)!r} failed: "
                                   f"{recorder.error}. Check the disk and try again.")
    finally:
        stream.disconnect()
    say(f"recording saved to {rec_path}")
    return calibrate_from_files([rec_path], windows=windows, tmin=tmin, output=out,
                                menus=menus, **kw)


def _wait_window(stream, n: int, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        win = stream.latest_window(n)
        if win is not None:
            return win
        time.sleep(0.05)
    raise CalibrationError(
        f"The EEG stream sent less than {n / stream.sfreq:.1f} s of data in {timeout:.0f} s; "
        "check that the amplifier is streaming."
    )


def _wait_until(stream, t_lsl: float, timeout: float) -> None:
    """Wait until the stream has delivered samples up to LSL time ``t_lsl``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        win = stream.latest_window(1)
        if win is not None and win.t_end >= t_lsl:
            return
        time.sleep(0.05)
    logger.warning("the EEG stream did not deliver data up to the end of the sequence in "
                   "%.0f s; the last trial may be incomplete", timeout)


def _run_with_outlet(seq: CueSequence, recorder, *, marker_name: str, start_at,
                     say) -> float:
    """Publish each cue at its scheduled LSL time (plain marker outlet, no display)."""
    info = pylsl.StreamInfo(marker_name, "Markers", 1, pylsl.IRREGULAR_RATE, pylsl.cf_string,
                            f"{marker_name}-{os.getpid()}")
    outlet = pylsl.StreamOutlet(info)
    t0 = pylsl.local_clock() if start_at is None else float(start_at)
    for k, (lab, on) in enumerate(zip(seq.labels, seq.onsets)):
        t = t0 + float(on)
        delay = t - pylsl.local_clock()
        if delay > 0:
            time.sleep(delay)
        outlet.push_sample([lab], t)
        recorder.push_marker(t, lab)
        task = seq.tasks[k] if seq.tasks else None
        say(f"trial {k + 1}/{len(seq.labels)}: {lab}"
            + (f" ({NO_CONTROL_TASKS[task]})" if task else ""))
    end = t0 + seq.duration_s
    delay = end - pylsl.local_clock()
    if delay > 0:
        time.sleep(delay)
    return end


def _run_with_stimulus(seq: CueSequence, recorder, *, refresh_rate, marker_name, menus,
                       start_at, say) -> float:
    """Run the cue sequence on the on-screen stimulus; its markers are recorded too."""
    def caption(label: str) -> str:  # what the light means, over all postures
        cmds = dict.fromkeys(m[label] for m in (menus or {}).values() if label in m)
        return "/".join(cmds) or label

    targets = [Target(f, 0.0, caption(freq_label(f))) for f in seq.freqs]

    def record(marker: str, t: float) -> None:
        recorder.push_marker(t, marker)

    with Stimulus(targets, refresh_rate=refresh_rate, marker_name=marker_name,
                  on_marker=record) as stim:
        t0 = pylsl.local_clock() if start_at is None else float(start_at)
        for k, (lab, on) in enumerate(zip(seq.labels, seq.onsets)):
            wait = t0 + float(on) - pylsl.local_clock()  # keep the cues on the schedule
            if wait > 0.5 / stim.refresh_rate:
                stim.show_static(wait)
            say(f"trial {k + 1}/{len(seq.labels)}: {lab}")
            stim.run_trial(lab, cue_s=seq.cue_s, stim_s=seq.trial_s, rest_s=seq.rest_s)
    return pylsl.local_clock()
