"""The project's decoders as MOABB pipelines (SSVEP paradigm, MOABB's label conventions).

MOABB's SSVEP paradigm hands a pipeline epochs ``X`` (an array ``(n_trials, n_channels,
n_times)``, or ``mne.Epochs`` with ``return_epochs=True``) and labels named after the
dataset's events: frequencies as strings (``"13"``, ``"6.66"``) and, where the dataset has
one, ``"rest"``. :class:`MOABBDecoder` builds the registry's decoder
(:func:`bci.decoders.make_decoder`, the estimator ``ssvep-exo evaluate`` and ``calibrate``
use) for the frequencies the labels name and predicts those same labels.

>>> from moabb.evaluations import WithinSessionEvaluation
>>> from moabb.paradigms import SSVEP
>>> from bci.decoders.moabb import moabb_pipelines
>>> evaluation = WithinSessionEvaluation(paradigm=SSVEP(), datasets=[...],
...                                      return_epochs=True, mne_labels=True)
>>> scores = evaluation.process(moabb_pipelines(["fbcca", "ress-fbcca"]))  # doctest: +SKIP

With MOABB's defaults (arrays, labels coded 0..n-1) neither the sampling rate nor the
frequencies are in what the pipeline gets: pass ``sfreq`` and
``events=paradigm.used_events(dataset)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from ..labels import REST_LABEL, freq_label, label_to_freq
from .registry import DEFAULT_METHODS, METHODS, make_decoder


def _as_array(X) -> tuple[np.ndarray, float | None]:
    """(data, sfreq) from mne.Epochs (EEG channels) or (X, None) from an array."""
    import mne

    if isinstance(X, mne.BaseEpochs):
        picks = mne.pick_types(X.info, eeg=True, exclude=())
        if not len(picks):
            picks = np.arange(len(X.ch_names))
        return X.get_data(picks=picks), float(X.info["sfreq"])
    return X, None


def _is_ordinal(classes: np.ndarray) -> bool:
    """True for integer labels 0..n-1 or 1..n (MOABB's LabelEncoder output)."""
    if not np.issubdtype(classes.dtype, np.integer):
        return False
    vals = sorted(int(c) for c in classes)
    return vals in (list(range(len(vals))), list(range(1, len(vals) + 1)))


def _name(value) -> str:
    """The canonical label (``"13.0Hz"``, ``"6.66Hz"``, ``"rest"``) of a MOABB class name."""
    f = label_to_freq(value)
    return REST_LABEL if f is None else freq_label(f)


class MOABBDecoder(ClassifierMixin, BaseEstimator):
    """A registry decoder for MOABB's SSVEP paradigm.

    Labels follow MOABB's conventions: the dataset's event names (``"13"``, ``"6.66"``,
    ``"rest"``; MOABB's ``mne_labels=True``), or MOABB's default integer codes from its
    ``LabelEncoder``, which are read back to event names through ``mne.Epochs``
    (``return_epochs=True``: its ``events`` and ``event_id``, as MOABB's own ``SSVEP_CCA``
    does) or through ``freq_map``. Predictions are in the labels ``fit`` saw.

    Parameters
    ----------
    method : str, default="fbcca"
        Registry name (:data:`bci.decoders.METHODS`).
    sfreq : float | None
        Sampling rate of array input. None: taken from ``mne.Epochs`` input
        (``return_epochs=True``); array input then raises ``ValueError``.
    freq_map : dict | None
        ``{class label: frequency in Hz or "rest"}`` (MOABB's parameter of the same name),
        for array input with integer-coded labels.
    params : dict | None
        Extra keyword arguments of the decoder (e.g. ``{"n_harmonics": 3}``).

    Attributes
    ----------
    decoder_ : estimator
        The fitted registry decoder (its classes are canonical labels, ``"13.0Hz"``).
    classes_ : ndarray
        The labels seen in ``fit``, sorted.
    sfreq_ : float
        The sampling rate used.
    """

    def __init__(self, method: str = "fbcca", sfreq: float | None = None,
                 freq_map: dict | None = None, params: dict | None = None) -> None:
        self.method = method
        self.sfreq = sfreq
        self.freq_map = freq_map
        self.params = params

    def _data(self, X, *, fitting: bool) -> np.ndarray:
        data, sfreq = _as_array(X)
        if fitting:
            sfreq = sfreq if sfreq is not None else self.sfreq
            if sfreq is None:
                raise ValueError(
                    "MOABBDecoder got an array without its sampling rate: pass "
                    "sfreq=<the dataset's rate, or the paradigm's resample>, or run the "
                    "MOABB evaluation with return_epochs=True."
                )
            self.sfreq_ = float(sfreq)
        elif sfreq is not None and not np.isclose(sfreq, self.sfreq_):
            raise ValueError(f"The epochs are sampled at {sfreq:g} Hz but the decoder was "
                             f"fitted at {self.sfreq_:g} Hz.")
        return data

    def _class_names(self, X, y: np.ndarray, classes: np.ndarray) -> dict:
        """Class label -> ``"13.0Hz"`` / ``"rest"``."""
        import mne

        if self.freq_map is not None:
            missing = [c for c in classes.tolist() if c not in self.freq_map]
            if missing:
                raise ValueError(f"freq_map has no entry for the class labels {missing}.")
            return {c: _name(self.freq_map[c]) for c in classes.tolist()}
        if _is_ordinal(classes):
            if not isinstance(X, mne.BaseEpochs):
                raise ValueError(
                    f"The labels {classes.tolist()} look like MOABB's integer codes, which "
                    "do not say which frequency each class is. Run the MOABB evaluation with "
                    "return_epochs=True (or mne_labels=True), or pass freq_map."
                )
            names = {code: name for name, code in X.event_id.items()}
            out = {}
            for c in classes.tolist():
                codes = set(X.events[y == c, -1].tolist())
                if len(codes) != 1 or next(iter(codes)) not in names:
                    raise ValueError(f"Cannot tell which event the class {c!r} is (event "
                                     f"codes {sorted(codes)}); pass freq_map.")
                code = next(iter(codes))
                if names[code].strip() == str(code):  # MOABB's epochs name events by code
                    raise ValueError(
                        f"The labels {classes.tolist()} are MOABB's integer codes and the "
                        f"epochs name their events by code too ({X.event_id}), so nothing "
                        "says which frequency each class is. Run the MOABB evaluation with "
                        "mne_labels=True (and return_epochs=True), or pass freq_map / "
                        "events=paradigm.used_events(dataset) to moabb_pipelines."
                    )
                out[c] = _name(names[code])
            return out
        return {c: _name(c) for c in classes.tolist()}

    def fit(self, X, y):
        """Fit the registry decoder on MOABB epochs.

        Parameters
        ----------
        X : ndarray, shape (n_trials, n_channels, n_times) | mne.Epochs
            MOABB's epochs (raw or band-passed by the paradigm).
        y : array-like, shape (n_trials,)
            MOABB's labels (see the class description).

        Returns
        -------
        self : object
        """
        data = self._data(X, fitting=True)
        y = np.asarray(y)
        classes = np.unique(y)
        names = self._class_names(X, y, classes)
        if len(set(names.values())) != len(names):
            raise ValueError(f"Two classes name the same frequency: {names}.")
        y_names = np.array([names[c] for c in y.tolist()])
        freqs = sorted({label_to_freq(n) for n in names.values()} - {None})
        self.decoder_ = make_decoder(self.method, sfreq=self.sfreq_, freqs=freqs,
                                     **dict(self.params or {}))
        self.decoder_.fit(data, y_names)
        inner = [str(c) for c in self.decoder_.classes_]
        self.classes_ = classes
        self.columns_ = np.array([inner.index(names[c]) for c in classes.tolist()])
        return self

    def decision_function(self, X) -> np.ndarray:
        """Per-class scores ``(n_trials, n_classes)`` in ``classes_`` order."""
        check_is_fitted(self, "decoder_")
        return self.decoder_.decision_function(self._data(X, fitting=False))[:, self.columns_]

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities ``(n_trials, n_classes)`` in ``classes_`` order."""
        check_is_fitted(self, "decoder_")
        return self.decoder_.predict_proba(self._data(X, fitting=False))[:, self.columns_]

    def predict(self, X) -> np.ndarray:
        """Predicted labels, in the label space ``fit`` saw."""
        return self.classes_[np.argmax(self.decision_function(X), axis=1)]


def moabb_pipelines(methods: Sequence[str] | None = None, *, sfreq: float | None = None,
                    events: Sequence[str] | None = None) -> dict[str, Pipeline]:
    """MOABB pipelines of registry decoders, named ``"ssvep-exo <method>"``.

    Parameters
    ----------
    methods : list of str | None
        Registry names (default: :data:`bci.decoders.DEFAULT_METHODS`, what ``ssvep-exo
        evaluate`` runs).
    sfreq : float | None
        Sampling rate of array input (MOABB's default ``return_epochs=False``): the
        dataset's rate, or the paradigm's ``resample``.
    events : list of str | None
        With integer-coded labels (MOABB's default ``mne_labels=False``): the event names
        the paradigm uses, ``paradigm.used_events(dataset)``; MOABB's ``LabelEncoder``
        numbers them in sorted order. Neither is needed with ``return_epochs=True,
        mne_labels=True``.

    Returns
    -------
    pipelines : dict of str to sklearn.pipeline.Pipeline
        For ``WithinSessionEvaluation(...).process(pipelines)`` and the other MOABB
        evaluations.
    """
    methods = list(DEFAULT_METHODS if methods is None else methods)
    freq_map = None if events is None else dict(enumerate(sorted(events)))
    for m in methods:
        if m not in METHODS:
            make_decoder(m, sfreq=1.0, freqs=())  # raises DecoderError naming the choices
    return {f"ssvep-exo {m}": Pipeline([(m, MOABBDecoder(method=m, sfreq=sfreq,
                                                         freq_map=freq_map))])
            for m in methods}


__all__ = ["MOABBDecoder", "moabb_pipelines"]
