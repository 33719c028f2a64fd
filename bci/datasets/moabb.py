"""MOABB SSVEP datasets already on this machine -> annotated ``mne.io.Raw`` by subject.

``load_moabb("Kalunga2016")`` reads a dataset that MOABB has downloaded before (its files in
the local MNE data folder, ``MNE_DATA`` or ``MNE_DATASETS_<CODE>_PATH``) and returns what
:func:`bci.datasets.find_recordings` + :func:`bci.datasets.load_recording` return for files:
``{subject: [Raw per session]}``, each Raw with cue annotations (``"13.0Hz"``, ``"rest"``),
so ``ssvep-exo evaluate --moabb`` runs the same evaluation on it. It never downloads: any
network connection MOABB attempts while loading is refused and reported as a dataset that
is not on this machine. MOABB is an optional dependency (``pip install ssvep-exo[moabb]``).
"""

from __future__ import annotations

import contextlib
import importlib
import ipaddress
import socket
from collections.abc import Iterator, Sequence

import mne
import numpy as np

from bci.datasets._cues import check_sfreq, map_label, require_cues, set_cue_annotations
from bci.datasets._files import cue_freqs
from bci.errors import DatasetError


class _DownloadRefused(ConnectionRefusedError):
    """A connection to another machine was attempted while reading a local dataset."""


def _local(host: object) -> bool:
    if not isinstance(host, str) or host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


