"""Running a fallback over a batch, and measuring it on labelled validation data.

:func:`apply_fallback` runs any fallback (``x -> label | None``) over a batch without ever
letting one failing input crash the ladder; :func:`measure_fallback` measures how often it
fires and how often it is right, with exact binomial intervals. The rules themselves live
in :mod:`failwise.policy._fallback`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from failwise._stats import clopper_pearson_interval
from failwise._validation import check_consistent_length, check_labels, describe
from failwise.exceptions import InputError
from failwise.policy._decision import NO_OPINION

__all__ = ["FallbackReport", "FallbackResult", "apply_fallback", "measure_fallback"]


# --------------------------------------------------------------------------- applying


@dataclass(frozen=True, eq=False)
class FallbackResult:
    """The labels a fallback gave to a batch, and what went wrong while computing them.

    Attributes
    ----------
    labels : ndarray of shape (n_samples,) and dtype intp
        Class index, ``OUT_OF_SCOPE`` (-1), or :data:`NO_OPINION` (-2) where the
        fallback returned None, raised, or returned something that is not a label.
    n_errors : int
        Inputs on which the fallback raised or returned an invalid value.
    first_error : Exception or None
        The first such error (an :class:`~failwise.InputError` for an invalid value).
    first_error_index : int or None
        Position of the input that caused ``first_error``.
    """

    labels: NDArray[np.intp]
    n_errors: int
    first_error: Exception | None
    first_error_index: int | None

    @property
    def coverage(self) -> float:
        """Fraction of inputs on which the fallback gave an opinion."""
        if self.labels.shape[0] == 0:
            return 0.0
        return float(np.mean(self.labels != NO_OPINION))


def _output_label(value: Any, n_classes: int | None) -> int:
    if value is None:
        return NO_OPINION
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise InputError(
            f"a fallback must return an int label or None; it returned {describe(value)}."
        )
    label = int(value)
    upper = n_classes - 1 if n_classes is not None else None
    if label < NO_OPINION or (upper is not None and label > upper):
        expected = f"-2..{upper}" if upper is not None else ">= -2"
        raise InputError(
            f"a fallback returned label {label}; labels must be in {expected} "
            "(-1 = out of scope, -2 = no opinion)."
        )
    return label


def apply_fallback(
    fallback: Callable[[Any], int | None],
    inputs: Iterable[Any],
    *,
    n_classes: int | None = None,
    on_error: Literal["record", "raise"] = "record",
) -> FallbackResult:
    """Run a fallback over a batch of inputs; a failing input never fails the batch.

    Each input gets the fallback's label, :data:`NO_OPINION` where it returns None,
    and :data:`NO_OPINION` where it raises an :class:`Exception` or returns something
    that is not a label; those inputs are counted in ``n_errors`` and the first error
    is kept, so the ladder degrades to its next rung instead of failing the request.

    Parameters
    ----------
    fallback : callable
        ``x -> int | None``: a :class:`KeywordRules`, a :class:`RegexRules`, a
        lookup-table method or any function.
    inputs : iterable, length n_samples
        The inputs passed one by one to ``fallback``.
    n_classes : int, optional
        When given, labels above ``n_classes - 1`` count as errors.
    on_error : {"record", "raise"}, default="record"
        ``"raise"`` re-raises the first error instead, to debug rules.

    Returns
    -------
    FallbackResult
        ``labels`` of shape (n_samples,), ``n_errors``, ``first_error`` and
        ``first_error_index``.

    Examples
    --------
    >>> from failwise.policy import apply_fallback
    >>> table = {"reset my pin": 3, "lost card": 7}
    >>> result = apply_fallback(lambda text: table.get(text.lower()), ["Lost card", "hi", None])
    >>> result.labels.tolist(), result.n_errors, result.first_error_index
    ([7, -2, -2], 1, 2)
    """
    if not callable(fallback):
        raise InputError(
            f"`fallback` must be a callable x -> label | None; got {describe(fallback)}. Pass "
            "e.g. `KeywordRules(...)`, `RegexRules(...)` or a function."
        )
    if on_error not in ("record", "raise"):
        raise InputError(f"`on_error` must be 'record' or 'raise'; got {describe(on_error)}.")
    if n_classes is not None and (
        isinstance(n_classes, bool) or not isinstance(n_classes, Integral) or n_classes < 1
    ):
        raise InputError(f"`n_classes` must be None or an int >= 1; got {describe(n_classes)}.")
    if isinstance(inputs, (str, bytes)):
        raise InputError(
            f"`inputs` must be a sequence of inputs; got a single {type(inputs).__name__}, "
            "which would be split into characters. Wrap it in a list: `[text]`."
        )
    try:
        items = list(inputs)
    except TypeError:
        raise InputError(f"`inputs` must be iterable; got {describe(inputs)}.") from None
    labels = np.full(len(items), NO_OPINION, dtype=np.intp)
    n_errors = 0
    first_error: Exception | None = None
    first_index: int | None = None
    for index, item in enumerate(items):
        try:
            labels[index] = _output_label(fallback(item), n_classes)
        except Exception as exc:  # a user's rule must not crash the ladder
            if on_error == "raise":
                raise
            n_errors += 1
            if first_error is None:
                first_error, first_index = exc, index
    return FallbackResult(labels, n_errors, first_error, first_index)


# --------------------------------------------------------------------------- measuring


def _clopper_pearson(
    successes: NDArray[np.intp], trials: NDArray[np.intp], confidence_level: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Two-sided exact binomial interval; (0, 1) where there are no trials."""
    low, high = clopper_pearson_interval(successes, trials, confidence_level)
    return np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)


