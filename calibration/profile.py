"""Subject profiles: everything the online system needs to decode for one user.

A profile is a directory holding two files:

- ``profile.json``: channels, sampling rate, targets (frequencies, phases, labels), the command
  mapping, the decoder's method name, parameters and JSON state, the window length, the
  decision-policy thresholds, cross-validation results, provenance, a manifest of the learned
  arrays (name, shape, dtype), the SHA-256 of the ``.npz`` and the SHA-256 of its own
  content (``json_sha256``, see :func:`json_digest`), so a damaged or edited file is refused
  instead of loading with other values;
- ``profile.npz``: the learned arrays (spatial filters, templates, ...), read with
  ``np.load(..., allow_pickle=False)`` so loading a profile never executes code.

Every way a profile can be wrong (missing or unreadable file, invalid JSON, other schema
version, missing keys, wrong types, missing arrays, wrong shapes, a JSON whose content does
not match its digest, tampered or truncated ``.npz``, channels or sampling rate that do not match the live stream) raises
:class:`calibration.errors.ProfileError` with a message that says what to do.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import logging
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bci import __version__
from bci.decoders import from_state, to_state
from bci.labels import label_to_freq
from bci.online.policy import DecisionPolicy
from calibration.errors import ProfileError
from calibration.rest_model import describe_prediction

logger = logging.getLogger("calibration")

SCHEMA_VERSION = 2  # 2: menus, the false-activation budget and what it implies, json_sha256
FORMAT_NAME = "ssvep-exo-profile"
JSON_NAME = "profile.json"
NPZ_NAME = "profile.npz"
_ALLOWED_KINDS = "biufcUS"  # numeric, boolean and fixed-width string arrays (no objects)
_MAX_JSON_BYTES = 50_000_000
JSON_DIGEST_KEY = "json_sha256"


def json_digest(doc: dict) -> str:
    """Return the SHA-256 (hex) of a profile document's content.

    The content is every key but ``json_sha256``, serialised canonically (sorted keys, no
    whitespace, ASCII), so the digest does not depend on the file's layout. A tool that
    rewrites a profile on purpose stores ``doc["json_sha256"] = json_digest(doc)``.
    """
    body = {k: v for k, v in doc.items() if k != JSON_DIGEST_KEY}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


@dataclass
class SubjectProfile:
    """A user's calibration result, as loaded by the online system.

    Attributes
    ----------
    ch_names : list of str
        EEG channel labels the decoder was fitted on, in order.
    sfreq : float
        Sampling rate in Hz.
    freqs : list of float
        Stimulus frequencies (Hz), one per target.
    phases : list of float
        Stimulus phases (radians), one per target (zeros for free-running LEDs).
    labels : list of str
        Decoder classes (``"13.0Hz"``, ..., maybe ``"rest"``).
    menus : dict of str to dict of str to str
        Posture-aware command menus: posture (``"SITTING"``, ``"STANDING"``, ...) ->
        {target label: command name}, e.g. ``{"SITTING": {"13.0Hz": "stand"}}``. Empty:
        the application's defaults for the profile's lights. The application checks them
        against the safety supervisor's legal transitions when the profile is used.
    method : str
        Decoder registry name (:data:`bci.decoders.METHODS`).
    decoder_params : dict
        Keyword parameters the decoder was built with.
    decoder_meta : dict
        JSON part of ``bci.decoders.to_state`` (learned scalars, classes, params).
    decoder_arrays : dict of str to ndarray
        Array part of ``bci.decoders.to_state``.
    window_s : float
        Decoding window length in seconds.
    policy : dict
        Keyword arguments for :class:`bci.online.DecisionPolicy`.
    cv_results : list of dict
        Cross-validation records of the model selection.
    max_false_per_min : float | None
        The false-activation budget (commands per minute of rest) the policy's threshold
        was set for.
    source_recordings : list of str
        Recordings the profile was fitted on.
    software_version : str
        ``bci.__version__`` when the profile was made.
    created : str
        ISO 8601 creation time (UTC).
    extra : dict
        Free-form JSON notes (e.g. the decoder family, the selected scores).
    """

    ch_names: list[str]
    sfreq: float
    freqs: list[float]
    labels: list[str]
    method: str
    window_s: float
    decoder_meta: dict = field(default_factory=dict)
    decoder_arrays: dict[str, np.ndarray] = field(default_factory=dict)
    decoder_params: dict = field(default_factory=dict)
    phases: list[float] | None = None
    menus: dict[str, dict[str, str]] = field(default_factory=dict)
    policy: dict = field(default_factory=dict)
    cv_results: list[dict] = field(default_factory=list)
    max_false_per_min: float | None = None
    source_recordings: list[str] = field(default_factory=list)
    software_version: str = ""
    created: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.phases is None:
            self.phases = [0.0] * len(self.freqs)
        if not self.software_version:
            self.software_version = __version__
        if not self.created:
            self.created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        _validate_fields(self._json_fields(), self.decoder_arrays, where="profile", exc=ValueError)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_decoder(cls, decoder: Any, *, method: str, ch_names: list[str], sfreq: float,
                     window_s: float, **kwargs: Any) -> SubjectProfile:
        """Build a profile from a fitted registry decoder (state via ``to_state``).

        Parameters
        ----------
        decoder : estimator
            A fitted decoder from :mod:`bci.decoders`.
        method : str
            Its registry name.
        ch_names : list of str
            Channel labels.
        sfreq : float
            Sampling rate in Hz.
        window_s : float
            Decoding window in seconds.
        **kwargs
            Other :class:`SubjectProfile` fields (``freqs`` is taken from the decoder when
            absent).
        """

        meta, arrays = to_state(decoder)
        labels = [str(c) for c in decoder.classes_]
        freqs = kwargs.pop("freqs", None)
        if freqs is None:
            freqs = [float(f) for f in getattr(decoder, "freqs", [])] or [
                f for f in (label_to_freq(c) for c in labels) if f is not None
            ]
        params = kwargs.pop("decoder_params", None)
        if params is None:
            params = {k: _jsonable(v) for k, v in decoder.get_params(deep=False).items()}
        return cls(ch_names=list(ch_names), sfreq=float(sfreq), freqs=[float(f) for f in freqs],
                   labels=labels, method=method, window_s=float(window_s),
                   decoder_meta=_jsonable(meta),
                   decoder_arrays={k: np.asarray(v) for k, v in arrays.items()},
                   decoder_params=params, **kwargs)

    # ------------------------------------------------------------------ use
    @property
    def n_samples(self) -> int:
        """Window length in samples."""
        return int(round(self.window_s * self.sfreq))

    def build_decoder(self) -> Any:
        """Return the fitted decoder (``bci.decoders.from_state``).

        Raises
        ------
        ProfileError
            When the stored decoder state cannot be restored.
        """

        try:
            return from_state(self.decoder_meta, dict(self.decoder_arrays))
        except ProfileError:
            raise
        except Exception as exc:  # any failure to restore is a bad profile, never a crash
            raise ProfileError(
                f"The profile's decoder state ({self.method!r}) cannot be restored: {exc}. "
                "Recalibrate to make a new profile (ssvep-exo calibrate)."
            ) from exc

    def build_policy(self) -> Any:
        """Return the :class:`bci.online.DecisionPolicy` with the calibrated thresholds."""

        try:
            return DecisionPolicy.from_dict(self.policy)
        except Exception as exc:
            raise ProfileError(
                f"The profile's policy thresholds {self.policy!r} are not accepted by "
                f"DecisionPolicy: {exc}. Recalibrate or edit the 'policy' section."
            ) from exc

    def check_compatible(self, ch_names: list[str] | tuple[str, ...], sfreq: float) -> None:
        """Raise ProfileError unless the live stream has this profile's channels and rate.

        Parameters
        ----------
        ch_names : sequence of str
            Channel labels of the live stream.
        sfreq : float
            Its nominal sampling rate in Hz.
        """
        live = [str(c) for c in ch_names]
        missing = [c for c in self.ch_names if c not in live]
        if missing:
            raise ProfileError(
                f"The stream lacks the profile's channel(s) {missing} (stream channels: "
                f"{live}; profile channels: {self.ch_names}). Use the headset and montage the "
                "profile was calibrated with, or recalibrate."
            )
        if not math.isclose(float(sfreq), self.sfreq, rel_tol=1e-3):
            raise ProfileError(
                f"The stream's sampling rate {float(sfreq):g} Hz differs from the profile's "
                f"{self.sfreq:g} Hz. Set the amplifier to {self.sfreq:g} Hz or recalibrate."
            )

    def channel_indices(self, ch_names: list[str] | tuple[str, ...]) -> list[int]:
        """Indices of the profile's channels in a stream's channel list."""
        self.check_compatible(ch_names, self.sfreq)
        live = [str(c) for c in ch_names]
        return [live.index(c) for c in self.ch_names]

    def summary(self) -> str:
        """A readable multi-line description."""
        lines = [
            f"profile     schema {SCHEMA_VERSION}, ssvep-exo {self.software_version}, "
            f"created {self.created}",
            f"channels    {len(self.ch_names)} @ {self.sfreq:g} Hz: {', '.join(self.ch_names)}",
            "targets     " + ", ".join(
                f"{f:g} Hz (phase {p:.2f})" for f, p in zip(self.freqs, self.phases or [])),
            f"classes     {', '.join(self.labels)}",
            "menus       " + ("; ".join(
                f"{posture.lower()}: " + ", ".join(f"{k} -> {v}" for k, v in menu.items())
                for posture, menu in self.menus.items()) or "(defaults)"),
            f"decoder     {self.method}  params {json.dumps(self.decoder_params, sort_keys=True)}",
            "arrays      " + (", ".join(f"{k} {tuple(v.shape)}"
                                        for k, v in self.decoder_arrays.items()) or "(none)"),
            f"window      {self.window_s:g} s ({self.n_samples} samples)",
            f"policy      {json.dumps(self.policy, sort_keys=True)}",
        ]
        if self.max_false_per_min is not None:
            lines.append(f"budget      {self.max_false_per_min:g} false activations per "
                         "minute of rest")
        exp = self.extra.get("calibration_replay") if isinstance(self.extra, dict) else None
        if isinstance(exp, dict) and exp.get("hit_rate") is not None:
            med = exp.get("median_time_to_command_s")
            wrong = exp.get("wrong_command_rate")
            lines.append(
                f"expect      about {100 * exp['hit_rate']:.0f} % of cued selections right "
                "first" + (f", {100 * wrong:.0f} % wrong" if wrong is not None else "")
                + (f", {med:.1f} s median from the cue" if med is not None else "")
                + f" ({self.window_s:g} s windows; the calibration data replayed out of fold)")
        pf = self.extra.get("predicted_false") if isinstance(self.extra, dict) else None
        if isinstance(pf, dict) and pf.get("per_min") is not None:
            lines.append("expect      " + describe_prediction(pf))
        sel = self.extra.get("selected") if isinstance(self.extra, dict) else None
        if isinstance(sel, dict):
            lines.append("selected    " + ", ".join(f"{k}={_fmt(v)}" for k, v in sel.items()))
        if self.cv_results:
            lines.append(f"cv results  {len(self.cv_results)} candidate(s)")
        lines.append("recordings  " + (", ".join(self.source_recordings) or "(none)"))
        return "\n".join(lines)

    # ------------------------------------------------------------------ I/O
    def _json_fields(self) -> dict:
        return {
            "ch_names": list(self.ch_names),
            "sfreq": self.sfreq,
            "freqs": list(self.freqs),
            "phases": list(self.phases or []),
            "labels": list(self.labels),
            "menus": {k: dict(v) for k, v in self.menus.items()},
            "method": self.method,
            "decoder_params": self.decoder_params,
            "decoder_meta": self.decoder_meta,
            "window_s": self.window_s,
            "policy": self.policy,
            "cv_results": self.cv_results,
            "max_false_per_min": self.max_false_per_min,
            "source_recordings": list(self.source_recordings),
            "software_version": self.software_version,
            "created": self.created,
            "extra": self.extra,
        }

    def save(self, directory: str | Path) -> Path:
        """Write ``profile.json`` and ``profile.npz`` into ``directory``; return the JSON path."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        arrays = {k: np.ascontiguousarray(v) for k, v in self.decoder_arrays.items()}
        np.savez(buf, **arrays)
        data = buf.getvalue()
        doc = {"format": FORMAT_NAME, "schema_version": SCHEMA_VERSION}
        doc.update(_jsonable(self._json_fields()))
        doc["arrays"] = {k: {"shape": list(v.shape), "dtype": v.dtype.str}
                         for k, v in arrays.items()}
        doc["npz_sha256"] = hashlib.sha256(data).hexdigest()
        doc[JSON_DIGEST_KEY] = json_digest(doc)
        npz_tmp = d / (NPZ_NAME + ".tmp")
        json_tmp = d / (JSON_NAME + ".tmp")
        npz_tmp.write_bytes(data)
        json_tmp.write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n", encoding="utf-8")
        npz_tmp.replace(d / NPZ_NAME)
        json_tmp.replace(d / JSON_NAME)
        logger.info("profile written to %s", d / JSON_NAME)
        return d / JSON_NAME

    @classmethod
    def load(cls, path: str | Path) -> SubjectProfile:
        """Read and validate a profile (the directory or its ``profile.json``).

        Raises
        ------
        ProfileError
            For every problem with the files (see the module docstring).
        """
        json_path = _resolve(Path(path))
        try:
            raw = json_path.read_bytes()
        except OSError as exc:
            raise ProfileError(f"Cannot read the profile {str(json_path)!r}: {exc}.") from exc
        if len(raw) > _MAX_JSON_BYTES:
            raise ProfileError(f"The profile {str(json_path)!r} is too large to be a profile.")
        try:
            doc = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise ProfileError(
                f"The profile {str(json_path)!r} is not valid JSON ({exc}); it is damaged. "
                "Restore it from a backup or recalibrate."
            ) from exc
        if not isinstance(doc, dict):
            raise ProfileError(f"The profile {str(json_path)!r} is not a JSON object.")
        if doc.get("format") != FORMAT_NAME:
            raise ProfileError(
                f"{str(json_path)!r} is not an ssvep-exo profile (format "
                f"{doc.get('format')!r}, expected {FORMAT_NAME!r})."
            )
        version = doc.get("schema_version")
        if version != SCHEMA_VERSION or isinstance(version, bool):
            raise ProfileError(
                f"The profile {str(json_path)!r} has schema version {version!r}; this ssvep-exo "
                f"reads schema version {SCHEMA_VERSION}. Recalibrate with this version."
            )
        recorded = _require(doc, JSON_DIGEST_KEY, str, json_path)
        actual = json_digest(doc)
        if actual != recorded.lower():
            raise ProfileError(
                f"The profile {str(json_path)!r} was changed or damaged after it was written "
                f"(SHA-256 of its content {actual[:12]}..., recorded {recorded[:12]}...). "
                "Restore it from a backup or recalibrate."
            )
        manifest = _require(doc, "arrays", dict, json_path)
        digest = _require(doc, "npz_sha256", str, json_path)
        arrays = _load_npz(json_path.parent / NPZ_NAME, digest, manifest)
        fields = {k: doc[k] for k in _FIELD_TYPES if k in doc}
        _validate_fields(fields, arrays, where=str(json_path), exc=ProfileError)
        prof = cls(decoder_arrays=arrays, **fields)
        dec = prof.build_decoder()  # the state must restore now, not at run time
        pol = prof.build_policy()
        dec_sfreq = dec.get_params().get("sfreq") if hasattr(dec, "get_params") else None
        if isinstance(dec_sfreq, (int, float)) and not math.isclose(float(dec_sfreq),
                                                                     float(prof.sfreq)):
            raise ProfileError(
                f"Invalid profile ({str(json_path)!r}): 'sfreq' is {prof.sfreq:g} Hz but its "
                f"decoder was fitted at {float(dec_sfreq):g} Hz; the profile was edited or "
                "damaged. Recalibrate or restore it.")
        classes = [str(c) for c in getattr(dec, "classes_", [])]
        if list(pol.classes) != prof.labels or (classes and len(classes) != len(prof.labels)):
            raise ProfileError(
                f"Invalid profile ({str(json_path)!r}): the policy's classes "
                f"{list(pol.classes)} and the decoder's classes {classes} do not match the "
                f"profile's labels {prof.labels}. Recalibrate."
            )
        return prof


