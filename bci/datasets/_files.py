"""Readers: the Kalunga pair layout, any MNE-readable file, LSL XDF (via pyxdf)."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from pathlib import Path

import mne
import numpy as np

from bci._logging import logger
from bci.datasets._cues import (
    canonical_label,
    cue_table,
    map_label,
    set_cue_annotations,
)
from bci.errors import DatasetError
from bci.labels import REST_LABEL, label_to_freq
from bci.units import ASSUMED_UNIT, implausible_amplitude, volts_per_unit

#: Event codes of the Kalunga2016 recordings (``*-eve.fif``).
KALUNGA_EVENT_ID: dict[int, str] = {1: REST_LABEL, 2: "13.0Hz", 3: "21.0Hz", 4: "17.0Hz"}

#: File name endings this package reads, and what reads them.
SUPPORTED_FORMATS: dict[str, str] = {
    "_raw.fif (+ sibling -eve.fif)": "Kalunga2016 layout (mne.read_events)",
    ".fif": "MNE FIF with annotations",
    ".edf": "EDF/EDF+ (mne.io.read_raw_edf)",
    ".bdf": "BDF (mne.io.read_raw_bdf)",
    ".gdf": "GDF (mne.io.read_raw_gdf)",
    ".vhdr": "BrainVision (mne.io.read_raw_brainvision)",
    ".set": "EEGLAB (mne.io.read_raw_eeglab)",
    ".xdf": "LSL XDF (pyxdf)",
}
RECORDING_SUFFIXES = (".fif", ".fif.gz", ".edf", ".bdf", ".gdf", ".vhdr", ".set", ".xdf", ".xdfz")
_SUBJECT_DIR_RE = re.compile(r"^(sub(?:ject)?[-_]?[A-Za-z0-9]+)$", re.IGNORECASE)


def is_events_file(path: Path) -> bool:
    """True for an MNE events file (``*-eve.fif``)."""
    name = path.name.lower()
    return name.endswith(("-eve.fif", "_eve.fif", "-eve.fif.gz"))


def kalunga_pair(path: Path) -> tuple[Path, Path] | None:
    """Return (raw, events) when ``path`` is one file of a ``*_raw.fif`` / ``*-eve.fif`` pair."""
    name = path.name
    if name.endswith("_raw.fif"):
        raw, eve = path, path.with_name(name[: -len("_raw.fif")] + "-eve.fif")
    elif name.endswith("-eve.fif"):
        raw, eve = path.with_name(name[: -len("-eve.fif")] + "_raw.fif"), path
    else:
        return None
    if raw.exists() and eve.exists():
        return raw, eve
    if name.endswith("-eve.fif"):
        raise DatasetError(
            f"{path} is an events file but its recording {raw.name} is missing next to it; "
            f"pass the recording (*_raw.fif) or put the pair in one folder."
        )
    return None


def subject_from_path(path: Path) -> str | None:
    """Return the subject folder name (``subject01``, ``sub-01``) above ``path``, if any."""
    for parent in path.resolve().parents:
        if _SUBJECT_DIR_RE.match(parent.name):
            return parent.name
    return None


def _read_failed(path: Path, exc: Exception) -> DatasetError:
    return DatasetError(
        f"Could not read {path}: the file looks truncated or corrupted "
        f"({type(exc).__name__}: {exc}). Re-export or re-copy the recording."
    )


def check_fif_chain(path: Path) -> None:
    """Walk the FIF tag chain of ``path``; raise DatasetError on a loop or a bad pointer.

    MNE follows a FIF file's tag chain (each tag's ``next`` field) without looking for loops:
    a damaged ``next`` that points back makes it read the same tags forever, growing its
    directory until memory runs out (gigabytes from a few kB file). This walk reads only the
    16-byte tag headers, so a loop is caught before MNE sees the file. Compressed ``.fif.gz``
    files are left to MNE; truncation is left to MNE too.
    """
    import struct

    if not str(path).lower().endswith(".fif"):
        return
    with open(path, "rb") as f:
        size = f.seek(0, 2)
        pos, seen = 0, set()
        while pos + 16 <= size:
            if pos in seen:
                raise DatasetError(
                    f"Could not read {path}: the file looks truncated or corrupted (its tag "
                    f"chain loops back to byte {pos}). Re-export or re-copy the recording.")
            seen.add(pos)
            f.seek(pos)
            _kind, _type, length, nxt = struct.unpack(">iiii", f.read(16))
            if length < 0 or nxt < -1 or nxt >= size:
                raise DatasetError(
                    f"Could not read {path}: the file looks truncated or corrupted (bad tag "
                    f"header at byte {pos}). Re-export or re-copy the recording.")
            if nxt == -1:
                return
            pos = nxt if nxt > 0 else pos + 16 + length


def read_kalunga(
    raw_path: Path, eve_path: Path, event_id: Mapping[int, object] | None
) -> mne.io.Raw:
    """Read a ``*_raw.fif`` + ``*-eve.fif`` pair into a Raw with cue annotations."""
    codes = {int(k): map_label(v) for k, v in (event_id or KALUNGA_EVENT_ID).items()}
    check_fif_chain(raw_path)
    check_fif_chain(eve_path)
    try:
        raw = mne.io.read_raw_fif(raw_path, preload=True, verbose="error")
        events = mne.read_events(eve_path, verbose="error")
    except Exception as exc:  # noqa: BLE001 - any reader failure is a bad file
        raise _read_failed(raw_path, exc) from exc
    keep = np.isin(events[:, 2], list(codes))
    if not keep.all():
        unknown = sorted(set(events[~keep, 2].tolist()))
        logger.info("%s: ignoring event codes %s (not in event_id)", eve_path.name, unknown)
    events = events[keep]
    onsets = (events[:, 0] - raw.first_samp) / raw.info["sfreq"]
    labels = [codes[int(c)] for c in events[:, 2]]
    set_cue_annotations(raw, onsets, labels)
    return raw


def read_mne_file(path: Path, event_id: Mapping[object, object] | None, cue_map) -> mne.io.Raw:
    """Read any file ``mne.io.read_raw`` supports; cues from annotations or events.

    Annotation descriptions become cues through ``event_id``/``cue_map`` (keys compared as
    strings) or when they read as a label (:func:`canonical_label`). With ``event_id`` and a
    stim channel, the channel's events with those codes are cues too.
    """
    check_fif_chain(path)
    try:
        raw = mne.io.read_raw(path, preload=True, verbose="error")
    except Exception as exc:  # noqa: BLE001
        raise _read_failed(path, exc) from exc
    shift = raw.first_time if raw.annotations.orig_time is not None else 0.0
    mapping = {str(k): map_label(v) for k, v in {**(cue_map or {}), **(event_id or {})}.items()}
    ann = raw.annotations
    labels = [mapping.get(str(d)) or canonical_label(d) for d in ann.description]
    is_cue = np.array([lab is not None for lab in labels], bool)
    onsets = list(ann.onset[is_cue] - shift)
    cue_labels = [lab for lab in labels if lab is not None]
    if event_id is not None and len(mne.pick_types(raw.info, stim=True)):
        events = mne.find_events(raw, shortest_event=1, verbose="error")
        for sample, _, code in events:
            if str(code) in mapping:
                onsets.append((sample - raw.first_samp) / raw.info["sfreq"])
                cue_labels.append(mapping[str(code)])
    extra = mne.Annotations(
        ann.onset[~is_cue] - shift, ann.duration[~is_cue], ann.description[~is_cue]
    )
    set_cue_annotations(raw, np.asarray(onsets, float), cue_labels, extra)
    return raw


def _xdf_field(info: dict, key: str, default=None):
    value = info.get(key)
    if isinstance(value, list):
        value = value[0] if value else default
    return default if value is None else value


def _xdf_channels(stream: dict) -> list[dict]:
    desc = stream["info"].get("desc") or [None]
    desc = desc[0] if isinstance(desc, list) else desc
    if not isinstance(desc, dict):
        return []
    channels = (desc.get("channels") or [None])[0]
    if not isinstance(channels, dict):
        return []
    out = []
    for ch in channels.get("channel") or []:
        out.append({k: _xdf_field(ch, k, "") for k in ("label", "unit", "type")})
    return out


def _is_marker_stream(stream: dict) -> bool:
    info = stream["info"]
    fmt = str(_xdf_field(info, "channel_format", "")).lower()
    typ = str(_xdf_field(info, "type", "")).lower()
    return fmt == "string" or typ in ("markers", "marker", "events")


def _is_decisions_stream(stream: dict) -> bool:
    """The online loop's decisions (JSON per step) are not cues: leave them out of the Raw."""
    return str(_xdf_field(stream["info"], "name", "")).endswith("decisions")


