"""Binned calibration error: ECE, MCE, classwise ECE, debiased ℓ2 error, reliability tables.

Every estimator here groups samples into bins of predicted probability and compares,
in each bin, the mean predicted probability with the observed frequency of the event
it predicts. They share one binning convention:

- ``strategy="uniform"``: ``n_bins`` equal-width bins on [0, 1], right-closed,
  ``[0, 1/B], (1/B, 2/B], …, ((B-1)/B, 1]`` as in Guo et al. (2017) and
  :func:`sklearn.calibration.calibration_curve`.
- ``strategy="quantile"``: interior edges at the ``k/B`` percentiles of the binned
  values (:func:`numpy.percentile`, linear interpolation), bins right-closed, outer
  edges 0 and 1; the same edges as ``calibration_curve(strategy="quantile")``. Tied
  values never straddle an edge, so heavily tied data can leave some bins empty.

Empty bins carry no weight. All work is vectorised: one ``searchsorted`` and a few
``bincount`` calls per binned column.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from failwise._params import Interval, Options, check_param
from failwise._validation import (
    check_consistent_length,
    check_labels,
    check_probabilities,
    describe,
)
from failwise.exceptions import InputError

__all__ = [
    "ReliabilityTable",
    "classwise_ece",
    "debiased_expected_calibration_error",
    "expected_calibration_error",
    "maximum_calibration_error",
    "reliability_table",
]

_STRATEGIES = Options(("uniform", "quantile"))
_N_BINS = Interval(Integral, 1, None, closed="left")
#: Rows are processed in blocks of about this many probabilities to bound temporary memory.
_BLOCK_ELEMENTS = 1 << 20


# --------------------------------------------------------------------------- validation


def _check_proba_and_labels(
    proba: ArrayLike, y: ArrayLike
) -> tuple[NDArray[np.floating[Any]], NDArray[np.intp]]:
    """Validate an (n, K) probability matrix and in-scope labels 0..K-1."""
    probabilities = check_probabilities(proba, "proba")
    n_classes = probabilities.shape[1]
    if n_classes < 2:
        raise InputError(
            f"`proba` must have one column per class and at least 2 columns; got shape "
            f"{probabilities.shape}. A binary model passes shape (n_samples, 2): "
            "`np.column_stack([1 - p, p])` for positive-class probabilities `p`."
        )
    labels = check_labels(y, "y", n_classes=n_classes, allow_out_of_scope=True)
    check_consistent_length(proba=probabilities, y=labels)
    out_of_scope = labels < 0
    if out_of_scope.any():
        raise InputError(
            f"`y` contains -1 (out of scope) in {int(out_of_scope.sum())} row(s), first at row "
            f"{int(np.flatnonzero(out_of_scope)[0])}; calibration is defined over the model's "
            f"{n_classes} classes only. Score in-scope rows, e.g. `mask = y != -1`, "
            "then pass `proba[mask], y[mask]`."
        )
    return probabilities, labels


def _top_label(
    proba: NDArray[np.floating[Any]], labels: NDArray[np.intp]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Confidence (max probability) and correctness (argmax == y, first max on ties)."""
    confidence = proba.max(axis=1).astype(np.float64)
    correct = (proba.argmax(axis=1) == labels).astype(np.float64)
    return confidence, correct


# --------------------------------------------------------------------------- binning


def _bin_edges(values: NDArray[np.float64], n_bins: int, strategy: str) -> NDArray[np.float64]:
    if strategy == "uniform":
        return np.linspace(0.0, 1.0, n_bins + 1)
    quantiles = np.linspace(0.0, 1.0, n_bins + 1)
    edges = np.asarray(np.percentile(values, quantiles * 100), dtype=np.float64)
    edges[0], edges[-1] = 0.0, 1.0
    return edges


@dataclass(frozen=True)
class _Bins:
    edges: NDArray[np.float64]
    count: NDArray[np.intp]
    value_sum: NDArray[np.float64]
    target_sum: NDArray[np.float64]

    @property
    def n_samples(self) -> int:
        return int(self.count.sum())