# ---------------------------------------------------------------------- validation helpers

_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "ch_names": (list,),
    "sfreq": (int, float),
    "freqs": (list,),
    "phases": (list,),
    "labels": (list,),
    "menus": (dict,),
    "method": (str,),
    "decoder_params": (dict,),
    "decoder_meta": (dict,),
    "window_s": (int, float),
    "policy": (dict,),
    "cv_results": (list,),
    "max_false_per_min": (int, float, type(None)),
    "source_recordings": (list,),
    "software_version": (str,),
    "created": (str,),
    "extra": (dict,),
}
_REQUIRED = ("ch_names", "sfreq", "freqs", "labels", "method", "window_s", "decoder_meta",
             "policy")


def _validate_fields(f: dict, arrays: dict, *, where: str, exc: type[Exception]) -> None:
    def bad(msg: str) -> Exception:
        suffix = " Recalibrate or restore the profile." if exc is ProfileError else ""
        return exc(f"Invalid profile ({where}): {msg}.{suffix}")

    missing = [k for k in _REQUIRED if k not in f]
    if missing:
        raise bad(f"missing key(s) {missing}")
    for k, types in _FIELD_TYPES.items():
        if k not in f:
            continue
        v = f[k]
        if isinstance(v, bool) or not isinstance(v, types):
            names = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise bad(f"{k!r} must be {names}, got {type(v).__name__}")
    if not f["ch_names"] or not all(isinstance(c, str) and c for c in f["ch_names"]):
        raise bad("'ch_names' must be a non-empty list of channel names")
    if len(set(f["ch_names"])) != len(f["ch_names"]):
        raise bad("'ch_names' has duplicate channels")
    if not (math.isfinite(f["sfreq"]) and f["sfreq"] > 0):
        raise bad(f"'sfreq' must be a positive number, got {f['sfreq']!r}")
    if not (math.isfinite(f["window_s"]) and f["window_s"] > 0):
        raise bad(f"'window_s' must be a positive number, got {f['window_s']!r}")
    for key in ("freqs", "phases"):
        vals = f.get(key) or []
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
                   for x in vals):
            raise bad(f"{key!r} must be a list of finite numbers")
    if not f["freqs"] or any(x <= 0 for x in f["freqs"]):
        raise bad("'freqs' must list the positive stimulus frequencies")
    if "phases" in f and f["phases"] is not None and len(f["phases"]) != len(f["freqs"]):
        raise bad(f"'phases' has {len(f['phases'])} values for {len(f['freqs'])} frequencies")
    if not f["labels"] or not all(isinstance(c, str) and c for c in f["labels"]):
        raise bad("'labels' must be a non-empty list of class labels")
    for posture, menu in (f.get("menus") or {}).items():
        if not isinstance(menu, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in menu.items()):
            raise bad(f"'menus' entry {posture!r} must map target labels to command names")
        unknown = [k for k in menu if k not in f["labels"]]
        if unknown:
            raise bad(f"'menus' entry {posture!r} offers label(s) {unknown} that are not "
                      f"classes {f['labels']}")
    if not f["method"]:
        raise bad("'method' is empty")
    for name, arr in arrays.items():
        if not isinstance(arr, np.ndarray) or arr.dtype.kind not in _ALLOWED_KINDS:
            raise bad(f"array {name!r} must be a numeric or string ndarray (no objects)")