def _marker_onset(stamps: np.ndarray, ts: float, sfreq: float) -> float:
    """Onset (s, in samples/sfreq) of the EEG sample a marker timestamp falls on.

    Placing markers by sample index rather than by ``ts - stamps[0]`` keeps them on the
    right sample when the session ran faster than real time or samples were lost.
    """
    idx = int(np.searchsorted(stamps, ts, side="left"))
    if 0 < idx < len(stamps) and ts - stamps[idx - 1] < stamps[idx] - ts:
        idx -= 1
    if idx >= len(stamps):  # after the last sample: extrapolate at the nominal rate
        return (len(stamps) - 1) / sfreq + (ts - stamps[-1])
    if idx == 0 and ts < stamps[0]:
        return ts - stamps[0]
    return idx / sfreq


def _pick_eeg_stream(streams: list[dict], name: str | None, path: Path) -> dict:
    data = [s for s in streams if not _is_marker_stream(s)]
    described = [
        f"{_xdf_field(s['info'], 'name', '?')!r} (type {_xdf_field(s['info'], 'type', '?')!r})"
        for s in streams
    ]
    if name is not None:
        hits = [s for s in data if _xdf_field(s["info"], "name") == name]
        if not hits:
            raise DatasetError(
                f"{path}: no EEG stream named {name!r}; streams in the file: "
                f"{', '.join(described) or 'none'}."
            )
        return hits[0]
    eeg = [s for s in data if str(_xdf_field(s["info"], "type", "")).upper() == "EEG"]
    if not eeg:
        raise DatasetError(
            f"{path}: no stream of type 'EEG'; streams in the file: "
            f"{', '.join(described) or 'none'}. Pass stream=<name> to choose one."
        )
    return max(eeg, key=lambda s: np.asarray(s["time_series"]).size)


