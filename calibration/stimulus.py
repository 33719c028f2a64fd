"""On-screen SSVEP stimulus (pygame-ce): one labelled, flickering tile per command.

Each tile's luminance follows the sampled sinusoid of :mod:`calibration._luminance`, frame by
frame, so any frequency below half the refresh rate renders correctly. The window's refresh
rate is measured (median flip interval over about one second, with vsync) unless declared.
In calibration the cued tile is highlighted before each trial, and an LSL marker is published
at every cue (the label, e.g. ``"13.0Hz"`` or ``"rest"``), stimulation onset (``"stim_on"``)
and offset (``"stim_off"``), timestamped with :func:`pylsl.local_clock` right after the flip
that showed it.

pygame-ce is an optional extra (``pip install ssvep-exo[stimulus]``). Without a display the
stimulus refuses to start; headless runs (tests) ask for SDL's dummy video driver
(``SDL_VIDEODRIVER=dummy``) with a declared refresh rate; frames are then paced by the clock
instead of vsync.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from bci._logging import stderr_silenced
from bci.labels import REST_LABEL, freq_label
from calibration._luminance import check_renderable, gray_levels, refresh_from_intervals
from calibration.errors import CalibrationError

logger = logging.getLogger("calibration")

STIM_ON = "stim_on"
STIM_OFF = "stim_off"
_BG = (0, 0, 0)
_HIGHLIGHT = (255, 200, 0)
_TEXT = (220, 220, 220)


class StimulusMarkers:
    """The stimulus marker outlet: one LSL string stream of cue and stimulation markers.

    Shared by every stimulus (the screen's :class:`Stimulus`, and the LED stimulus of
    ``bci.app.led_stimulus``), so that both publish the same stream: name, type
    ``"Markers"``, the labels of :mod:`bci.labels`, ``"stim_on"`` / ``"stim_off"``.

    Parameters
    ----------
    name : str | None
        Name of the outlet; None publishes nothing (markers are still logged).
    source_id : str | None
        LSL source id (defaults to ``name``).
    on_marker : callable | None
        Called with ``(marker, lsl_time)`` for every marker.

    Attributes
    ----------
    log : list of (str, float)
        Every marker with its LSL time.
    """

    def __init__(self, name: str | None, source_id: str | None = None,
                 on_marker: Callable[[str, float], None] | None = None) -> None:
        self.name = name
        self.source_id = source_id or name
        self.on_marker = on_marker
        self.log: list[tuple[str, float]] = []
        self.outlet = None

    def open(self) -> None:
        """Create the outlet (when a name was given)."""
        if self.name and self.outlet is None:
            import pylsl

            info = pylsl.StreamInfo(self.name, "Markers", 1, pylsl.IRREGULAR_RATE,
                                    pylsl.cf_string, self.source_id)
            self.outlet = pylsl.StreamOutlet(info)

    def close(self) -> None:
        """Drop the outlet."""
        self.outlet = None

    def mark(self, marker: str, t: float) -> None:
        """Log ``marker`` at LSL time ``t``, publish it and call ``on_marker``."""
        self.log.append((marker, t))
        if self.outlet is not None:
            self.outlet.push_sample([marker], t)
        if self.on_marker is not None:
            self.on_marker(marker, t)
        logger.debug("marker %r at %.4f", marker, t)


@dataclass(frozen=True)
class Target:
    """One stimulus tile.

    Attributes
    ----------
    freq : float
        Flicker frequency in Hz.
    phase : float
        Phase in radians at stimulation onset.
    text : str
        Caption shown under the tile (the command, e.g. ``"walk"``).
    """

    freq: float
    phase: float = 0.0
    text: str = ""

    @property
    def label(self) -> str:
        """Class label of the tile, e.g. ``"13.0Hz"`` (also its cue marker)."""
        return freq_label(self.freq)


def _import_pygame():
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    try:
        import pygame
    except ImportError as exc:
        raise CalibrationError(
            "The on-screen stimulus needs pygame-ce: pip install 'ssvep-exo[stimulus]'."
        ) from exc
    return pygame


#: SDL video drivers that draw to no screen: used only when asked for (SDL_VIDEODRIVER).
HEADLESS_DRIVERS = ("offscreen", "dummy")


def _require_display(driver: str) -> None:
    """Refuse a headless SDL driver that SDL chose by itself because no display is available.

    Without a screen SDL falls back to its ``offscreen`` driver: the stimulus would "run" and
    show nothing. Setting ``SDL_VIDEODRIVER=offscreen`` (or ``dummy``) explicitly asks for that
    (tests, benchmarks).
    """
    asked = os.environ.get("SDL_VIDEODRIVER", "").strip().lower()
    if driver in HEADLESS_DRIVERS and driver != asked:
        raise CalibrationError(
            f"No display is available (SDL found none and fell back to its {driver!r} video "
            "driver): the stimulus needs a screen. Run it in a desktop session (or over ssh -X), "
            "or set SDL_VIDEODRIVER=offscreen to render without one.")


class Stimulus:
    """A pygame window with one flickering tile per target; publishes LSL markers.

    Parameters
    ----------
    targets : sequence of Target
        The tiles, left to right.
    refresh_rate : float | None, default=None
        Declared display refresh rate in Hz; None measures it on :meth:`open`. With a declared
        rate and no vsync (headless), frames are paced by the clock.
    size : tuple of int, default=(900, 500)
        Window size in pixels (ignored when ``fullscreen``).
    fullscreen : bool, default=False
        Open a full-screen window.
    marker_name : str, default="ssvep-exo-stimulus"
        Name of the LSL marker outlet; None publishes no markers.
    source_id : str | None, default=None
        LSL source id of the outlet (defaults to ``marker_name``).
    record_luminance : bool, default=False
        Read back each tile's pixel after drawing every stimulation frame into
        :attr:`luminance_log` (tests and diagnostics).
    on_marker : callable | None
        Called with ``(marker, lsl_time)`` for every marker (e.g. to record it).
    """

    def __init__(self, targets: Sequence[Target], *, refresh_rate: float | None = None,
                 size: tuple[int, int] = (900, 500), fullscreen: bool = False,
                 marker_name: str | None = "ssvep-exo-stimulus", source_id: str | None = None,
                 record_luminance: bool = False,
                 on_marker: Callable[[str, float], None] | None = None) -> None:
        targets = list(targets)
        if not targets or not all(isinstance(t, Target) for t in targets):
            raise TypeError("'targets' must be a non-empty sequence of Target.")
        labels = [t.label for t in targets]
        if len(set(labels)) != len(labels):
            raise ValueError(f"Duplicate target frequencies: {labels}.")
        if refresh_rate is not None and not (np.isfinite(refresh_rate) and refresh_rate > 0):
            raise ValueError(f"'refresh_rate' must be a positive number, got {refresh_rate!r}.")
        if refresh_rate is not None:
            check_renderable([t.freq for t in targets], float(refresh_rate))
        self.targets = targets
        self.declared_refresh = None if refresh_rate is None else float(refresh_rate)
        self.size = tuple(size)
        self.fullscreen = bool(fullscreen)
        self.marker_name = marker_name
        self.markers = StimulusMarkers(marker_name, source_id, on_marker)
        self.source_id = self.markers.source_id
        self.record_luminance = bool(record_luminance)
        self.refresh_rate: float | None = None
        self.flip_log = self.markers.log  # (marker, LSL time of the flip)
        self.luminance_log: list[tuple[int, tuple[int, ...]]] = []
        self._pg = None
        self._screen = None
        self._rects: list = []
        self._font = None
        self._pace = False
        self._next_flip = 0.0
        #: Frames skipped because the program fell behind the display clock (paced mode).
        self.dropped_frames = 0

    # ----------------------------------------------------------------- lifecycle
    def open(self) -> Stimulus:
        """Open the window, measure (or adopt) the refresh rate, create the marker outlet."""
        if self._screen is not None:
            return self
        pg = _import_pygame()
        with stderr_silenced():  # SDL prints e.g. "XDG_RUNTIME_DIR is invalid" without a screen
            pg.display.init()
        _require_display(pg.display.get_driver())
        pg.font.init()
        flags = pg.FULLSCREEN if self.fullscreen else 0
        try:
            with warnings.catch_warnings():  # "no fast renderer available" under SDL dummy
                warnings.simplefilter("ignore")
                self._screen = pg.display.set_mode(self.size, flags | pg.SCALED, vsync=1)
            vsync = True
        except pg.error:
            self._screen = pg.display.set_mode(self.size, flags)
            vsync = False
        pg.display.set_caption("ssvep-exo stimulus")
        self._pg = pg
        self._layout()
        self._pace = self.declared_refresh is not None
        if self._pace:
            self.refresh_rate = self.declared_refresh
        else:
            self.refresh_rate = self._measure_refresh(vsync)  # may switch to clock pacing
        try:
            check_renderable([t.freq for t in self.targets], self.refresh_rate)
        except CalibrationError:
            self.close()
            raise
        logger.info("stimulus window open, refresh %.2f Hz (%s)", self.refresh_rate,
                    "declared" if self._pace else "measured")
        self.markers.open()
        self._next_flip = time.perf_counter()
        return self

    def close(self) -> None:
        """Close the window and the marker outlet."""
        self.markers.close()
        if self._pg is not None:
            self._pg.display.quit()
        self._screen = None
        self._pg = None

    def __enter__(self) -> Stimulus:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    # ----------------------------------------------------------------- drawing
    def _layout(self) -> None:
        pg = self._pg
        w, h = self._screen.get_size()
        n = len(self.targets)
        side = int(min(w / (n * 1.4), h * 0.55))
        gap = (w - n * side) / (n + 1)
        top = int((h - side) / 2 - 20)
        self._rects = [pg.Rect(int(gap + i * (side + gap)), top, side, side) for i in range(n)]
        self._font = pg.font.Font(None, max(18, side // 6))

    def _draw(self, grays: Sequence[int], highlight: int | None, fixation: bool) -> None:
        pg = self._pg
        scr = self._screen
        scr.fill(_BG)
        for i, (rect, g) in enumerate(zip(self._rects, grays)):
            scr.fill((int(g), int(g), int(g)), rect)
            if i == highlight:
                pg.draw.rect(scr, _HIGHLIGHT, rect.inflate(16, 16), width=6)
            t = self.targets[i]
            text = self._font.render(t.text or t.label, True, _TEXT)
            scr.blit(text, text.get_rect(midtop=(rect.centerx, rect.bottom + 14)))
        if fixation:
            cx, cy = scr.get_width() // 2, 30
            pg.draw.line(scr, _HIGHLIGHT, (cx - 10, cy), (cx + 10, cy), 3)
            pg.draw.line(scr, _HIGHLIGHT, (cx, cy - 10), (cx, cy + 10), 3)

    def _flip(self) -> float:
        """Show the drawn frame; return the LSL time of the flip."""
        import pylsl

        if self._pace:
            delay = self._next_flip - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            # a little late: the next frames come sooner, keeping frame k at k / rate
            self._next_flip += 1.0 / self.refresh_rate
        self._pg.display.flip()
        t = pylsl.local_clock()
        for ev in self._pg.event.get():
            if ev.type == self._pg.QUIT or (ev.type == self._pg.KEYDOWN
                                           and ev.key == self._pg.K_ESCAPE):
                raise KeyboardInterrupt("stimulus window closed")
        return t

    def _start_phase(self) -> None:
        """Anchor the frame clock at a phase's first frame (idle time before it is no delay)."""
        self._next_flip = max(self._next_flip, time.perf_counter())

    def _skip_late_frames(self, remaining: int) -> int:
        """Frames to skip so that frame k still shows at k / rate after falling behind.

        Dropping frames (and counting them) keeps every phase of a trial at its length in
        wall time, so cues stay on the schedule the EEG is cut by, however loaded the machine.
        """
        if not self._pace:
            return 0
        late = min(int((time.perf_counter() - self._next_flip) * self.refresh_rate), remaining)
        if late <= 0:
            return 0
        self._next_flip += late / self.refresh_rate
        self.dropped_frames += late
        return late

    def _mark(self, marker: str, t: float) -> None:
        self.markers.mark(marker, t)

    def _check_open(self) -> None:
        if self._screen is None:
            raise RuntimeError("The stimulus window is not open; call open() first.")

    # ----------------------------------------------------------------- phases
    def show_static(self, duration_s: float, *, highlight: int | None = None,
                    fixation: bool = False, marker: str | None = None) -> float | None:
        """Show still mid-gray tiles for ``duration_s``; mark ``marker`` on the first flip."""
        self._check_open()
        n_frames = max(1, int(round(duration_s * self.refresh_rate)))
        mid = [128] * len(self.targets)
        t_first = None
        self._start_phase()
        k = 0
        while k < n_frames:
            self._draw(mid, highlight, fixation)
            t = self._flip()
            if k == 0:
                t_first = t
                if marker is not None:
                    self._mark(marker, t)
            k += 1 + self._skip_late_frames(n_frames - k - 1)
        return t_first

    def flicker(self, duration_s: float, *, fixation: bool = False,
                on_frame: Callable[[int], None] | None = None) -> tuple[float, float]:
        """Flicker every tile for ``duration_s``; mark ``stim_on`` and ``stim_off`` at flips.

        Returns
        -------
        t_on, t_off : float
            LSL times of the first stimulation flip and of the flip that ended it.
        """
        self._check_open()
        n_frames = max(1, int(round(duration_s * self.refresh_rate)))
        frames = np.arange(n_frames)
        levels = np.stack([gray_levels(t.freq, t.phase, frames, self.refresh_rate)
                           for t in self.targets], axis=1)
        t_on = float("nan")
        dropped = self.dropped_frames
        self._start_phase()
        k = 0
        while k < n_frames:
            self._draw(levels[k], None, fixation)
            if self.record_luminance:
                read = tuple(int(self._screen.get_at(r.center)[0]) for r in self._rects)
                self.luminance_log.append((k, read))
            t = self._flip()
            if k == 0:
                t_on = t
                self._mark(STIM_ON, t)
            if on_frame is not None:
                on_frame(k)
            k += 1 + self._skip_late_frames(n_frames - k - 1)
        if self.dropped_frames > dropped:
            logger.warning("stimulus fell behind the display: %d of %d frames dropped",
                           self.dropped_frames - dropped, n_frames)
        self._draw([0] * len(self.targets), None, False)
        t_off = self._flip()
        self._mark(STIM_OFF, t_off)
        return t_on, t_off

    def run_trial(self, label: str, *, cue_s: float = 1.0, stim_s: float = 4.0,
                  rest_s: float = 1.0) -> dict:
        """One cued trial: highlight the cued tile (cue marker), flicker, then a pause.

        Parameters
        ----------
        label : str
            A target label (``"13.0Hz"``) or ``"rest"`` (a fixation cross is shown instead and
            all tiles still flicker).
        cue_s, stim_s, rest_s : float
            Durations of the cue, the stimulation and the pause after it, in seconds.

        Returns
        -------
        times : dict
            ``{"label", "t_cue", "t_on", "t_off"}`` on the LSL clock.
        """
        self._check_open()
        labels = [t.label for t in self.targets]
        is_rest = label == REST_LABEL
        if not is_rest and label not in labels:
            raise ValueError(f"Unknown cue {label!r}; targets are {labels} or {REST_LABEL!r}.")
        hi = None if is_rest else labels.index(label)
        t_cue = self.show_static(cue_s, highlight=hi, fixation=is_rest, marker=label)
        t_on, t_off = self.flicker(stim_s, fixation=is_rest)
        if rest_s > 0:
            self.show_static(rest_s)
        return {"label": label, "t_cue": t_cue, "t_on": t_on, "t_off": t_off}

    def run_sequence(self, labels: Sequence[str], **durations: float) -> list[dict]:
        """Run :meth:`run_trial` for each cue in order; return their times."""
        return [self.run_trial(lab, **durations) for lab in labels]

    # ----------------------------------------------------------------- refresh rate
    def _measure_refresh(self, vsync: bool, duration_s: float = 1.0) -> float:
        pg = self._pg
        stamps = []
        t_end = time.perf_counter() + duration_s
        k = 0
        while time.perf_counter() < t_end and k < 2000:
            g = 128 if k % 2 else 120
            self._screen.fill((g, g, g))
            pg.display.flip()
            stamps.append(time.perf_counter())
            pg.event.pump()
            k += 1
        rate = refresh_from_intervals(np.diff(stamps)) if len(stamps) > 2 else float("nan")
        if vsync and 20.0 <= rate <= 500.0:
            return rate
        reported = 0.0
        try:
            reported = float(pg.display.get_current_refresh_rate())
        except (AttributeError, pg.error):
            pass
        if 20.0 <= reported <= 500.0:
            logger.warning("flips are not synchronised to the display (%.0f flips/s); using "
                           "the refresh rate the system reports, %.0f Hz", rate, reported)
            self._pace = True
            return reported
        raise CalibrationError(
            f"Cannot measure the display refresh rate (flips are not synchronised to the "
            f"display: {rate:.0f} flips/s). Declare it with --refresh-rate HZ."
        )
