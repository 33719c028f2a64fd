"""Find an LSL stream by name, type, source id and host."""

from __future__ import annotations

import threading
import time

import pylsl

from bci._check import check_range, check_type
from bci._logging import logger
from bci.acquisition._metadata import describe
from bci.errors import StreamError

_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class SearchStopped(Exception):  # noqa: N818 - not an error: the caller asked for it
    """The search for a stream ended because its ``stop_event`` was set (the program is
    stopping, e.g. on a signal), before a stream was found."""


def _matches(info: pylsl.StreamInfo, name, stype, source_id, hostname) -> bool:
    return (
        (name is None or info.name() == name)
        and (stype is None or info.type().casefold() == stype.casefold())
        and (source_id is None or info.source_id() == source_id)
        and (hostname is None or info.hostname() == hostname)
    )


def _query(name, stype, source_id, hostname) -> str:
    parts = [f"{k}={v!r}" for k, v in (("name", name), ("type", stype),
                                       ("source_id", source_id), ("host", hostname))
             if v is not None]
    return ", ".join(parts) or "any stream"


def _predicate(name, stype, source_id, hostname) -> str | None:
    """XPath 1.0 predicate for liblsl, or None when a value cannot be quoted."""
    terms = []
    for key, value in (("name", name), ("type", stype), ("source_id", source_id),
                       ("hostname", hostname)):
        if value is None:
            continue
        if "'" in value and '"' in value:
            return None
        quote = '"' if "'" in value else "'"
        if key == "type":  # case-insensitive: mne-lsl publishes 'eeg', most devices 'EEG'
            terms.append(f"translate(type,'{_UPPER}','{_UPPER.lower()}')="
                         f"{quote}{value.lower()}{quote}")
        else:
            terms.append(f"{key}={quote}{value}{quote}")
    return " and ".join(terms) if terms else None


def resolve_matching(
    *,
    name: str | None = None,
    stype: str | None = "EEG",
    source_id: str | None = None,
    hostname: str | None = None,
    wait: float = 0.5,
) -> tuple[list[pylsl.StreamInfo], list[pylsl.StreamInfo]]:
    """Look once (for ``wait`` seconds); return (matching, all seen)."""
    seen = pylsl.resolve_streams(wait_time=wait)
    return [s for s in seen if _matches(s, name, stype, source_id, hostname)], seen


def find_stream(
    *,
    name: str | None = None,
    stype: str | None = "EEG",
    source_id: str | None = None,
    hostname: str | None = None,
    timeout: float = 5.0,
    stop_event: threading.Event | None = None,
) -> pylsl.StreamInfo:
    """Find one LSL stream.

    Every given criterion must match. Pin a headset by ``source_id`` and ``hostname``
    together so that a stream with the same name or id from another machine is ignored.

    Parameters
    ----------
    name : str | None
        Stream name.
    stype : str | None, default="EEG"
        Stream type, matched case-insensitively (mne-lsl's ``PlayerLSL`` publishes
        ``"eeg"``); None: any type.
    source_id : str | None
        Source id (the device's serial number, for instance).
    hostname : str | None
        Host that publishes the stream.
    timeout : float, default=5.0
        Seconds to keep looking.
    stop_event : threading.Event | None
        Stop looking as soon as it is set (checked every 20 ms).

    Returns
    -------
    info : pylsl.StreamInfo
        The stream (the newest, when several match; a warning names them all).

    Raises
    ------
    bci.errors.StreamError
        When no stream matches within ``timeout``; the message lists the streams seen.
    SearchStopped
        When ``stop_event`` was set before a stream matched.
    """
    for value, pname in ((name, "name"), (stype, "stype"), (source_id, "source_id"),
                         (hostname, "hostname")):
        check_type(value, (str, type(None)), pname)
    timeout = check_range(timeout, "timeout", 0, None)
    # Continuous resolvers answer without blocking; liblsl's blocking resolve_bypred /
    # resolve_byprop were measured to take 5.5 s here whatever their timeout.
    start = time.monotonic()
    everything = pylsl.ContinuousResolver(forget_after=timeout + 5.0)
    pred = _predicate(name, stype, source_id, hostname)
    matching = (pylsl.ContinuousResolver(pred=pred, forget_after=2.0) if pred is not None
                else everything)
    while True:
        found = [s for s in matching.results() if _matches(s, name, stype, source_id, hostname)]
        elapsed = time.monotonic() - start
        if found or elapsed >= max(timeout, 0.0):
            break
        if stop_event is not None and stop_event.is_set():
            raise SearchStopped(f"Stopped looking for the LSL stream "
                                f"{_query(name, stype, source_id, hostname)}.")
        time.sleep(min(0.02, max(timeout - elapsed, 0.001)))
    if not found:
        time.sleep(max(0.5 - (time.monotonic() - start), 0.0))  # let the listing fill up
        seen = {s.uid(): s for s in everything.results()}
    if not found:
        raise StreamError(
            f"No LSL stream matching {_query(name, stype, source_id, hostname)} was found "
            f"within {timeout:g} s. Check that the headset (or 'ssvep-exo simulate-eeg' / "
            f"'ssvep-exo replay') is running, that the name, type, source id and host are "
            f"spelled as listed below, and that both machines are on the same network.",
            details=["Streams seen:"] + ([f"  - {describe(s)}" for s in seen.values()]
                                        or ["  (none)"]),
        )
    if len(found) > 1:
        found.sort(key=lambda s: s.created_at(), reverse=True)
        logger.warning(
            "%d LSL streams match %s: %s; using the newest. Pin the stream with source_id "
            "and hostname.", len(found), _query(name, stype, source_id, hostname),
            "; ".join(describe(s) for s in found))
    return found[0]


def list_streams(timeout: float = 1.0) -> list[dict]:
    """Return the LSL streams visible within ``timeout`` seconds, as dicts.

    The wait is a Python sleep on a continuous resolver, so Ctrl-C interrupts it.

    Parameters
    ----------
    timeout : float, default=1.0
        Seconds to look, in (0, 3600].

    Returns
    -------
    streams : list of dict
        Keys: name, type, channel_count, nominal_srate, source_id, hostname (sorted by name).
    """
    check_range(timeout, "timeout", 0.0, 3600.0, low_inclusive=False)
    resolver = pylsl.ContinuousResolver(forget_after=max(5.0, float(timeout) + 1.0))
    deadline = time.monotonic() + float(timeout)
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(0.1, left))
    infos = resolver.results()
    del resolver
    rows = {
        i.uid(): {
            "name": i.name(),
            "type": i.type(),
            "channel_count": i.channel_count(),
            "nominal_srate": i.nominal_srate(),
            "source_id": i.source_id(),
            "hostname": i.hostname(),
        }
        for i in infos
    }
    return sorted(rows.values(), key=lambda r: (r["name"], r["source_id"]))
