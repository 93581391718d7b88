"""Input validation shared by every public entry point.

Each checker returns a clean NumPy array and raises :class:`InputError` with a
message that names the argument, what arrived, what was expected and how to fix
it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from failwise.exceptions import InputError, NotFittedError

__all__ = [
    "PROBABILITY_SUM_TOLERANCE",
    "check_binary_labels",
    "check_confidence",
    "check_consistent_length",
    "check_fitted",
    "check_labels",
    "check_probabilities",
    "check_scores",
    "describe",
]

#: Rows of a probability matrix may deviate from 1 by this much (float32 softmax outputs).
PROBABILITY_SUM_TOLERANCE = 1e-4


def describe(value: Any) -> str:
    """Return a short description of ``value`` for error messages."""
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    if isinstance(value, (list, tuple)):
        return f"{type(value).__name__} of length {len(value)}"
    return f"{type(value).__name__} {value!r}"[:120]


def _as_float_array(value: ArrayLike, name: str) -> NDArray[np.floating[Any]]:
    if value is None:
        raise InputError(f"`{name}` is required; got None.")
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as exc:  # ragged nested lists
        raise InputError(
            f"`{name}` must be array-like of numbers; got {describe(value)} that NumPy cannot "
            f"turn into an array ({exc}). Pass a list of equal-length rows or a NumPy array."
        ) from None
    if array.dtype.kind not in "fiub":
        raise InputError(
            f"`{name}` must hold numbers; got dtype {array.dtype}. Convert it with "
            f"`np.asarray({name}, dtype=float)` after removing non-numeric entries."
        )
    if array.dtype.kind != "f":
        array = array.astype(np.float64)
    return array


def _check_finite(array: NDArray[np.floating[Any]], name: str) -> None:
    if array.size == 0:
        raise InputError(f"`{name}` is empty (shape {array.shape}); at least one sample is needed.")
    if not np.isfinite(array).all():
        bad = ~np.isfinite(array)
        rows = np.flatnonzero(bad.reshape(array.shape[0], -1).any(axis=1))
        kind = "NaN" if np.isnan(array).any() else "infinite values"
        raise InputError(
            f"`{name}` contains {kind} in {rows.size} row(s), first at row {int(rows[0])}. "
            "Drop or impute those rows before calling; failwise never guesses a score."
        )


def check_scores(
    scores: ArrayLike,
    name: str = "scores",
    *,
    ndim: int | None = 2,
    min_columns: int = 1,
) -> NDArray[np.floating[Any]]:
    """Validate a finite score array (logits, confidences, distances).

    Parameters
    ----------
    scores : array-like of shape (n_samples, n_columns) or (n_samples,)
        The scores to check. float32 and float64 are kept as they are (no copy);
        integers and booleans become float64.
    name : str, default="scores"
        Argument name used in error messages.
    ndim : {1, 2, None}, default=2
        Required number of dimensions. ``None`` accepts both 1-D and 2-D.
    min_columns : int, default=1
        For 2-D input, the minimum number of columns.

    Returns
    -------
    ndarray
        The validated array.
    """
    array = _as_float_array(scores, name)
    if ndim is not None and array.ndim != ndim:
        hint = (
            "reshape a single column with `scores.reshape(-1, 1)`"
            if ndim == 2
            else "pass one score per sample"
        )
        raise InputError(f"`{name}` must be {ndim}-D; got shape {array.shape}. Hint: {hint}.")
    if ndim is None and array.ndim not in (1, 2):
        raise InputError(f"`{name}` must be 1-D or 2-D; got shape {array.shape}.")
    if array.ndim == 2 and array.shape[1] < min_columns:
        raise InputError(
            f"`{name}` must have at least {min_columns} column(s); got shape {array.shape}."
        )
    _check_finite(array, name)
    return array


def check_probabilities(
    proba: ArrayLike,
    name: str = "probabilities",
    *,
    n_classes: int | None = None,
) -> NDArray[np.floating[Any]]:
    """Validate a matrix of class probabilities.

    Rows must lie in [0, 1] and sum to 1 within :data:`PROBABILITY_SUM_TOLERANCE`.

    Parameters
    ----------
    proba : array-like of shape (n_samples, n_classes)
        Class probabilities.
    name : str, default="probabilities"
        Argument name used in error messages.
    n_classes : int, optional
        Required number of columns, e.g. the number of classes seen in ``fit``.

    Returns
    -------
    ndarray of shape (n_samples, n_classes)
        The validated array (not copied when already floating point).
    """
    array = _as_float_array(proba, name)
    if array.ndim != 2:
        raise InputError(
            f"`{name}` must have shape (n_samples, n_classes) with rows summing to 1; got shape "
            f"{array.shape}. Pass a 2-D array, or pass raw scores (logits) to a calibrator such as "
            "`TemperatureScaling` first."
        )
    if n_classes is not None and array.shape[1] != n_classes:
        raise InputError(
            f"`{name}` has {array.shape[1]} columns but {n_classes} classes were seen in fit. "
            "Pass the probabilities of the same model, with columns in the same class order."
        )
    if array.size == 0:
        raise InputError(f"`{name}` is empty (shape {array.shape}); at least one sample is needed.")
    # One pass for the row sums (NaN and inf propagate into them) and one for the minimum:
    # this check runs on every `decide` call, so it must stay close to memory speed.
    sums = array @ np.ones(array.shape[1], dtype=array.dtype)
    if not np.isfinite(sums).all():
        _check_finite(array, name)
    low = float(array.min())
    off = np.abs(sums - 1.0) > PROBABILITY_SUM_TOLERANCE
    if low < 0.0 or (off.any() and float(array.max()) > 1.0):
        high = float(array.max())
        raise InputError(
            f"`{name}` must lie in [0, 1]; got values from {low:.4g} to {high:.4g}. These look "
            "like logits: pass them to a calibrator such as `TemperatureScaling` first, or apply "
            "a softmax."
        )
    if off.any():
        row = int(np.flatnonzero(off)[0])
        raise InputError(
            f"`{name}` rows must sum to 1; {int(off.sum())} row(s) do not, first row {row} sums "
            f"to {float(sums[row]):.6g}. Normalise each row, or pass raw scores to a calibrator."
        )
    return array


def check_labels(
    y: ArrayLike,
    name: str = "y",
    *,
    n_classes: int | None = None,
    allow_out_of_scope: bool = False,
) -> NDArray[np.intp]:
    """Validate integer class labels in ``range(n_classes)``.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Class indices. With ``allow_out_of_scope=True`` the value ``-1``
        (:data:`failwise.OUT_OF_SCOPE`) marks an input that belongs to none of
        the classes.
    name : str, default="y"
        Argument name used in error messages.
    n_classes : int, optional
        Number of classes; labels must be below it.
    allow_out_of_scope : bool, default=False
        Accept ``-1`` for out-of-scope inputs.

    Returns
    -------
    ndarray of shape (n_samples,) and dtype intp
    """
    if y is None:
        raise InputError(f"`{name}` is required; got None.")
    array = np.asarray(y)
    if array.ndim != 1:
        raise InputError(
            f"`{name}` must be 1-D (one label per sample); got shape {array.shape}. "
            "If you have one-hot labels, pass `onehot.argmax(axis=1)`."
        )
    if array.size == 0:
        raise InputError(f"`{name}` is empty; at least one labelled sample is needed.")
    if array.dtype.kind == "b":
        array = array.astype(np.intp)
    if array.dtype.kind == "f":
        if not np.isfinite(array).all():
            raise InputError(f"`{name}` contains NaN or infinite labels; labels are class indices.")
        if not np.all(array == np.round(array)):
            raise InputError(
                f"`{name}` must hold integer class indices; got non-integer floats such as "
                f"{array[array != np.round(array)][0]!r}."
            )
    elif array.dtype.kind not in "iu":
        raise InputError(
            f"`{name}` must hold integer class indices 0..n_classes-1; got dtype {array.dtype} "
            f"(e.g. {array.ravel()[0]!r}). Encode string labels first, e.g. with "
            "`sklearn.preprocessing.LabelEncoder`, or use the `classes` of your model."
        )
    labels = array.astype(np.intp, copy=False)
    low = -1 if allow_out_of_scope else 0
    if labels.min() < low:
        bad = labels[labels < low][0]
        extra = " (-1 marks out-of-scope inputs)" if allow_out_of_scope else ""
        raise InputError(f"`{name}` must hold class indices >= {low}{extra}; got {int(bad)}.")
    if n_classes is not None and labels.max() >= n_classes:
        bad_values = np.unique(labels[labels >= n_classes])
        raise InputError(
            f"`{name}` holds label(s) {bad_values[:5].tolist()} but the scores have only "
            f"{n_classes} classes (0..{n_classes - 1}). Labels absent from the model's classes "
            "cannot be scored: remap them, or mark out-of-scope inputs with -1 where allowed."
        )
    return labels


def check_binary_labels(y: ArrayLike, name: str = "y") -> NDArray[np.intp]:
    """Validate 0/1 labels (booleans accepted)."""
    labels = check_labels(y, name)
    if labels.max() > 1:
        raise InputError(
            f"`{name}` must be binary (0/1 or bool); got values {np.unique(labels)[:5].tolist()}."
        )
    return labels


def check_confidence(confidence: ArrayLike, name: str = "confidence") -> NDArray[np.floating[Any]]:
    """Validate a 1-D array of confidences in [0, 1]."""
    array = check_scores(confidence, name, ndim=1)
    low, high = float(array.min()), float(array.max())
    if low < 0.0 or high > 1.0:
        raise InputError(
            f"`{name}` must lie in [0, 1]; got values from {low:.4g} to {high:.4g}. Calibrate raw "
            "scores first, e.g. with `CorrectnessCalibration`."
        )
    return array


def check_consistent_length(**arrays: Sequence[Any] | NDArray[Any]) -> int:
    """Check that every named array has the same number of samples; return it."""
    lengths = {name: len(value) for name, value in arrays.items()}
    if len(set(lengths.values())) > 1:
        listing = ", ".join(f"`{name}` has {n}" for name, n in lengths.items())
        raise InputError(
            f"Inputs must have the same number of samples; {listing}. Pass rows that refer to the "
            "same inputs."
        )
    return next(iter(lengths.values()))


def check_fitted(estimator: object, attribute: str, method: str) -> None:
    """Raise :class:`NotFittedError` unless ``estimator`` has ``attribute``.

    The message spells out the call order: "call fit before <method>".
    """
    if not hasattr(estimator, attribute):
        name = type(estimator).__name__
        raise NotFittedError(
            f"This {name} is not fitted yet: call fit before {method}. "
            f"For example `{name}(...).fit(scores, y).{method}(...)`."
        )
