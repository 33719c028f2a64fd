"""Shared loop of ``simulate-eeg`` and ``replay``: publish, print cues, stop cleanly."""

from __future__ import annotations

import time

from bci.errors import ConfigError

__all__ = ["run_source"]


def run_source(src, *, duration: float | None, quiet: bool = False,
               header: str | None = None) -> int:
    """Publish until the source finishes, ``duration`` passes or Ctrl-C; return 0.

    Parameters
    ----------
    src : SyntheticEEG | RecordingPlayer
        The source (not started).
    duration : float | None
        Wall-clock seconds to run (None: until the end, or forever with ``loop``).
    quiet : bool
        Do not print each marker.
    header : str | None
        A first line describing the source, printed once the arguments are checked.
    """
    if duration is not None and duration <= 0:
        raise ConfigError(f"--duration must be positive, got {duration:g}.")
    if header:
        print(header, flush=True)
    print(f"Publishing LSL stream {src.name!r} (type 'EEG', source id {src.source_id!r}): "
          f"{len(src.ch_names)} channels ({', '.join(src.ch_names)}) at {src.sfreq:g} Hz, "
          f"microvolts, speed x{src.speed:g}{', looping' if src.loop else ''}", flush=True)
    print(f"Publishing markers on {src.marker_name!r} (type 'Markers'). Ctrl-C to stop.",
          flush=True)
    import pylsl

    t_start = time.monotonic()
    shown = 0
    try:
        src.start()
        t0 = pylsl.local_clock()
        while True:
            sent = list(src.markers_sent)
            if not quiet:
                for t, label in sent[shown:]:
                    at = max(t - t0, 0.0) * src.speed  # seconds of signal
                    print(f"  t={at:8.2f} s  marker {label}", flush=True)
            shown = len(sent)
            if src.finished.is_set():
                print(f"Done: {src.n_pushed} samples and {src.n_markers} markers published.",
                      flush=True)
                return 0
            if duration is not None and time.monotonic() - t_start >= duration:
                print(f"Stopped after {duration:g} s: {src.n_pushed} samples and "
                      f"{src.n_markers} markers published.", flush=True)
                return 0
            time.sleep(0.05)
    except KeyboardInterrupt:
        print(f"Interrupted: {src.n_pushed} samples and {src.n_markers} markers published.",
              flush=True)
        raise
    finally:
        src.close()