def _bin(
    values: NDArray[np.float64], target: NDArray[np.float64], n_bins: int, strategy: str
) -> _Bins:
    """Per-bin counts and sums of predicted ``values`` and observed ``target`` (0/1)."""
    edges = _bin_edges(values, n_bins, strategy)
    ids = np.searchsorted(edges[1:-1], values, side="left")
    count = np.bincount(ids, minlength=n_bins).astype(np.intp)
    value_sum = np.bincount(ids, weights=values, minlength=n_bins).astype(np.float64, copy=False)
    target_sum = np.bincount(ids, weights=target, minlength=n_bins).astype(np.float64, copy=False)
    return _Bins(edges, count, value_sum, target_sum)


def _ece(bins: _Bins) -> float:
    # sum_b (n_b / n) |acc_b - conf_b| == sum_b |sum_acc_b - sum_conf_b| / n
    return float(np.abs(bins.target_sum - bins.value_sum).sum() / bins.n_samples)


def _binned_means(bins: _Bins) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_value = bins.value_sum / bins.count
        mean_target = bins.target_sum / bins.count
    return mean_value, mean_target


# --------------------------------------------------------------------------- reliability table


@dataclass(frozen=True, eq=False)
class ReliabilityTable:
    """Per-bin calibration statistics: the data of a reliability diagram.

    All arrays have shape (n_bins,) and are read-only. Bins are right-closed,
    ``(bin_lower, bin_upper]``; the first bin also holds the value 0.

    Attributes
    ----------
    bin_lower, bin_upper : ndarray of float
        Edges of each bin.
    count : ndarray of int
        Number of samples in each bin.
    mean_confidence : ndarray of float
        Mean predicted probability in each bin; NaN for an empty bin.
    accuracy : ndarray of float
        Observed frequency in each bin: the fraction of correct predictions for a
        top-label table, the fraction of samples of class ``class_index`` for a
        one-vs-rest table; NaN for an empty bin.
    gap : ndarray of float
        ``mean_confidence - accuracy``: positive where the model is overconfident,
        negative where it is underconfident; NaN for an empty bin.
    """

    bin_lower: NDArray[np.float64]
    bin_upper: NDArray[np.float64]
    count: NDArray[np.intp]
    mean_confidence: NDArray[np.float64]
    accuracy: NDArray[np.float64]
    gap: NDArray[np.float64]

    def __post_init__(self) -> None:
        for name in ("bin_lower", "bin_upper", "count", "mean_confidence", "accuracy", "gap"):
            getattr(self, name).setflags(write=False)

    @property
    def n_bins(self) -> int:
        """Number of bins, empty ones included."""
        return int(self.count.shape[0])

    @property
    def n_samples(self) -> int:
        """Number of samples binned."""
        return int(self.count.sum())

    def to_dict(self) -> dict[str, list[float] | list[int] | list[float | None]]:
        """Plain Python lists, one per column; NaN becomes None so the dict serialises as JSON."""

        def floats(array: NDArray[np.float64]) -> list[float | None]:
            return [None if np.isnan(v) else float(v) for v in array]

        return {
            "bin_lower": [float(v) for v in self.bin_lower],
            "bin_upper": [float(v) for v in self.bin_upper],
            "count": [int(v) for v in self.count],
            "mean_confidence": floats(self.mean_confidence),
            "accuracy": floats(self.accuracy),
            "gap": floats(self.gap),
        }