@dataclass(frozen=True, eq=False)
class FallbackReport:
    """How often a fallback fires and how often it is right, on labelled data.

    A fallback output is correct when it equals the true label; ``OUT_OF_SCOPE``
    (-1) is correct on an out-of-scope input (``y == -1``) and wrong on an in-scope
    one, and a class label on an out-of-scope input is wrong.

    Attributes
    ----------
    n_samples : int
        Labelled inputs.
    n_fired : int
        Inputs on which the fallback gave an opinion (label != NO_OPINION).
    n_correct : int
        Opinions equal to the true label.
    coverage : float
        ``n_fired / n_samples``.
    accuracy : float
        ``n_correct / n_fired``; NaN when the fallback never fired.
    accuracy_low, accuracy_high : float
        Clopper–Pearson interval for the accuracy at ``confidence_level``.
    confidence_level : float
        Level of every interval in the report.
    labels : ndarray of shape (n_labels,)
        Distinct labels the fallback output, ascending (-1 first when present).
    answered : ndarray of shape (n_labels,)
        How often each label was output.
    correct : ndarray of shape (n_labels,)
        How often that output was right.
    precision : ndarray of shape (n_labels,)
        ``correct / answered`` per label.
    precision_low, precision_high : ndarray of shape (n_labels,)
        Clopper–Pearson interval per label.
    """

    n_samples: int
    n_fired: int
    n_correct: int
    coverage: float
    accuracy: float
    accuracy_low: float
    accuracy_high: float
    confidence_level: float
    labels: NDArray[np.intp]
    answered: NDArray[np.intp]
    correct: NDArray[np.intp]
    precision: NDArray[np.float64]
    precision_low: NDArray[np.float64]
    precision_high: NDArray[np.float64]

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values; ``per_label`` maps each label to its counts and interval."""
        per_label = {
            int(label): {
                "answered": int(self.answered[i]),
                "correct": int(self.correct[i]),
                "precision": float(self.precision[i]),
                "precision_low": float(self.precision_low[i]),
                "precision_high": float(self.precision_high[i]),
            }
            for i, label in enumerate(self.labels)
        }
        return {
            "n_samples": self.n_samples,
            "n_fired": self.n_fired,
            "n_correct": self.n_correct,
            "coverage": self.coverage,
            "accuracy": None if np.isnan(self.accuracy) else self.accuracy,
            "accuracy_low": self.accuracy_low,
            "accuracy_high": self.accuracy_high,
            "confidence_level": self.confidence_level,
            "per_label": per_label,
        }


def _check_fallback_labels(fallback_labels: Any) -> NDArray[np.intp]:
    if isinstance(fallback_labels, FallbackResult):
        return fallback_labels.labels
    array = np.asarray(fallback_labels)
    if array.ndim != 1:
        raise InputError(
            f"`fallback_labels` must be 1-D (one label per input); got shape {array.shape}. "
            "Pass `apply_fallback(rules, inputs)` or its `.labels`."
        )
    if array.size == 0:
        raise InputError("`fallback_labels` is empty; at least one labelled input is needed.")
    if array.dtype.kind not in "iu":
        raise InputError(
            f"`fallback_labels` must hold int labels (-2 = no opinion, -1 = out of scope); "
            f"got dtype {array.dtype}. Use `apply_fallback`, which converts None to -2."
        )
    labels = array.astype(np.intp, copy=False)
    if labels.min() < NO_OPINION:
        raise InputError(
            f"`fallback_labels` must be >= -2 (-2 = no opinion, -1 = out of scope); got "
            f"{int(labels.min())}."
        )
    return labels


def measure_fallback(
    fallback_labels: ArrayLike | FallbackResult,
    y: ArrayLike,
    *,
    confidence_level: float = 0.95,
) -> FallbackReport:
    """Measure a fallback on labelled validation data: coverage, accuracy, per-label precision.

    Parameters
    ----------
    fallback_labels : array-like of shape (n_samples,) or FallbackResult
        The fallback's label per input: a class index, -1 (out of scope) or -2
        (:data:`NO_OPINION`), e.g. ``apply_fallback(rules, texts)``.
    y : array-like of shape (n_samples,)
        True labels; -1 marks an out-of-scope input.
    confidence_level : float, default=0.95
        Level of the Clopper–Pearson intervals (exact binomial intervals, conservative
        at every sample size).

    Returns
    -------
    FallbackReport

    References
    ----------
    Clopper and Pearson, "The use of confidence or fiducial limits illustrated in the
    case of the binomial", Biometrika, 1934.

    Examples
    --------
    >>> from failwise.policy import measure_fallback
    >>> report = measure_fallback([0, 0, -2, -1, 1], [0, 1, 1, -1, 1])
    >>> report.coverage, report.accuracy
    (0.8, 0.75)
    >>> report.labels.tolist(), report.precision.tolist()
    ([-1, 0, 1], [1.0, 0.5, 1.0])
    """
    if (
        isinstance(confidence_level, bool)
        or not isinstance(confidence_level, Real)
        or not 0.0 < float(confidence_level) < 1.0
    ):
        raise InputError(
            f"`confidence_level` must be a number in (0, 1), e.g. 0.95; got "
            f"{describe(confidence_level)}."
        )
    predicted = _check_fallback_labels(fallback_labels)
    truth = check_labels(y, "y", allow_out_of_scope=True)
    check_consistent_length(fallback_labels=predicted, y=truth)
    fired = predicted != NO_OPINION
    hit = fired & (predicted == truth)
    n_fired, n_correct = int(fired.sum()), int(hit.sum())
    level = float(confidence_level)
    low, high = _clopper_pearson(np.array([n_correct]), np.array([n_fired]), level)
    labels, inverse = np.unique(predicted[fired], return_inverse=True)
    answered = np.bincount(inverse, minlength=labels.size).astype(np.intp)
    correct = np.bincount(inverse, weights=hit[fired], minlength=labels.size).astype(np.intp)
    precision_low, precision_high = _clopper_pearson(correct, answered, level)
    return FallbackReport(
        n_samples=int(predicted.shape[0]),
        n_fired=n_fired,
        n_correct=n_correct,
        coverage=n_fired / predicted.shape[0],
        accuracy=n_correct / n_fired if n_fired else float("nan"),
        accuracy_low=float(low[0]),
        accuracy_high=float(high[0]),
        confidence_level=level,
        labels=labels.astype(np.intp),
        answered=answered,
        correct=correct,
        precision=correct / np.maximum(answered, 1),
        precision_low=precision_low,
        precision_high=precision_high,
    )
