"""A crash-safe incremental writer of XDF files (the LSL recording format).

File layout (XDF 1.0, https://github.com/sccn/xdf/wiki/Specifications): the magic
``XDF:``, then chunks ``[NumLengthBytes][Length][Tag uint16][Content]``: a FileHeader (tag 1),
one StreamHeader per stream (tag 2), Samples (tag 3), ClockOffset (tag 4), Boundary (tag 5)
and a StreamFooter per stream at the end (tag 6). Every chunk is assembled in memory and
written with one ``write`` followed by ``flush`` (and ``os.fsync`` on request), so a killed
process leaves a file that readers (pyxdf) load up to the last complete chunk.
"""

from __future__ import annotations

import datetime as _dt
import os
import struct
from collections.abc import Mapping, Sequence
from xml.sax.saxutils import escape

import numpy as np

TAG_FILE_HEADER = 1
TAG_STREAM_HEADER = 2
TAG_SAMPLES = 3
TAG_CLOCK_OFFSET = 4
TAG_BOUNDARY = 5
TAG_STREAM_FOOTER = 6
#: The boundary chunk's fixed UUID, from the specification.
BOUNDARY_UUID = bytes([0x43, 0xA5, 0x46, 0xDC, 0xCB, 0xF5, 0x41, 0x0F,
                       0xB3, 0x0E, 0xD5, 0x46, 0x73, 0x83, 0xCB, 0xE4])

_NUMERIC_FORMATS = {"float32": "<f4", "double64": "<f8", "int8": "<i1", "int16": "<i2",
                    "int32": "<i4", "int64": "<i8"}


def _varlen(n: int) -> bytes:
    """Variable-length integer: one byte giving the width (1, 4 or 8), then the value."""
    if n < 256:
        return struct.pack("<BB", 1, n)
    if n < 2**32:
        return struct.pack("<BI", 4, n)
    return struct.pack("<BQ", 8, n)


def _chunk(tag: int, content: bytes) -> bytes:
    return _varlen(len(content) + 2) + struct.pack("<H", tag) + content


def _xml(tag: str, fields: Mapping[str, object]) -> str:
    def render(value: object) -> str:
        if isinstance(value, Mapping):
            return "".join(f"<{k}>{render(v)}</{k}>" for k, v in value.items())
        if isinstance(value, (list, tuple)):  # list of (tag, value)
            return "".join(f"<{k}>{render(v)}</{k}>" for k, v in value)
        return escape(str(value))

    return f'<?xml version="1.0"?><{tag}>{render(fields)}</{tag}>'


def stream_header_xml(
    *,
    name: str,
    stype: str,
    channel_count: int,
    nominal_srate: float,
    channel_format: str,
    source_id: str = "",
    created_at: float = 0.0,
    ch_names: Sequence[str] | None = None,
    unit: str | None = None,
    ch_type: str | None = None,
    desc: Mapping[str, object] | None = None,
) -> str:
    """The StreamHeader XML, with ``desc/channels/channel/{label,unit,type}`` when named."""
    d: dict[str, object] = {}
    if ch_names is not None:
        chans = []
        for label in ch_names:
            ch: dict[str, object] = {"label": label}
            if unit is not None:
                ch["unit"] = unit
            if ch_type is not None:
                ch["type"] = ch_type
            chans.append(("channel", ch))
        d["channels"] = chans
    d["acquisition"] = {"manufacturer": "ssvep-exo"}
    d.update(desc or {})
    return _xml("info", {
        "name": name, "type": stype, "channel_count": int(channel_count),
        "nominal_srate": repr(float(nominal_srate)), "channel_format": channel_format,
        "source_id": source_id, "version": "1.1", "created_at": repr(float(created_at)),
        "uid": f"ssvep-exo-{name}", "session_id": "default", "hostname": os.uname().nodename,
        "desc": d,
    })


