"""Publish decisions as an LSL marker stream (one ``Decision.to_json()`` string per sample)."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence

import pylsl

from bci._logging import logger
from bci.acquisition import find_stream
from bci.errors import StreamError
from bci.online.decision import Decision

DEFAULT_NAME = "ssvep-decisions"
STREAM_TYPE = "Markers"


class DecisionsOutlet:
    """LSL outlet for decisions: type ``"Markers"``, one string channel, irregular rate.

    Parameters
    ----------
    name : str, default="ssvep-decisions"
        Stream name.
    source_id : str | None, default=None
        Unique source id (defaults to ``name``), so consumers can pin this stream.
    classes : sequence of str, default=()
        Decoder classes, written to the stream's metadata (``desc/classes/class``).
    meta : dict | None, default=None
        Extra ``desc`` entries (e.g. ``{"method": "fbcca", "window_s": "1.0"}``).
    """

    def __init__(
        self,
        name: str = DEFAULT_NAME,
        *,
        source_id: str | None = None,
        classes: Sequence[str] = (),
        meta: dict | None = None,
    ) -> None:
        info = pylsl.StreamInfo(
            name, STREAM_TYPE, 1, pylsl.IRREGULAR_RATE, pylsl.cf_string, source_id or name
        )
        desc = info.desc()
        desc.append_child_value("content", "ssvep-exo decisions (Decision.to_json)")
        ch = desc.append_child("channels").append_child("channel")
        ch.append_child_value("label", "decision")
        ch.append_child_value("type", "Markers")
        cls_el = desc.append_child("classes")
        for c in classes:
            cls_el.append_child_value("class", str(c))
        for k, v in (meta or {}).items():
            desc.append_child_value(str(k), str(v))
        self.name = name
        self._outlet = pylsl.StreamOutlet(info)

    def push(self, decision: Decision) -> None:
        """Publish one decision, stamped with its decision time."""
        self._outlet.push_sample([decision.to_json()], decision.timestamp)

    def have_consumers(self) -> bool:
        """True when at least one inlet is connected."""
        return bool(self._outlet.have_consumers())

    def close(self) -> None:
        """Destroy the outlet (idempotent)."""
        self._outlet = _Closed()

    def __enter__(self) -> DecisionsOutlet:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Closed:
    def push_sample(self, *a, **k) -> None:
        raise RuntimeError("The decisions outlet is closed.")

    def have_consumers(self) -> bool:
        return False


class DecisionsInlet:
    """Receive decisions from a :class:`DecisionsOutlet` (this or another machine).

    Parameters
    ----------
    name : str, default="ssvep-decisions"
        Stream name to resolve.
    source_id : str | None, default=None
        Pin the stream by source id as well.
    timeout : float, default=5.0
        Seconds to wait for the stream.
    stop_event : threading.Event | None
        Stop looking for the stream as soon as it is set.

    Raises
    ------
    StreamError
        When no matching stream is found in time.
    bci.acquisition.SearchStopped
        When ``stop_event`` was set before the stream was found.
    """

    def __init__(
        self, name: str = DEFAULT_NAME, *, source_id: str | None = None, timeout: float = 5.0,
        stop_event: threading.Event | None = None,
    ) -> None:
        try:
            found = find_stream(name=name, stype=STREAM_TYPE, source_id=source_id or None,
                                timeout=timeout, stop_event=stop_event)
        except StreamError as exc:
            raise StreamError(
                f"No decisions stream named {name!r} found within {timeout:g} s: start the "
                "online loop with a decisions outlet (ssvep-exo run --role decoder), or check "
                "the name against the streams below.", details=exc.details) from None
        self._inlet = pylsl.StreamInlet(found, max_buflen=60, recover=True)
        self._inlet.open_stream(timeout)
        #: The stream's full info, ``desc`` included (what resolving returns has no desc).
        self.info: pylsl.StreamInfo = self._inlet.info(timeout)
        logger.info("Listening to decisions stream %r", name)

    @property
    def classes(self) -> list[str]:
        """The decoder classes the outlet declared (``desc/classes/class``)."""
        out = []
        el = self.info.desc().child("classes").child("class")
        while not el.empty():
            out.append(el.child_value())
            el = el.next_sibling("class")
        return out

    def pull(self, timeout: float = 0.0) -> list[Decision]:
        """Return the decisions received so far (waits up to ``timeout`` for the first)."""
        out = []
        sample, _ = self._inlet.pull_sample(timeout=timeout)
        while sample is not None:
            out.append(Decision.from_dict(json.loads(sample[0])))
            sample, _ = self._inlet.pull_sample(timeout=0.0)
        return out

    def close(self) -> None:
        """Close the inlet."""
        self._inlet.close_stream()

    def __enter__(self) -> DecisionsInlet:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
