"""Serialise fitted decoders without pickle: JSON-able metadata plus numpy arrays."""

from __future__ import annotations

import numbers

import numpy as np

from ..errors import DecoderError
from .registry import CLASSES

FORMAT = "bci.decoders/1"


def _jsonable(v):
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, numbers.Integral):
        return int(v)
    if isinstance(v, numbers.Real):
        return float(v)
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return _jsonable(v.tolist())
    raise TypeError(f"cannot store a parameter value of type {type(v).__name__}: {v!r}")


def to_state(estimator) -> tuple[dict, dict[str, np.ndarray]]:
    """Return ``(meta, arrays)`` describing a fitted registry decoder.

    ``meta`` is a JSON-able dict (class name, parameters, scalar fitted attributes);
    ``arrays`` maps the names of fitted array attributes to numpy arrays (no object
    dtype), suitable for ``np.savez`` and ``np.load(..., allow_pickle=False)``.
    """

    name = type(estimator).__name__
    if name not in CLASSES:
        raise TypeError(f"to_state supports the bci.decoders classes {sorted(CLASSES)}, got {name}.")
    if not hasattr(estimator, "classes_"):
        raise RuntimeError(f"{name} is not fitted: call fit(X, y) before to_state().")
    meta = {"format": FORMAT, "class": name, "params": {}, "attrs": {}, "tuple_params": []}
    for k, v in estimator.get_params(deep=False).items():
        if isinstance(v, tuple):
            meta["tuple_params"].append(k)
        meta["params"][k] = _jsonable(v)
    arrays: dict[str, np.ndarray] = {}
    for k, v in vars(estimator).items():
        if not k.endswith("_") or k.startswith("_"):
            continue
        if isinstance(v, np.ndarray):
            if v.dtype == object:
                v = v.astype(str)
            arrays[k] = np.ascontiguousarray(v)
        else:
            meta["attrs"][k] = _jsonable(v)
    return meta, arrays


def from_state(meta: dict, arrays: dict[str, np.ndarray]):
    """Rebuild a fitted decoder from :func:`to_state` output.

    Raises
    ------
    bci.errors.DecoderError
        When the metadata does not describe a known decoder.
    """

    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DecoderError(
            f"The decoder state is not in the {FORMAT!r} format (got "
            f"{meta.get('format') if isinstance(meta, dict) else type(meta).__name__!r}); "
            "re-create it with bci.decoders.to_state or recalibrate."
        )
    cls = CLASSES.get(meta.get("class"))
    if cls is None:
        raise DecoderError(
            f"Unknown decoder class {meta.get('class')!r} in the saved state; known: "
            f"{sorted(CLASSES)}. Recalibrate with this version of ssvep-exo."
        )
    params = dict(meta["params"])
    for k in meta.get("tuple_params", []):
        if isinstance(params.get(k), list):
            params[k] = tuple(params[k])
    est = cls(**params)
    for k, v in meta["attrs"].items():
        setattr(est, k, v)
    for k, v in arrays.items():
        setattr(est, k, np.asarray(v))
    if hasattr(est, "_restore"):
        est._restore()
    return est
