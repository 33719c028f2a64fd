"""``find_recordings``: recordings under paths, grouped by subject, duplicates dropped."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

import mne
import numpy as np

from bci._logging import logger
from bci.datasets._files import (
    RECORDING_SUFFIXES,
    SUPPORTED_FORMATS,
    is_events_file,
    kalunga_pair,
    subject_from_path,
)
from bci.errors import DatasetError

#: FIF files that are not continuous recordings (MNE naming conventions).
_NOT_RAW_FIF = tuple(
    f"{sep}{kind}.fif" for sep in "-_" for kind in
    ("epo", "ave", "cov", "trans", "fwd", "inv", "sol", "annot", "proj", "bem", "src")
)  # fmt: skip

_FINGERPRINTS: dict[tuple[str, int, int], str] = {}


def _recording_files(root: Path) -> list[Path]:
    found = []
    for p in sorted(root.rglob("*")):
        if not p.is_file() or p.name.startswith("."):
            continue
        name = p.name.lower()
        if not name.endswith(RECORDING_SUFFIXES) or is_events_file(p):
            continue
        if name.endswith(_NOT_RAW_FIF):
            continue
        found.append(p)
    return found


def _resolve_file(p: Path) -> Path:
    if is_events_file(p) and p.name.endswith("-eve.fif"):
        pair = kalunga_pair(p)
        if pair is not None:
            return pair[0]
    if not p.name.lower().endswith(RECORDING_SUFFIXES):
        raise DatasetError(
            f"Unknown recording format: {p.name}. Supported formats: {', '.join(SUPPORTED_FORMATS)}."
        )
    return p


def _subject_of_file(p: Path) -> str:
    subject = subject_from_path(p)
    if subject is not None:
        return subject
    if p.name.lower().endswith((".fif", ".fif.gz")):
        try:
            info = mne.io.read_info(p, verbose="error")
            si = info.get("subject_info") or {}
            if si.get("his_id"):
                return str(si["his_id"])
            if si.get("id") is not None:
                return f"subject{int(si['id']):02d}"
        except Exception:  # noqa: BLE001 - unreadable header: fall back to the file name
            pass
    return p.stem.replace("_raw", "")


def fingerprint(path: Path) -> str:
    """A hash of the samples of a recording (file bytes for formats MNE does not read)."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key in _FINGERPRINTS:
        return _FINGERPRINTS[key]
    h = hashlib.sha1()
    if path.name.lower().endswith((".xdf", ".xdfz")):
        h.update(path.read_bytes())
    else:
        try:
            raw = mne.io.read_raw(path, preload=True, verbose="error")
            h.update(np.ascontiguousarray(raw.get_data()).tobytes())
            h.update(str(raw.info["sfreq"]).encode())
        except Exception:  # noqa: BLE001 - unreadable: compare the bytes; loading reports it
            h.update(path.read_bytes())
    digest = h.hexdigest()
    _FINGERPRINTS[key] = digest
    return digest


def find_recordings(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    *,
    keep_duplicates: bool = False,
) -> dict[str, list[Path]]:
    """Find recordings under files/folders and group them by subject.

    Parameters
    ----------
    paths : path-like | iterable of path-like
        Recording files or folders (searched recursively). Kalunga pairs are listed once,
        by their ``*_raw.fif``.
    keep_duplicates : bool, default=False
        Sessions whose samples are identical to an earlier one (e.g. Kalunga subject07's
        ``record-[2012.07.11-15.33.08]``, a copy of subject03's) are dropped with a logged
        note unless this is True, so that sessions stay independent for cross-session use.

    Returns
    -------
    recordings : dict of str to list of Path
        Subject id (the ``subjectNN``/``sub-NN`` folder, else the file's subject info, else
        the file name) -> its recordings; subjects and files in sorted order.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    groups: dict[str, list[Path]] = {}
    for item in paths:
        p = Path(item)
        if not p.exists():
            raise DatasetError(f"Recording or folder not found: {p}. Check the path.")
        files = _recording_files(p) if p.is_dir() else [_resolve_file(p)]
        for f in files:
            groups.setdefault(_subject_of_file(f), [])
            if f not in groups[_subject_of_file(f)]:
                groups[_subject_of_file(f)].append(f)
    if not groups:
        raise DatasetError(
            f"No recordings found under {', '.join(str(Path(p)) for p in paths)}. Supported "
            f"formats: {', '.join(SUPPORTED_FORMATS)}."
        )
    result = {s: sorted(groups[s]) for s in sorted(groups)}
    if keep_duplicates:
        return result
    seen: dict[str, tuple[str, Path]] = {}
    for subject, files in result.items():
        kept = []
        for f in files:
            fp = fingerprint(f)
            if fp in seen:
                other_subject, other = seen[fp]
                logger.warning(
                    "dropping %s (%s): its samples are identical to %s (%s); pass "
                    "keep_duplicates=True (--keep-duplicates) to keep it",
                    f.name,
                    subject,
                    other.name,
                    other_subject,
                )
                continue
            seen[fp] = (subject, f)
            kept.append(f)
        result[subject] = kept
    return {s: f for s, f in result.items() if f}
