"""The stimulus on a controller board's LEDs, with the screen stimulus's LSL markers.

:class:`LedStimulus` drives the lights of a controller that speaks the LED-stimulus extension of
``docs/protocol.md`` (section 12; the reference firmware in ``devices/firmware``, or the
simulator) through :class:`devices.exoskeleton.ExoskeletonDriver`: one light per target, at the
target's frequency and phase. It publishes the markers the on-screen
:class:`calibration.stimulus.Stimulus` publishes, on an outlet of the same name and type: the
cue label at each cue (``"13.0Hz"`` or ``"rest"``), ``"stim_on"`` and ``"stim_off"``. The
stimulation markers come from the board's ``LEDEV`` events, which carry the board's time of the
change (``t_us``): :class:`BoardClock` maps that time onto the host's clock through the events
that arrived fastest (a minimum filter over the last minute), so a marker does not inherit the
delay with which its own event happened to cross the link; ``stim_off`` is ``stim_on`` plus the
run's length by the board's clock, so every trial lasts exactly as long as its lights did.

The board has no display: cues go to the terminal (``say``), with their marker at that moment.
"""

from __future__ import annotations

import logging
import math
import queue
import time
from collections import deque
from collections.abc import Callable, Sequence

import pylsl

from bci.labels import REST_LABEL
from calibration.stimulus import STIM_OFF, STIM_ON, StimulusMarkers, Target
from devices.errors import DeviceError
from devices.exoskeleton import ExoskeletonDriver
from devices.leds import N_LIGHTS, LedEvent, mask_of

logger = logging.getLogger("bci")


class BoardClock:
    """Map a board's event times (``LEDEV`` ``t_us``) onto the host's monotonic clock.

    Each event gives ``received - t_us``: the clock offset plus the event's delay on the link
    (its transmission, the host's reading). The smallest of these over the last ``window_s``
    seconds is the best offset estimate (the delay never goes below the fastest event's);
    the window follows a slow drift between the two clocks (50 ppm: 3 ms a minute). When the
    last ``step_events`` events all came more than ``step_s`` slower than that estimate, the
    clocks stepped (a board reset, a simulator that fell behind) and only those events count.
    The board's 32-bit microsecond counter wraps every 71.6 minutes; it is unwrapped.

    Parameters
    ----------
    window_s : float, default=60.0
        How far back (host seconds) events count.
    step_s, step_events : float, int
        What counts as a step of the offset (default: 4 events all 20 ms slower).
    """

    def __init__(self, window_s: float = 60.0, step_s: float = 0.02,
                 step_events: int = 4) -> None:
        self.window_s = float(window_s)
        self.step_s = float(step_s)
        self.step_events = int(step_events)
        self._offsets: deque[tuple[float, float]] = deque()
        self._last_us: int | None = None
        self._wraps = 0

    def host_time(self, event: LedEvent) -> float:
        """The host monotonic time of ``event``'s change (given its ``received`` time)."""
        if self._last_us is not None and event.t_us < self._last_us - (1 << 31):
            self._wraps += 1
        self._last_us = event.t_us
        t_board = (event.t_us + (self._wraps << 32)) * 1e-6
        self._offsets.append((event.received, event.received - t_board))
        while self._offsets[0][0] < event.received - self.window_s:
            self._offsets.popleft()
        best = min(off for _, off in self._offsets)
        recent = list(self._offsets)[-self.step_events:]
        if len(recent) == self.step_events and len(self._offsets) > self.step_events \
                and min(off for _, off in recent) > best + self.step_s:
            self._offsets = deque(recent)  # the clocks stepped: forget what came before
            best = min(off for _, off in recent)
        return t_board + best


