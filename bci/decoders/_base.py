"""Common machinery of the SSVEP decoders: input checks, labels, the no-control (rest) head.

Label convention (see :mod:`bci.labels`): a class label names a stimulus frequency, either
as a number in Hz (``13``, ``13.0``) or as a string (``"13.0Hz"``, ``"13"``, ``"13 Hz"``);
the label ``"rest"`` is the no-control class. ``classes_`` keeps the caller's labels, sorted
as :func:`numpy.unique` sorts them, and ``freqs_`` holds the frequency of every non-rest
class in that order. Fitted without ``y``, a training-free decoder uses its ``freqs``
parameter and ``classes_ == freqs_``.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_array, check_consistent_length
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from ..labels import label_to_freq
from ._lda import fit_lda, log_softmax
from ._references import check_freqs


def _check_sfreq(sfreq) -> float:
    if isinstance(sfreq, bool) or not isinstance(sfreq, numbers.Real) or not sfreq > 0:
        raise ValueError(f"'sfreq' must be a positive sampling rate in Hz, got {sfreq!r}.")
    return float(sfreq)


def check_X(X, n_channels: int | None = None) -> np.ndarray:
    """Return X as a float64 array ``(n_trials, n_channels, n_samples)`` or raise ValueError.

    :func:`sklearn.utils.check_array` rejects what scikit-learn estimators reject (sparse,
    complex, object or empty data, NaN and infinity) with scikit-learn's messages; then X
    must be 3-D with at least 8 samples per window.
    """
    X = check_array(X, dtype=np.float64, allow_nd=True, ensure_2d=False, input_name="X")
    if X.ndim != 3:
        raise ValueError(
            "X must be a 3-D array (n_trials, n_channels, n_samples) of raw EEG windows, "
            f"got an array of shape {X.shape}."
        )
    if X.shape[1] == 0 or X.shape[2] < 8:
        raise ValueError(f"X holds no usable windows (shape {X.shape}); need >= 8 samples.")
    if n_channels is not None and X.shape[1] != n_channels:
        raise ValueError(
            f"X has {X.shape[1]} channels but the decoder was fitted on {n_channels}; "
            "pass the same channels in the same order."
        )
    return X


def check_y(y, requires_y: bool, name: str) -> np.ndarray | None:
    """Return y as a 1-D array of at least two classes (None allowed unless ``requires_y``).

    Continuous targets are refused as scikit-learn classifiers refuse them
    (:func:`~sklearn.utils.multiclass.check_classification_targets`): numeric labels are
    frequencies in Hz, and a fractional one (8.57 Hz) must be written as a string
    (``"8.57Hz"``) so that it is not mistaken for a regression target.
    """
    if y is None:
        if requires_y:
            raise ValueError(
                f"{name} requires y to be passed, but the target y is None: {name} is "
                "calibrated: call fit(X, y) with class labels."
            )
        return None
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D, got shape {y.shape}.")
    try:
        check_classification_targets(y)
    except ValueError as exc:
        raise ValueError(
            f"{exc} The labels of {name} name stimulus frequencies: write a fractional "
            "frequency as a string such as '8.57Hz'."
        ) from None
    classes = np.unique(y)
    if len(classes) < 2:
        raise ValueError(
            f"y holds {len(classes)} class(es) {classes.tolist()}; {name} needs at least 2 "
            "classes (targets, or a target and 'rest')."
        )
    return y


class SSVEPDecoder(ClassifierMixin, BaseEstimator):
    """Base class: subclasses implement ``_fit_targets`` and ``_target_scores``.

    ``_target_scores(X) -> (n_trials, n_targets)`` gives one score per target frequency
    (in ``freqs_`` order), higher meaning more likely. When ``y`` holds ``"rest"``, a
    shrinkage LDA learns rest against targets from three summary features of these scores
    (best score, margin to the second, mean), which are all invariant to the signal scale
    and to slow drift.
    """

    _requires_y = False
    _proba_scale = 30.0  # softmax temperature applied to target scores for probabilities

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # X is 3-D (trials, channels, samples). two_d_array stays True so that scikit-learn's
        # checks run at all; those that must fit 2-D X are listed in tests/test_decoders_api.
        tags.input_tags.three_d_array = True
        tags.target_tags.required = self._requires_y
        return tags

    # -- input -----------------------------------------------------------------------------
    def _validate_fit_data(self, X, y) -> tuple[np.ndarray, np.ndarray | None]:
        """Check X and y, set ``sfreq_``, the label attributes and ``n_features_in_``.

        Returns X as float64 and y as indices into ``classes_`` (None when fitted without
        labels). ``n_features_in_`` is ``X.shape[1]``, the number of channels, as
        scikit-learn counts features of an n-D array.
        """
        self.sfreq_ = _check_sfreq(self.sfreq)
        y = check_y(y, self._requires_y, type(self).__name__)
        X = check_X(X)
        if y is not None:
            check_consistent_length(X, y)
        self.n_features_in_ = self.n_channels_ = int(X.shape[1])
        self.n_samples_ = int(X.shape[2])
        return X, self._setup_labels(y)

    # -- labels ----------------------------------------------------------------------------
    def _setup_labels(self, y: np.ndarray | None) -> np.ndarray | None:
        if y is None:
            self.freqs_ = check_freqs(self.freqs, self.sfreq_)
            self.classes_ = self.freqs_.copy()
            self.rest_index_ = -1
            return None
        classes = np.unique(y)
        if classes.dtype == object:
            classes = classes.astype(str)
            y = y.astype(str)
        freqs, rest = [], -1
        for i, c in enumerate(classes):
            f = label_to_freq(c.item() if hasattr(c, "item") else c)
            if f is None:
                rest = i
            else:
                freqs.append(f)
        if not freqs:
            raise ValueError("y holds no stimulus class: at least one frequency label is needed.")
        self.freqs_ = check_freqs(freqs, self.sfreq_)
        self.classes_ = classes
        self.rest_index_ = int(rest)
        return np.searchsorted(classes, y)

    @property
    def _target_cols(self) -> np.ndarray:
        return np.array([i for i in range(len(self.classes_)) if i != self.rest_index_], int)

    # -- fit -------------------------------------------------------------------------------
    def fit(self, X, y=None):
        """Fit the decoder.

        Parameters
        ----------
        X : ndarray, shape (n_trials, n_channels, n_samples)
            Raw (unfiltered) EEG windows; each is filtered on its own.
        y : array-like, shape (n_trials,) | None
            Class labels: frequencies in Hz (numbers or ``"13.0Hz"``-style strings) and
            optionally ``"rest"``. None is allowed for training-free decoders.

        Returns
        -------
        self : object
        """
        X, yi = self._validate_fit_data(X, y)
        self._check_params()
        self._precompute(self.n_samples_)
        tmask = None if yi is None else yi != self.rest_index_
        self._fit_targets(X if tmask is None else X[tmask], None if yi is None else yi[tmask])
        if self.rest_index_ >= 0:
            feats = self._rest_features(self._training_scores(X, yi))
            self.rest_coef_, self.rest_intercept_ = fit_lda(
                feats, (yi == self.rest_index_).astype(int), 2
            )
        return self

    def _check_params(self) -> None:
        """Validate hyper-parameters (called in fit)."""

    def _precompute(self, n_samples: int) -> None:
        """Build caches that depend only on parameters and window length."""

    def _fit_targets(self, X: np.ndarray, yi: np.ndarray | None) -> None:
        """Learn from the target (non-rest) windows (calibrated decoders)."""

    def _training_scores(self, X: np.ndarray, yi: np.ndarray) -> np.ndarray:
        """Target scores of the training windows used to learn the rest head."""
        return self._target_scores(X)

    def _target_scores(self, X: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def _rest_features(s: np.ndarray) -> np.ndarray:
        srt = np.sort(s, axis=1)
        best = srt[:, -1]
        second = srt[:, -2] if s.shape[1] > 1 else np.zeros_like(best)
        return np.column_stack([best, best - second, s.mean(axis=1)])

    # -- outputs ---------------------------------------------------------------------------
    def _check_input(self, X) -> np.ndarray:
        check_is_fitted(self)
        return check_X(X, self.n_channels_)

    def decision_function(self, X) -> np.ndarray:
        """Return per-class scores ``(n_trials, n_classes)`` in ``classes_`` order.

        Without a rest class these are the decoder's target scores (higher = more likely).
        With a rest class they are log-probabilities (see :meth:`predict_proba`).
        """
        X = self._check_input(X)
        s = self._target_scores(X)
        if self.rest_index_ < 0:
            return s
        return self._with_rest(s)

    def _with_rest(self, s: np.ndarray) -> np.ndarray:
        lr = log_softmax(self._rest_features(s) @ self.rest_coef_.T + self.rest_intercept_)
        out = np.empty((s.shape[0], len(self.classes_)))
        out[:, self._target_cols] = lr[:, [0]] + log_softmax(self._proba_scale * s)
        out[:, self.rest_index_] = lr[:, 1]
        return out

    def predict_proba(self, X) -> np.ndarray:
        """Return class probabilities ``(n_trials, n_classes)`` in ``classes_`` order.

        Targets share ``1 - P(rest)`` by a softmax of their scores; ``P(rest)`` comes from
        the learned rest head (0 when no rest class was fitted).
        """
        d = self.decision_function(X)
        if self.rest_index_ < 0:
            return np.exp(log_softmax(self._proba_scale * d))
        return np.exp(d)

    def predict(self, X) -> np.ndarray:
        """Return the predicted labels (elements of ``classes_``)."""
        scores = self.decision_function(X)  # raises NotFittedError before fit
        return self.classes_[np.argmax(scores, axis=1)]


def check_positive_int(value, name: str) -> int:
    """Return value as an int >= 1 or raise ValueError/TypeError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"'{name}' must be a positive integer, got {value!r}.")
    return int(value)


__all__ = ["SSVEPDecoder", "check_X", "check_positive_int", "check_y"]