def reliability_table(
    proba: ArrayLike,
    y: ArrayLike,
    n_bins: int = 15,
    strategy: str = "uniform",
    *,
    class_index: int | None = None,
) -> ReliabilityTable:
    """Bin predictions by confidence and compare mean confidence with accuracy per bin.

    By default the table is top-label (Guo et al. 2017): the confidence of a sample
    is its largest probability and it counts as correct when the argmax (the first
    one on ties) equals ``y``. With ``class_index=k`` it is the one-vs-rest table of
    class ``k``: ``proba[:, k]`` against ``y == k``, the reliability diagram of
    Kull et al. (2019) and, for ``k=1`` on a binary model, exactly the bins of
    :func:`sklearn.calibration.calibration_curve` (which drops empty bins).

    Parameters
    ----------
    proba : array-like of shape (n_samples, n_classes)
        Predicted class probabilities; rows sum to 1. Binary models pass (n, 2).
    y : array-like of shape (n_samples,)
        True class indices in 0..n_classes-1.
    n_bins : int, default=15
        Number of bins.
    strategy : {"uniform", "quantile"}, default="uniform"
        Equal-width bins on [0, 1] or equal-mass bins (see the module notes).
    class_index : int, optional
        Build the one-vs-rest table of this class instead of the top-label table.

    Returns
    -------
    ReliabilityTable
        Arrays of shape (n_bins,); empty bins have count 0 and NaN means.

    Examples
    --------
    >>> import numpy as np
    >>> from failwise.metrics import reliability_table
    >>> proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]])
    >>> table = reliability_table(proba, [0, 1, 1, 1], n_bins=2)
    >>> table.count.tolist(), table.accuracy.tolist()
    ([0, 4], [nan, 0.75])
    >>> round(float(table.gap[1]), 2)
    0.0
    """
    probabilities, labels = _check_proba_and_labels(proba, y)
    check_param("n_bins", n_bins, [_N_BINS])
    check_param("strategy", strategy, [_STRATEGIES])
    if class_index is None:
        values, target = _top_label(probabilities, labels)
    else:
        n_classes = probabilities.shape[1]
        if isinstance(class_index, bool) or not isinstance(class_index, Integral):
            raise InputError(
                f"`class_index` must be None or an int in 0..{n_classes - 1}; got "
                f"{describe(class_index)}."
            )
        if not 0 <= int(class_index) < n_classes:
            raise InputError(
                f"`class_index` must be in 0..{n_classes - 1} (a column of `proba`); got "
                f"{int(class_index)}. Leave it as None for the top-label table."
            )
        values = probabilities[:, int(class_index)].astype(np.float64)
        target = (labels == int(class_index)).astype(np.float64)
    bins = _bin(values, target, n_bins, strategy)
    mean_confidence, accuracy = _binned_means(bins)
    return ReliabilityTable(
        bin_lower=bins.edges[:-1].copy(),
        bin_upper=bins.edges[1:].copy(),
        count=bins.count,
        mean_confidence=mean_confidence,
        accuracy=accuracy,
        gap=mean_confidence - accuracy,
    )


# --------------------------------------------------------------------------- estimators


def expected_calibration_error(
    proba: ArrayLike, y: ArrayLike, n_bins: int = 15, strategy: str = "uniform"
) -> float:
    """Top-label expected calibration error (ECE) of Guo et al. (2017).

    ``ECE = sum_b (n_b / n) |accuracy_b - confidence_b|`` over bins of the top-label
    confidence (the largest probability); a prediction is correct when its argmax
    equals ``y``. This is the plug-in ℓ1 estimate: it is biased upwards on small
    samples (see :func:`debiased_expected_calibration_error`).

    With ``strategy="uniform"`` and a multiclass problem the value agrees with
    ``netcal.metrics.ECE(bins=n_bins)`` to floating-point precision; netcal's bins
    are left-closed instead of right-closed, which matters only for confidences
    exactly on an edge ``k/n_bins``. On a binary problem (labels with at most two
    distinct values) netcal measures the positive-class probability instead of the
    top-label confidence; that number equals :func:`classwise_ece` here.

    Parameters
    ----------
    proba : array-like of shape (n_samples, n_classes)
        Predicted class probabilities; rows sum to 1. Binary models pass (n, 2).
    y : array-like of shape (n_samples,)
        True class indices in 0..n_classes-1.
    n_bins : int, default=15
        Number of bins.
    strategy : {"uniform", "quantile"}, default="uniform"
        Equal-width bins on [0, 1] or equal-mass bins.

    Returns
    -------
    float
        The ECE, in [0, 1].

    References
    ----------
    Guo, Pleiss, Sun and Weinberger, "On Calibration of Modern Neural Networks",
    ICML 2017.

    Examples
    --------
    >>> import numpy as np
    >>> from failwise.metrics import expected_calibration_error
    >>> proba = np.array([[0.9, 0.1], [0.9, 0.1], [0.2, 0.8], [0.4, 0.6]])
    >>> round(expected_calibration_error(proba, [0, 1, 1, 0], n_bins=10), 3)
    0.4
    """
    probabilities, labels = _check_proba_and_labels(proba, y)
    check_param("n_bins", n_bins, [_N_BINS])
    check_param("strategy", strategy, [_STRATEGIES])
    confidence, correct = _top_label(probabilities, labels)
    return _ece(_bin(confidence, correct, n_bins, strategy))