class LedStimulus:
    """One board light per target, flickering on cue; publishes LSL markers.

    Parameters
    ----------
    targets : sequence of Target
        Light 1 shows the first target, light 2 the second, ... (at most 5).
    url : str
        The controller (``/dev/ttyUSB0``, ``exofw://avr``, ``socket://host:port``, ...).
    marker_name : str | None, default="ssvep-exo-stimulus"
        Name of the LSL marker outlet (None: no outlet).
    source_id : str | None
        LSL source id of the outlet (defaults to ``marker_name``).
    on_marker : callable | None
        Called with ``(marker, lsl_time)`` for every marker.
    say : callable | None
        Called with each cue's text (default: print it).
    event_timeout : float, default=1.0
        Seconds to wait for the board to report a start or an end past its due time.

    Attributes
    ----------
    flip_log : list of (str, float)
        Every marker with its LSL time (the name the screen stimulus uses).
    events : list of LedEvent
        The board's events, as received.
    """

    def __init__(self, targets: Sequence[Target], url: str, *,
                 marker_name: str | None = "ssvep-exo-stimulus", source_id: str | None = None,
                 on_marker: Callable[[str, float], None] | None = None,
                 say: Callable[[str], None] | None = None, event_timeout: float = 1.0) -> None:
        targets = list(targets)
        if not targets or not all(isinstance(t, Target) for t in targets):
            raise TypeError("'targets' must be a non-empty sequence of Target.")
        if len(targets) > N_LIGHTS:
            raise ValueError(f"The board has {N_LIGHTS} lights; got {len(targets)} targets.")
        labels = [t.label for t in targets]
        if len(set(labels)) != len(labels):
            raise ValueError(f"Duplicate target frequencies: {labels}.")
        self.targets = targets
        self.url = url
        self.marker_name = marker_name
        self.markers = StimulusMarkers(marker_name, source_id, on_marker)
        self.say = say or print
        self.event_timeout = float(event_timeout)
        self.flip_log = self.markers.log
        self.events: list[LedEvent] = []
        self._mask = mask_of(range(1, len(targets) + 1))
        self._queue: queue.Queue[LedEvent] = queue.Queue()
        self.clock = BoardClock()
        self._driver: ExoskeletonDriver | None = None

    # ----------------------------------------------------------------- lifecycle
    def open(self) -> LedStimulus:
        """Connect to the board, set each light to its target, create the marker outlet."""
        if self._driver is not None:
            return self
        driver = ExoskeletonDriver(self.url)
        driver.add_listener(self._on_event)
        driver.open()
        try:
            driver.led_off()
            for n, t in enumerate(self.targets, start=1):
                driver.led_set(n, t.freq, math.degrees(t.phase))
        except BaseException:
            driver.close()
            raise
        self._driver = driver
        self.markers.open()
        return self

    def close(self) -> None:
        """Switch the lights off (best effort) and close the link and the outlet."""
        driver, self._driver = self._driver, None
        if driver is not None:
            try:
                driver.led_off()
            except DeviceError as exc:
                logger.warning("could not switch the lights off: %s", exc)
            driver.close()
        self.markers.close()

    def __enter__(self) -> LedStimulus:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    # ----------------------------------------------------------------- markers
    def _on_event(self, event: str, data: dict) -> None:
        if event == "led":
            self._queue.put(data["event"])

    def _wait_event(self, on: bool, timeout: float) -> LedEvent:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                ev = self._queue.get(timeout=max(left, 0.0))
            except queue.Empty:
                raise DeviceError(
                    f"The board at {self.url!r} did not report its lights "
                    f"{'starting' if on else 'going dark'} within {timeout:.1f} s; check the "
                    "link (and that its firmware has the LED-stimulus extension).") from None
            self.events.append(ev)
            if ev.on == on and ev.mask & self._mask:
                return ev
            self.clock.host_time(ev)  # every event improves the clock mapping

    @staticmethod
    def _lsl_time(t_monotonic: float) -> float:
        """The LSL time of a time on the host's monotonic clock."""
        return pylsl.local_clock() - (time.monotonic() - t_monotonic)

    # ----------------------------------------------------------------- phases
    def _check_open(self) -> ExoskeletonDriver:
        if self._driver is None:
            raise RuntimeError("The LED stimulus is not open; call open() first.")
        return self._driver

    def flicker(self, duration_s: float) -> tuple[float, float]:
        """Flicker every light for ``duration_s`` (timed by the board); mark ``stim_on`` and
        ``stim_off``. Returns their LSL times."""
        driver = self._check_open()
        while not self._queue.empty():
            self.events.append(self._queue.get_nowait())
        driver.led_on(range(1, len(self.targets) + 1), duration_s)
        on = self._wait_event(True, self.event_timeout)
        t_on = self._lsl_time(self.clock.host_time(on))
        self.markers.mark(STIM_ON, t_on)
        off = self._wait_event(False, duration_s + self.event_timeout)
        t_off = t_on + ((off.t_us - on.t_us) % (1 << 32)) * 1e-6
        self.markers.mark(STIM_OFF, t_off)
        return t_on, t_off

    def run_trial(self, label: str, *, cue_s: float = 1.0, stim_s: float = 4.0,
                  rest_s: float = 1.0) -> dict:
        """One cued trial: the cue (terminal and marker), ``stim_s`` of flicker, a pause.

        ``label`` is a target label (``"13.0Hz"``) or ``"rest"`` (all lights still flicker,
        as on the screen). Returns ``{"label", "t_cue", "t_on", "t_off"}`` on the LSL clock.
        """
        self._check_open()
        labels = [t.label for t in self.targets]
        if label != REST_LABEL and label not in labels:
            raise ValueError(f"Unknown cue {label!r}; targets are {labels} or {REST_LABEL!r}.")
        if label == REST_LABEL:
            self.say("cue: rest (look at none of the lights)")
        else:
            k = labels.index(label)
            self.say(f"cue: look at light {k + 1} ({self.targets[k].text or label})")
        t_cue = pylsl.local_clock()
        self.markers.mark(label, t_cue)
        time.sleep(max(cue_s, 0.0))
        t_on, t_off = self.flicker(stim_s)
        if rest_s > 0:
            time.sleep(rest_s)
        return {"label": label, "t_cue": t_cue, "t_on": t_on, "t_off": t_off}