@contextlib.contextmanager
def no_downloads() -> Iterator[list[str]]:
    """Refuse every connection to another host in this process while the block runs.

    Yields the list of hosts that were refused (empty when nothing tried). Name lookups of
    other hosts are refused too, so nothing waits on a DNS time-out.
    """
    refused: list[str] = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def _check(address) -> None:
        host = address[0] if isinstance(address, tuple) and address else address
        if not _local(host):
            refused.append(str(host))
            raise _DownloadRefused(f"ssvep-exo does not download: connection to {host} refused")

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            _check(address)
        return real_connect(self, address)

    def connect_ex(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            _check(address)
        return real_connect_ex(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if isinstance(host, bytes):
            host = host.decode("ascii", "replace")
        if host is not None and not _local(host):
            try:
                ipaddress.ip_address(str(host).split("%")[0])
            except ValueError:  # a name, not an address: refuse the lookup
                _check((host,))
        return real_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect, socket.socket.connect_ex = connect, connect_ex
    socket.getaddrinfo = getaddrinfo
    try:
        yield refused
    finally:
        socket.socket.connect, socket.socket.connect_ex = real_connect, real_connect_ex
        socket.getaddrinfo = real_getaddrinfo


def _paradigm_of(obj, base: type) -> str | None:
    """The declared paradigm of a MOABB dataset class (from its METADATA), else None."""
    if not (isinstance(obj, type) and issubclass(obj, base)):
        return None
    experiment = getattr(getattr(obj, "METADATA", None), "experiment", None)
    return getattr(experiment, "paradigm", None)


def resolve_dataset(spec):
    """A MOABB dataset instance from a name, ``module:attribute``, class or instance.

    Parameters
    ----------
    spec : str | type | moabb.datasets.base.BaseDataset
        A class name in ``moabb.datasets`` (``"Kalunga2016"``, ``"Nakanishi2015"``,
        ``"Wang2016"``, ``"MAMEM1"``...), or ``"package.module:name"`` naming a dataset
        class or instance of your own (a ``BaseDataset`` subclass), or the class or
        instance itself. Classes are instantiated without arguments.

    Returns
    -------
    dataset : moabb.datasets.base.BaseDataset
        An SSVEP dataset (``dataset.paradigm == "ssvep"``).
    """
    try:
        import moabb.datasets as mdatasets
        from moabb.datasets.base import BaseDataset
    except ImportError as exc:
        raise DatasetError(
            f"MOABB is not installed ({exc}); install the optional extra: "
            "pip install 'ssvep-exo[moabb]'."
        ) from None
    obj = spec
    if isinstance(spec, str):
        if ":" in spec:
            module, _, attr = spec.partition(":")
            try:
                obj = getattr(importlib.import_module(module), attr)
            except (ImportError, AttributeError) as exc:
                raise DatasetError(f"Cannot import the MOABB dataset {spec!r}: {exc}.") from None
        else:
            obj = getattr(mdatasets, spec, None)
            if not (isinstance(obj, type) and issubclass(obj, BaseDataset)):
                ssvep = sorted(n for n in dir(mdatasets)
                               if _paradigm_of(getattr(mdatasets, n), BaseDataset) == "ssvep")
                raise DatasetError(
                    f"{spec!r} is not a MOABB dataset. SSVEP datasets in this MOABB: "
                    f"{', '.join(ssvep) or 'none found'}; or give module:name for your own."
                )
    if isinstance(obj, type):
        try:
            obj = obj()
        except Exception as exc:  # noqa: BLE001 - a dataset class that needs arguments
            raise DatasetError(f"Cannot create the MOABB dataset {spec!r}: {exc}") from None
    if not isinstance(obj, BaseDataset):
        raise DatasetError(f"{spec!r} is not a MOABB dataset (got {type(obj).__name__}).")
    if obj.paradigm != "ssvep":
        raise DatasetError(
            f"The MOABB dataset {obj.code!r} is a {obj.paradigm!r} dataset; ssvep-exo "
            "evaluates SSVEP datasets only."
        )
    return obj


def _with_cues(raw: mne.io.BaseRaw, event_id: dict) -> mne.io.BaseRaw:
    """The EEG channels of one MOABB run, with its events as cue annotations."""
    labels = {}
    for name, code in event_id.items():
        try:
            labels[int(code)] = map_label(name)
        except (TypeError, ValueError):
            continue  # an event that names no cue (e.g. "start")
    stim = mne.pick_types(raw.info, stim=True)
    if len(stim):  # MOABB reads events from the stim channel first, as here
        events = mne.find_events(raw, shortest_event=1, verbose="error")
        keep = np.isin(events[:, 2], list(labels))
        onsets = (events[keep, 0] - raw.first_samp) / raw.info["sfreq"]
        cues = [labels[int(c)] for c in events[keep, 2]]
    else:
        by_name = {str(name): labels[int(code)] for name, code in event_id.items()
                   if int(code) in labels}
        ann = raw.annotations
        shift = raw.first_time if ann.orig_time is not None else 0.0
        keep = np.array([str(d) in by_name for d in ann.description], bool)
        onsets = ann.onset[keep] - shift
        cues = [by_name[str(d)] for d in ann.description[keep]]
    eeg = mne.pick_types(raw.info, eeg=True)
    out = raw.copy().pick(eeg if len(eeg) else [i for i in range(len(raw.ch_names))
                                                   if i not in set(stim)])
    out.load_data(verbose="error")
    set_cue_annotations(out, np.asarray(onsets, float), cues)
    return out


def load_moabb(spec, subjects: Sequence[int] | None = None) -> dict[str, list[mne.io.BaseRaw]]:
    """Load a MOABB SSVEP dataset that is already on this machine.

    Parameters
    ----------
    spec : str | type | moabb.datasets.base.BaseDataset
        The dataset (see :func:`resolve_dataset`).
    subjects : list of int | None
        MOABB subject numbers (default: all of the dataset's).

    Returns
    -------
    recordings : dict of str to list of mne.io.Raw
        ``"subjectNN"`` -> one Raw per MOABB session (its runs concatenated), EEG channels
        only, with cue annotations named after the dataset's events (``"13"`` ->
        ``"13.0Hz"``, ``"rest"``); like :func:`bci.datasets.load_recording`.

    Raises
    ------
    bci.errors.DatasetError
        Not an SSVEP dataset, unknown subject, or data not on this machine (nothing is
        downloaded: the message says how to download it with MOABB).
    """
    dataset = resolve_dataset(spec)
    available = list(dataset.subject_list)
    subjects = available if subjects is None else [int(s) for s in subjects]
    unknown = [s for s in subjects if s not in available]
    if unknown:
        raise DatasetError(f"The MOABB dataset {dataset.code!r} has no subject(s) {unknown}; "
                           f"its subjects are {available}.")
    out: dict[str, list[mne.io.BaseRaw]] = {}
    for subject in subjects:
        with no_downloads() as refused:
            try:
                data = dataset.get_data([subject])
            except Exception as exc:  # noqa: BLE001 - any loader failure, named below
                if refused:
                    raise DatasetError(
                        f"Subject {subject} of the MOABB dataset {dataset.code!r} is not on "
                        f"this machine (MOABB tried to download it from {refused[0]}; "
                        "ssvep-exo never downloads). Download it once with MOABB, e.g. "
                        f"python -c \"import moabb.datasets as d; "
                        f"d.{type(dataset).__name__}().download(subject_list=[{subject}])\", "
                        "or point MNE_DATA at the folder that holds it."
                    ) from None
                raise DatasetError(f"MOABB could not read subject {subject} of "
                                   f"{dataset.code!r}: {exc}") from exc
        sessions = []
        for session in sorted(data[subject]):
            runs = data[subject][session]
            raws = [_with_cues(runs[r], dataset.event_id) for r in sorted(runs)]
            raw = raws[0] if len(raws) == 1 else mne.concatenate_raws(raws, verbose="error")
            source = f"{dataset.code} subject {subject} session {session}"
            require_cues(raw, source)
            check_sfreq(raw.info["sfreq"], cue_freqs(raw))
            with raw.info._unlock():
                raw.info["subject_info"] = {"his_id": f"subject{int(subject):02d}"}
            sessions.append(raw)
        out[f"subject{int(subject):02d}"] = sessions
    return out


__all__ = ["load_moabb", "no_downloads", "resolve_dataset"]