def maximum_calibration_error(
    proba: ArrayLike, y: ArrayLike, n_bins: int = 15, strategy: str = "uniform"
) -> float:
    """Top-label maximum calibration error (MCE): the largest per-bin gap.

    ``MCE = max_b |accuracy_b - confidence_b|`` over non-empty bins of the top-label
    confidence (Naeini, Cooper and Hauskrecht 2015; Guo et al. 2017). Same bins as
    :func:`expected_calibration_error`; agrees with ``netcal.metrics.MCE`` under the
    same conditions. A bin with a single sample counts fully, so MCE is noisy on
    small samples.

    Parameters
    ----------
    proba : array-like of shape (n_samples, n_classes)
        Predicted class probabilities; rows sum to 1. Binary models pass (n, 2).
    y : array-like of shape (n_samples,)
        True class indices in 0..n_classes-1.
    n_bins : int, default=15
        Number of bins.
    strategy : {"uniform", "quantile"}, default="uniform"
        Equal-width bins on [0, 1] or equal-mass bins.

    Returns
    -------
    float
        The MCE, in [0, 1].

    References
    ----------
    Naeini, Cooper and Hauskrecht, "Obtaining Well Calibrated Probabilities Using
    Bayesian Binning", AAAI 2015.

    Examples
    --------
    >>> import numpy as np
    >>> from failwise.metrics import maximum_calibration_error
    >>> proba = np.array([[0.9, 0.1], [0.9, 0.1], [0.2, 0.8], [0.4, 0.6]])
    >>> round(maximum_calibration_error(proba, [0, 1, 1, 0], n_bins=10), 3)
    0.6
    """
    probabilities, labels = _check_proba_and_labels(proba, y)
    check_param("n_bins", n_bins, [_N_BINS])
    check_param("strategy", strategy, [_STRATEGIES])
    confidence, correct = _top_label(probabilities, labels)
    bins = _bin(confidence, correct, n_bins, strategy)
    mean_confidence, accuracy = _binned_means(bins)
    filled = bins.count > 0
    return float(np.abs(accuracy[filled] - mean_confidence[filled]).max())


def classwise_ece(
    proba: ArrayLike, y: ArrayLike, n_bins: int = 15, strategy: str = "uniform"
) -> float:
    """Classwise ECE of Kull et al. (2019): the mean one-vs-rest ECE over classes.

    For each class ``k`` the column ``proba[:, k]`` is binned and compared with the
    frequency of ``y == k`` in each bin; the per-class ECEs are averaged with equal
    weight, absent classes included. Unlike the top-label ECE it checks every
    probability the model outputs, not only the largest. On a binary problem both
    classes give the same value, and it equals netcal's ECE.

    Parameters
    ----------
    proba : array-like of shape (n_samples, n_classes)
        Predicted class probabilities; rows sum to 1. Binary models pass (n, 2).
    y : array-like of shape (n_samples,)
        True class indices in 0..n_classes-1.
    n_bins : int, default=15
        Number of bins per class.
    strategy : {"uniform", "quantile"}, default="uniform"
        Equal-width bins on [0, 1] or equal-mass bins (quantiles of each column).

    Returns
    -------
    float
        The classwise ECE, in [0, 1].

    References
    ----------
    Kull, Perello-Nieto, Kängsepp, Silva Filho, Song and Flach, "Beyond temperature
    scaling: Obtaining well-calibrated multiclass probabilities with Dirichlet
    calibration", NeurIPS 2019.

    Examples
    --------
    >>> import numpy as np
    >>> from failwise.metrics import classwise_ece
    >>> proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])
    >>> round(classwise_ece(proba, [0, 1, 2], n_bins=5), 3)
    0.2
    """
    probabilities, labels = _check_proba_and_labels(proba, y)
    check_param("n_bins", n_bins, [_N_BINS])
    check_param("strategy", strategy, [_STRATEGIES])
    n_classes = int(probabilities.shape[1])
    if strategy == "uniform":
        return _uniform_classwise_ece(probabilities, labels, n_bins)
    total = 0.0
    for k in range(n_classes):
        values = probabilities[:, k].astype(np.float64)
        target = (labels == k).astype(np.float64)
        total += _ece(_bin(values, target, n_bins, strategy))
    return total / n_classes


