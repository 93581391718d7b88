"""Numerically stable softmax and log-softmax."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from failwise._validation import describe
from failwise.exceptions import InputError

__all__ = ["log_softmax", "softmax"]


def _as_logits(logits: ArrayLike, axis: int) -> NDArray[np.float64]:
    if logits is None:
        raise InputError("`logits` is required; got None.")
    try:
        array = np.asarray(logits)
    except (TypeError, ValueError) as exc:  # ragged nested lists
        raise InputError(
            f"`logits` must be array-like of numbers; got {describe(logits)} that NumPy cannot "
            f"turn into an array ({exc}). Pass a list of equal-length rows or a NumPy array."
        ) from None
    if array.dtype.kind not in "fiub":
        raise InputError(
            f"`logits` must hold numbers; got dtype {array.dtype}. Convert it with "
            "`np.asarray(logits, dtype=float)` after removing non-numeric entries."
        )
    if array.ndim == 0:
        raise InputError(
            "`logits` must have at least one dimension (one score per class); got a scalar. "
            "Pass an array such as `[[2.0, 0.5, -1.0]]`."
        )
    if not -array.ndim <= axis < array.ndim:
        raise InputError(
            f"`axis` must index a dimension of `logits` (shape {array.shape}); got {axis}. "
            "Use axis=-1 for one row of class scores per sample."
        )
    if array.size == 0:
        raise InputError(f"`logits` is empty (shape {array.shape}); at least one score is needed.")
    array = np.asarray(array, dtype=np.float64)
    if np.isnan(array).any() or np.isposinf(array).any():
        kind = "NaN" if np.isnan(array).any() else "+inf"
        raise InputError(
            f"`logits` contains {kind}; a softmax of it is undefined. Drop or impute those "
            "rows first (-inf is allowed and means probability 0)."
        )
    if np.isneginf(array).all(axis=axis).any():
        raise InputError(
            "`logits` has a slice where every entry is -inf, which gives no probability to any "
            "class. Keep at least one finite score per sample."
        )
    return array


def log_softmax(logits: ArrayLike, axis: int = -1) -> NDArray[np.float64]:
    r"""Return the logarithm of the softmax of ``logits`` along ``axis``.

    Computed as :math:`z_j - \max_k z_k - \log \sum_k \exp(z_k - \max_k z_k)`, which never
    overflows and keeps tiny probabilities accurate in log space.

    Parameters
    ----------
    logits : array-like of shape (n_samples, n_classes) or any shape
        Unnormalised scores. ``-inf`` entries are allowed (probability 0); NaN and ``+inf``
        are not.
    axis : int, default=-1
        The class axis.

    Returns
    -------
    ndarray of float64, same shape as ``logits``
        Log-probabilities; ``exp`` of each slice along ``axis`` sums to 1.

    Raises
    ------
    InputError
        For empty input, NaN, ``+inf``, a slice that is all ``-inf``, or a bad ``axis``.

    Examples
    --------
    >>> from failwise.calibration import log_softmax
    >>> log_softmax([[0.0, 0.0]]).round(4)
    array([[-0.6931, -0.6931]])
    """
    array = _as_logits(logits, axis)
    shifted: NDArray[np.float64] = array - array.max(axis=axis, keepdims=True)
    with np.errstate(divide="ignore"):
        shifted -= np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    return shifted


def softmax(logits: ArrayLike, axis: int = -1) -> NDArray[np.float64]:
    r"""Return the softmax of ``logits`` along ``axis``.

    :math:`\operatorname{softmax}(z)_j = \exp(z_j - m) / \sum_k \exp(z_k - m)` with
    :math:`m = \max_k z_k`, so large logits never overflow.

    Parameters
    ----------
    logits : array-like of shape (n_samples, n_classes) or any shape
        Unnormalised scores. ``-inf`` entries are allowed (probability 0); NaN and ``+inf``
        are not.
    axis : int, default=-1
        The class axis.

    Returns
    -------
    ndarray of float64, same shape as ``logits``
        Probabilities in [0, 1] that sum to 1 along ``axis``.

    Raises
    ------
    InputError
        For empty input, NaN, ``+inf``, a slice that is all ``-inf``, or a bad ``axis``.

    Examples
    --------
    >>> from failwise.calibration import softmax
    >>> softmax([[1000.0, 1000.0, -1000.0]]).round(3)
    array([[0.5, 0.5, 0. ]])
    """
    array = _as_logits(logits, axis)
    probabilities: NDArray[Any] = array - array.max(axis=axis, keepdims=True)
    np.exp(probabilities, out=probabilities)
    probabilities /= probabilities.sum(axis=axis, keepdims=True)
    return probabilities