class _PyxdfNotes(logging.Handler):
    """Collects what pyxdf logs while it reads a file (on its own logger, which would
    otherwise print to stderr as it goes), for :func:`read_xdf` to say once.

    pyxdf logs damage (a chunk it cannot parse: a file cut or corrupted) as errors and then
    skips to the next boundary chunk; its warnings are remarks on intact files (an effective
    sampling rate other than the nominal one, unusable clock offsets).
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.damage: list[str] = []
        self.remarks: list[str] = []
        self._logger = logging.getLogger("pyxdf")

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage().strip().rstrip(".")
        (self.damage if record.levelno >= logging.ERROR else self.remarks).append(text)

    def __enter__(self) -> _PyxdfNotes:
        self._propagate = self._logger.propagate
        self._logger.addHandler(self)
        self._logger.propagate = False
        return self

    def __exit__(self, *exc) -> None:
        self._logger.removeHandler(self)
        self._logger.propagate = self._propagate


#: What pyxdf adds to a damage note about what it does next (it goes on reading).
_PYXDF_NEXT = re.compile(r",? *(scanning forward to (the )?next boundary chunk|ignoring "
                         r"corrupted XML element in footer)$", re.IGNORECASE)
_SALVAGE = "bci.datasets.load_recording(path, salvage=True)"


def xdf_cut_short(path: Path) -> str | None:
    """How an XDF file ends inside a chunk (a copy or a recording cut short), else None.

    Walks the chunk framing only (``[NumLengthBytes][Length][Tag][Content]``, after the
    ``XDF:`` magic), as :func:`check_fif_chain` does for FIF; pyxdf reads the contents.
    Compressed ``.xdfz`` files are not walked.
    """
    if not str(path).lower().endswith(".xdf"):
        return None
    with open(path, "rb") as f:
        size = f.seek(0, 2)
        pos = 4
        while pos < size:
            f.seek(pos)
            nb = f.read(1)[0]
            if nb not in (1, 4, 8):
                return None  # not a chunk header: damage, not a cut
            head = f.read(nb)
            end = pos + 1 + nb + int.from_bytes(head, "little")
            if len(head) < nb or end > size:
                short = f", {end - size:,} bytes before the end of its last chunk" \
                    if len(head) == nb else ", inside the header of its last chunk"
                return f"the file is truncated (it ends at byte {size:,}{short})"
            pos = end
    return None


def _damaged_xdf(path: Path, what: str) -> DatasetError:
    cut = xdf_cut_short(path)
    if cut is not None:
        return DatasetError(f"Could not read {path}: {cut}. Re-copy it; if the recorder "
                            f"stopped while writing, the chunks before the cut load with "
                            f"{_SALVAGE}.")
    return DatasetError(f"Could not read {path}: the file looks truncated or corrupted "
                        f"({what}). Re-copy it; the chunks that can be read load with "
                        f"{_SALVAGE}.")


def read_xdf(path: Path, stream: str | None, *, salvage: bool = False) -> mne.io.RawArray:
    """Read an LSL XDF recording: one EEG stream plus the marker streams' cues.

    A file cut short inside a chunk, or a chunk pyxdf cannot parse (damaged bytes), raises
    :class:`~bci.errors.DatasetError` saying which; with ``salvage`` the chunks pyxdf can
    read are used and a warning says so.
    """
    import pyxdf

    try:
        with _PyxdfNotes() as notes:
            streams, _ = pyxdf.load_xdf(str(path), synchronize_clocks=True,
                                       dejitter_timestamps=True)
    except Exception as exc:  # noqa: BLE001
        if xdf_cut_short(path) is not None:
            raise _damaged_xdf(path, "") from exc
        raise _read_failed(path, exc) from exc
    for remark in notes.remarks:
        logger.info("%s: pyxdf: %s", path.name, remark)
    if notes.damage:
        what = "pyxdf: " + _PYXDF_NEXT.sub("", notes.damage[0])
        if not salvage:
            raise _damaged_xdf(path, what)
        logger.warning("%s: the file is truncated or damaged (%s); using what could be read.",
                       path.name, what)
    if not streams:
        raise _read_failed(path, ValueError("no stream could be read"))
    eeg = _pick_eeg_stream(streams, stream, path)
    data = np.asarray(eeg["time_series"], dtype=float)
    stamps = np.asarray(eeg["time_stamps"], dtype=float)
    if data.ndim != 2 or data.shape[0] < 2:
        raise DatasetError(f"{path}: the EEG stream holds no samples; the recording is empty.")
    if not np.isfinite(stamps).all():
        raise DatasetError(
            f"Could not read {path}: the file looks truncated or corrupted (the EEG stream has "
            "invalid time stamps). Re-export or re-copy the recording.")
    info = eeg["info"]
    sfreq = float(_xdf_field(info, "nominal_srate", 0) or 0)
    if sfreq <= 0:
        sfreq = float(_xdf_field(info, "effective_srate", 0) or 0) or 1.0 / np.median(
            np.diff(stamps)
        )
    chans = _xdf_channels(eeg)
    n_ch = data.shape[1]
    if len(chans) != n_ch:
        chans = [{"label": f"EEG{i + 1:03d}", "unit": "", "type": "EEG"} for i in range(n_ch)]
    names = [c["label"] or f"EEG{i + 1:03d}" for i, c in enumerate(chans)]
    scales, assumed = [], []
    for i, c in enumerate(chans):
        scale = volts_per_unit(str(c["unit"]))
        if scale is None:
            logger.info("%s: channel %s has unit %r; assuming %s", path.name, c["label"],
                        c["unit"], ASSUMED_UNIT)
            if str(c["type"]).upper() in ("EEG", ""):
                assumed.append(i)
        scales.append(1e-6 if scale is None else scale)
    if assumed:
        first = data[: int(min(10.0 * sfreq, len(data))), assumed] * 1e-6
        why = implausible_amplitude(first.T)
        if why is not None:
            raise DatasetError(
                f"{path}: channels {[names[i] for i in assumed]} declare no voltage unit and "
                f"{why}. Declare the unit in the recording's channel metadata."
            )
    types = ["eeg" if str(c["type"]).upper() in ("EEG", "") else "misc" for c in chans]
    raw_info = mne.create_info(names, sfreq, types)
    raw = mne.io.RawArray((data * np.asarray(scales)).T, raw_info, verbose="error")
    onsets, labels, other_on, other_desc = [], [], [], []
    end_s = raw.n_times / sfreq
    outside = []
    for s in streams:
        if not _is_marker_stream(s) or _is_decisions_stream(s):
            continue
        for ts, values in zip(np.asarray(s["time_stamps"], float), s["time_series"]):
            text = str(values[0] if isinstance(values, (list, tuple, np.ndarray)) else values)
            label = canonical_label(text)
            onset = _marker_onset(stamps, ts, sfreq)
            if not math.isfinite(onset):
                raise DatasetError(
                    f"Could not read {path}: the file looks truncated or corrupted (marker "
                    f"{text!r} has no valid time stamp). Re-export or re-copy the recording.")
            if not -0.5 / sfreq <= onset <= end_s:
                outside.append(text)
                continue
            onset = max(onset, 0.0)  # half a sample early: on the first sample
            if label is not None:
                onsets.append(onset)
                labels.append(label)
            else:
                other_on.append(onset)
                other_desc.append(text)
    if outside:
        logger.warning("%s: %d marker(s) outside the EEG recording (before its first or "
                       "after its last sample) ignored: %s", path.name, len(outside),
                       ", ".join(map(repr, outside[:5])) + (" ..." if len(outside) > 5 else ""))
    extra = mne.Annotations(other_on, [0.0] * len(other_on), other_desc) if other_on else None
    set_cue_annotations(raw, np.asarray(onsets, float), labels, extra)
    return raw


def cue_freqs(raw: mne.io.BaseRaw) -> list[float]:
    """Stimulus frequencies (Hz) named by the cue annotations of ``raw``, sorted."""

    _, labels = cue_table(raw)
    return sorted({f for f in (label_to_freq(lab) for lab in set(labels)) if f is not None})
