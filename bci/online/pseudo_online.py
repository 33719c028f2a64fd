"""Pseudo-online replay: step a recording through the online loop, as a user would run it.

:func:`replay` steps a recording through :class:`OnlineLoop` on a
:class:`RecordingSource` (a virtual clock, many times faster than real time);
:func:`replay_lsl` streams it over real LSL (``RecordingPlayer`` -> ``EEGStream`` ->
``OnlineLoop.run``). Both return what the loop decided, to be scored per cued trial by
:mod:`bci.evaluation.scoring`. The deployed-path evaluation (calibrate on one session,
replay another with the profile, ``ssvep-exo evaluate --online``) is
:mod:`bci.app.online_eval`.
"""

from __future__ import annotations

import threading
import uuid

import pylsl

from bci.acquisition import EEGStream
from bci.datasets import cue_table
from bci.online.loop import OnlineLoop
from bci.online.offline_source import RecordingSource
from bci.online.policy import DecisionPolicy
from bci.sources import RecordingPlayer


def replay(
    raw, decoder, policy: DecisionPolicy, *, window_s: float, step_s: float, picks=None,
    on_decision=None,
) -> tuple[list, OnlineLoop]:
    """Step a recording through :class:`OnlineLoop`; return (decisions, loop)."""
    src = RecordingSource(raw, picks=picks, start_s=window_s)
    decisions: list = []
    cb = decisions.append if on_decision is None else on_decision
    loop = OnlineLoop(src, decoder, policy, window_s=window_s, step_s=step_s, on_decision=cb,
                      max_lag_s=max(1.0, 2 * step_s))
    while not src.finished:
        loop.step()
        src.advance(step_s)
    return decisions, loop


def replay_lsl(
    raw, decoder, policy: DecisionPolicy, *, window_s: float, step_s: float, speed: float = 20.0,
    name: str | None = None, picks=None,
) -> list[tuple[float, str]]:
    """Replay a recording over real LSL (RecordingPlayer -> EEGStream -> OnlineLoop.run).

    The policy's times are LSL-clock seconds, so its ``horizon_s``, ``refractory_s`` and
    ``release_s`` are divided by ``speed`` (:meth:`DecisionPolicy.for_speed`), and so is the
    step. Returns the committed commands as (seconds from the start of the recording, label),
    mapped back through the player's cue markers.
    """
    fast = policy.for_speed(speed)
    name = name or f"pseudo-online-{uuid.uuid4().hex[:8]}"
    commands: list[tuple[float, str]] = []
    player = RecordingPlayer(raw, name=name, speed=speed).open()
    stream = EEGStream(name=name, source_id=name, buffer_s=max(10.0, 4 * window_s),
                       channels=list(picks) if picks else None)
    stop = threading.Event()
    try:
        stream.connect()
        loop = OnlineLoop(
            stream, decoder, fast, window_s=window_s, step_s=step_s / speed,
            on_decision=lambda d: d.outcome is not None and commands.append(
                (d.window_end, d.outcome)),
            max_lag_s=max(0.25, 2 * step_s / speed),
        )
        th = threading.Thread(target=loop.run, args=(stop,), daemon=True)
        t_start = pylsl.local_clock()
        player.start()
        th.start()
        player.wait(raw.times[-1] / speed + 30.0)
        stop.set()
        th.join(5.0)
        markers = list(player.markers_sent)
    finally:
        stream.disconnect()
        player.close()
    onsets, _ = cue_table(raw)
    # LSL time of the recording's first sample, from the first cue marker.
    t0 = markers[0][0] - onsets[0] / speed if markers and len(onsets) else t_start
    return [((t - t0) * speed, lab) for t, lab in commands]
