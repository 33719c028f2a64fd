"""``load_recording``: one entry point for every supported recording format."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import mne

from bci._logging import logger
from bci.datasets._cues import check_sfreq, require_cues
from bci.datasets._files import (
    SUPPORTED_FORMATS,
    cue_freqs,
    is_events_file,
    kalunga_pair,
    read_kalunga,
    read_mne_file,
    read_xdf,
    subject_from_path,
)
from bci.errors import DatasetError

_MNE_SUFFIXES = (".fif", ".fif.gz", ".edf", ".bdf", ".gdf", ".vhdr", ".set")


def _as_path(path: object) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"'path' must be a str or path-like, got {type(path).__name__} instead.")
    return Path(path)


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise DatasetError(f"Recording not found: {path}. Check the path (and the working folder).")
    if path.is_dir():
        raise DatasetError(
            f"{path} is a folder; load_recording takes one file. Use find_recordings() to "
            f"list the recordings in a folder."
        )
    if path.stat().st_size == 0:
        raise DatasetError(f"Could not read {path}: the file is empty (truncated or corrupted).")


def load_recording(
    path: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    event_id: Mapping[object, object] | None = None,
    cue_map: Mapping[object, object] | None = None,
    stream: str | None = None,
    subject: str | None = None,
    n_harmonics: int = 1,
    salvage: bool = False,
) -> mne.io.Raw:
    """Load a recorded session as a preloaded Raw whose annotations name the cues.

    Parameters
    ----------
    path : path-like | (path-like, path-like)
        A recording file. For the Kalunga2016 layout give the ``*_raw.fif``, its sibling
        ``*-eve.fif``, or the pair ``(raw, events)``.
    event_id : dict | None
        Event code -> label (``{2: "13.0Hz", 1: "rest"}`` or ``{2: 13}``), for files whose
        cues are events (a stim channel or coded annotations). Default for the Kalunga
        layout: 1 rest, 2 13 Hz, 3 21 Hz, 4 17 Hz.
    cue_map : dict | None
        Annotation description -> label, for files whose annotations use other names.
        Without it, descriptions that read as a frequency (``"13Hz"``, ``"13"``) or rest
        become cues.
    stream : str | None
        XDF only: name of the EEG stream (default: the largest stream of type ``EEG``).
    subject : str | None
        Subject id stored in ``raw.info["subject_info"]["his_id"]`` (default: the
        ``subjectNN`` / ``sub-NN`` folder holding the file, when there is one).
    n_harmonics : int, default=1
        The sampling rate must represent this many harmonics of the highest stimulus
        frequency (checked against the Nyquist frequency).
    salvage : bool, default=False
        XDF only: read a file with damaged chunks (cut short, or bytes corrupted) by
        skipping them, with a warning, instead of raising. The command line never does:
        figures from part of a file that looks whole would mislead.

    Returns
    -------
    raw : mne.io.Raw
        Preloaded data (volts) with one annotation per cue, named ``"13.0Hz"``/``"rest"``
        and lasting until the next cue; other annotations are kept as they were.

    Raises
    ------
    bci.errors.DatasetError
        Missing, empty, truncated or unreadable file; unknown format; no cue annotations;
        sampling rate too low.
    """
    if isinstance(path, (list, tuple)):
        if len(path) != 2:
            raise ValueError(f"'path' as a sequence must be (raw, events), got {len(path)} items.")
        raw_path, eve_path = (_as_path(p) for p in path)
        if is_events_file(raw_path):
            raw_path, eve_path = eve_path, raw_path
        for p in (raw_path, eve_path):
            _check_exists(p)
        raw = read_kalunga(raw_path, eve_path, event_id)
        source = raw_path
    else:
        source = _as_path(path)
        _check_exists(source)
        name = source.name.lower()
        pair = kalunga_pair(source) if name.endswith(".fif") else None
        if pair is not None:
            raw = read_kalunga(pair[0], pair[1], event_id)
            source = pair[0]
        elif name.endswith((".xdf", ".xdfz")):
            raw = read_xdf(source, stream, salvage=salvage)
        elif name.endswith(_MNE_SUFFIXES):
            if is_events_file(source):
                raise DatasetError(f"{source} holds only events; pass the recording instead.")
            raw = read_mne_file(source, event_id, cue_map)
        else:
            raise DatasetError(
                f"Unknown recording format: {source.name}. Supported formats: "
                f"{', '.join(SUPPORTED_FORMATS)}."
            )
    require_cues(raw, source)
    check_sfreq(raw.info["sfreq"], cue_freqs(raw), n_harmonics)
    subject = subject or subject_from_path(source)
    if subject is not None:
        info = dict(raw.info.get("subject_info") or {})
        info["his_id"] = str(subject)
        with raw.info._unlock():
            raw.info["subject_info"] = info
    logger.info(
        "loaded %s: %d channels at %g Hz, %d annotations",
        source.name,
        len(raw.ch_names),
        raw.info["sfreq"],
        len(raw.annotations),
    )
    return raw


def subject_of(raw: mne.io.BaseRaw) -> str | None:
    """Return the subject id stored by :func:`load_recording` (or in the file), if any."""
    info = raw.info.get("subject_info") or {}
    if info.get("his_id"):
        return str(info["his_id"])
    if info.get("id") is not None:
        return f"subject{int(info['id']):02d}"
    return None