class XDFWriter:
    """Write an XDF file chunk by chunk.

    Parameters
    ----------
    path : path-like
        File to create (overwritten).
    fsync : bool, default=False
        Also ``os.fsync`` after every chunk (survives a power cut, costs disk time).

    Raises
    ------
    OSError
        From any write (the caller decides what a failure means).
    """

    def __init__(self, path: str | os.PathLike, *, fsync: bool = False) -> None:
        self.path = os.fspath(path)
        self.fsync = bool(fsync)
        self._f = open(self.path, "wb")  # noqa: SIM115 - kept open while recording
        self._formats: dict[int, tuple[str, int]] = {}
        self.bytes_written = 0
        self._write(b"XDF:")
        now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        self._write(_chunk(TAG_FILE_HEADER, _xml("info", {"version": "1.0",
                                                          "datetime": now}).encode()))

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran."""
        return self._f.closed

    def _write(self, data: bytes) -> None:
        self._f.write(data)
        self._f.flush()
        if self.fsync:
            os.fsync(self._f.fileno())
        self.bytes_written += len(data)

    def add_stream(self, stream_id: int, header_xml: str, channel_format: str,
                   channel_count: int) -> None:
        """Write a StreamHeader; later samples of ``stream_id`` use this format."""
        if channel_format != "string" and channel_format not in _NUMERIC_FORMATS:
            raise ValueError(f"Unsupported XDF channel format {channel_format!r}.")
        self._formats[stream_id] = (channel_format, int(channel_count))
        self._write(_chunk(TAG_STREAM_HEADER,
                           struct.pack("<I", stream_id) + header_xml.encode("utf-8")))

    def write_samples(self, stream_id: int, samples, timestamps: Sequence[float]) -> None:
        """Write one Samples chunk.

        Parameters
        ----------
        stream_id : int
            A stream added with :meth:`add_stream`.
        samples : ndarray, shape (n_samples, n_channels) | list of list of str
            Values (numbers for numeric streams, strings for string streams).
        timestamps : sequence of float
            One timestamp per sample.
        """
        fmt, n_ch = self._formats[stream_id]
        ts = np.asarray(timestamps, dtype="<f8")
        n = len(ts)
        if n == 0:
            return
        parts = [struct.pack("<I", stream_id), _varlen(n)]
        if fmt == "string":
            for t, sample in zip(ts, samples):
                parts.append(b"\x08" + t.tobytes())
                for value in sample:
                    raw = str(value).encode("utf-8")
                    parts.append(_varlen(len(raw)) + raw)
        else:
            values = np.ascontiguousarray(samples, dtype=_NUMERIC_FORMATS[fmt]).reshape(n, n_ch)
            rec = np.empty(n, dtype=[("b", "u1"), ("t", "<f8"),
                                     ("x", _NUMERIC_FORMATS[fmt], (n_ch,))])
            rec["b"] = 8
            rec["t"] = ts
            rec["x"] = values
            parts.append(rec.tobytes())
        self._write(_chunk(TAG_SAMPLES, b"".join(parts)))

    def write_clock_offset(self, stream_id: int, collection_time: float, offset: float) -> None:
        """Write a ClockOffset chunk (remote clock = local clock + offset)."""
        self._write(_chunk(TAG_CLOCK_OFFSET, struct.pack("<Idd", stream_id, collection_time,
                                                          offset)))

    def write_boundary(self) -> None:
        """Write a Boundary chunk (lets readers resynchronise in a damaged file)."""
        self._write(_chunk(TAG_BOUNDARY, BOUNDARY_UUID))

    def write_footer(self, stream_id: int, *, first_timestamp: float, last_timestamp: float,
                     sample_count: int, clock_offsets: Sequence[tuple[float, float]] = ()
                     ) -> None:
        """Write a StreamFooter chunk."""
        xml = _xml("info", {
            "first_timestamp": repr(float(first_timestamp)),
            "last_timestamp": repr(float(last_timestamp)),
            "sample_count": int(sample_count),
            "clock_offsets": [("offset", {"time": repr(float(t)), "value": repr(float(v))})
                              for t, v in clock_offsets],
        })
        self._write(_chunk(TAG_STREAM_FOOTER, struct.pack("<I", stream_id) + xml.encode()))

    def close(self) -> None:
        """Close the file (safe to call twice)."""
        if not self._f.closed:
            self._f.close()