def _require(doc: dict, key: str, types: type, path: Path) -> Any:
    if key not in doc:
        raise ProfileError(f"Invalid profile ({str(path)!r}): missing key {key!r}. "
                           "Recalibrate or restore the profile.")
    v = doc[key]
    if not isinstance(v, types):
        raise ProfileError(f"Invalid profile ({str(path)!r}): {key!r} must be "
                           f"{types.__name__}, got {type(v).__name__}.")
    return v


def _load_npz(npz_path: Path, digest: str, manifest: dict) -> dict[str, np.ndarray]:
    try:
        data = npz_path.read_bytes()
    except FileNotFoundError as exc:
        raise ProfileError(
            f"The profile's array file {str(npz_path)!r} is missing; a profile is "
            f"{JSON_NAME} plus {NPZ_NAME} in one directory. Copy both files together."
        ) from exc
    except OSError as exc:
        raise ProfileError(f"Cannot read {str(npz_path)!r}: {exc}.") from exc
    actual = hashlib.sha256(data).hexdigest()
    if actual != digest.lower():
        raise ProfileError(
            f"Checksum mismatch for {str(npz_path)!r}: the file was modified, truncated or "
            f"does not belong to this {JSON_NAME} (sha256 {actual[:12]}..., expected "
            f"{digest[:12]}...). Restore both files or recalibrate."
        )
    arrays: dict[str, np.ndarray] = {}
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            for name in npz.files:
                arrays[name] = np.asarray(npz[name])
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError, RuntimeError) as exc:
        raise ProfileError(
            f"The array file {str(npz_path)!r} is truncated or not a valid .npz ({exc}). "
            "Restore it or recalibrate."
        ) from exc
    missing = [k for k in manifest if k not in arrays]
    if missing:
        raise ProfileError(f"The profile's array file {str(npz_path)!r} lacks the array(s) "
                           f"{missing} listed in {JSON_NAME}. Recalibrate.")
    extra = [k for k in arrays if k not in manifest]
    if extra:
        raise ProfileError(f"The array file {str(npz_path)!r} holds array(s) {extra} that "
                           f"{JSON_NAME} does not list. Recalibrate.")
    for name, spec in manifest.items():
        if not isinstance(spec, dict) or not isinstance(spec.get("shape"), list):
            raise ProfileError(f"Invalid profile: the manifest entry for array {name!r} must "
                               "give its 'shape' as a list.")
        shape = tuple(spec["shape"])
        if arrays[name].shape != shape:
            raise ProfileError(
                f"Array {name!r} in {str(npz_path)!r} has shape {arrays[name].shape}, "
                f"expected {shape}. The files do not belong together; recalibrate."
            )
        if spec.get("dtype") is not None and arrays[name].dtype.str != spec.get("dtype"):
            raise ProfileError(
                f"Array {name!r} in {str(npz_path)!r} has dtype {arrays[name].dtype.str}, "
                f"expected {spec.get('dtype')!r}. Recalibrate."
            )
    return arrays


def _resolve(path: Path) -> Path:
    if path.is_dir():
        path = path / JSON_NAME
    if not path.exists():
        raise ProfileError(
            f"No profile at {str(path)!r}. Give the profile directory or its {JSON_NAME} "
            "(make one with: ssvep-exo calibrate --output DIR)."
        )
    if path.suffix == ".npz":
        path = path.with_name(JSON_NAME)
    return path


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def _jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays and tuples to plain JSON types (NaN -> None)."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _fmt(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)