def _uniform_classwise_ece(
    proba: NDArray[np.floating[Any]], labels: NDArray[np.intp], n_bins: int
) -> float:
    """Classwise ECE with shared equal-width edges: one bincount per block of rows."""
    n_samples, n_classes = proba.shape
    interior = np.linspace(0.0, 1.0, n_bins + 1)[1:-1]
    offsets = n_bins * np.arange(n_classes)
    size = n_classes * n_bins
    value_sum = np.zeros(size)
    target_sum = np.zeros(size)
    block = max(1, _BLOCK_ELEMENTS // n_classes)
    for start in range(0, n_samples, block):
        rows = proba[start : start + block].astype(np.float64, copy=False)
        cells = np.searchsorted(interior, rows, side="left") + offsets
        value_sum += np.bincount(cells.ravel(), weights=rows.ravel(), minlength=size)
        true_cells = cells[np.arange(rows.shape[0]), labels[start : start + block]]
        target_sum += np.bincount(true_cells, minlength=size)
    per_class = np.abs(target_sum - value_sum).reshape(n_classes, n_bins).sum(axis=1)
    return float(per_class.mean() / n_samples)


def debiased_expected_calibration_error(
    proba: ArrayLike, y: ArrayLike, n_bins: int = 15, strategy: str = "quantile"
) -> float:
    """Debiased estimate of the top-label ℓ2 calibration error (Kumar, Liang and Ma 2019).

    What it estimates: the binned top-label ℓ2 calibration error

    ``CE_2 = sqrt( sum_b P(bin b) * (E[confidence | b] - P(correct | b))^2 )``

    where the bins are those of ``strategy``. The plug-in estimate squares the
    observed per-bin gap, whose expectation is the true squared gap *plus* the
    sampling variance of the bin accuracy ``p_b (1 - p_b) / n_b``; the estimator
    subtracts an unbiased estimate of that variance,
    ``acc_b (1 - acc_b) / (n_b - 1)``, so the squared error is estimated without
    this bias before the square root is taken (a negative total is clipped to 0).
    Bins with fewer than 2 samples contribute 0, as in the authors' code.

    Relation to ECE: :func:`expected_calibration_error` is the plug-in estimate of
    the ℓ1 error ``sum_b P(b) |gap_b|``. For the same bins, ℓ1 <= ℓ2, and the
    debiased ℓ2 estimate is never above the plug-in ℓ2 estimate
    ``sqrt(sum_b (n_b / n) gap_b^2)``. Plug-in estimates grow with the number of
    bins (fewer samples per bin, more noise); the debiased one stays roughly stable,
    which is why equal-mass bins and this estimator are the recommended pair. Like
    every binned estimate, it lower-bounds the calibration error of a model with
    continuous outputs.

    Equal-mass bins use the percentile edges of the module notes; the authors' code
    cuts the sorted confidences into chunks of ``ceil(n / n_bins)`` samples, which
    gives nearly the same bins.

    Parameters
    ----------
    proba : array-like of shape (n_samples, n_classes)
        Predicted class probabilities; rows sum to 1. Binary models pass (n, 2).
    y : array-like of shape (n_samples,)
        True class indices in 0..n_classes-1.
    n_bins : int, default=15
        Number of bins.
    strategy : {"quantile", "uniform"}, default="quantile"
        Equal-mass bins (recommended by the paper) or equal-width bins on [0, 1].

    Returns
    -------
    float
        The debiased ℓ2 calibration error, in [0, 1].

    References
    ----------
    Kumar, Liang and Ma, "Verified Uncertainty Calibration", NeurIPS 2019.

    Examples
    --------
    >>> import numpy as np
    >>> from failwise.metrics import debiased_expected_calibration_error
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(0.5, 1.0, size=20_000)
    >>> proba = np.column_stack([p, 1 - p])
    >>> y = (rng.uniform(size=p.size) > p).astype(int)  # calibrated by construction
    >>> debiased_expected_calibration_error(proba, y) < 0.01
    True
    """
    probabilities, labels = _check_proba_and_labels(proba, y)
    check_param("n_bins", n_bins, [_N_BINS])
    check_param("strategy", strategy, [_STRATEGIES])
    confidence, correct = _top_label(probabilities, labels)
    bins = _bin(confidence, correct, n_bins, strategy)
    mean_confidence, accuracy = _binned_means(bins)
    usable = bins.count >= 2
    count = bins.count[usable]
    acc = accuracy[usable]
    terms = (mean_confidence[usable] - acc) ** 2 - acc * (1.0 - acc) / (count - 1.0)
    squared = float(np.sum(count * terms)) / bins.n_samples
    return math.sqrt(max(squared, 0.0))
