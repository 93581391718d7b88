"""Plain-data values of the HTML report: a metric, an assumption, a reliability diagram.

Every type here is a frozen dataclass of numbers and strings, so a command line,
a notebook or a service can build one without importing any estimator. Each
validates itself on construction and raises :class:`~failwise.exceptions.InputError`
naming the field, what arrived and how to fix it. :class:`ModelSection` (one model's
page section) lives in ``_section``; the metric catalogue in ``_catalogue``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from failwise._validation import (
    check_binary_labels,
    check_confidence,
    check_consistent_length,
    describe,
)
from failwise.exceptions import InputError
from failwise.report._catalogue import UNITS
from failwise.report._checks import (
    PlainData,
    check_fraction,
    check_text,
    check_unit_range,
    float_tuple,
)

__all__ = ["Assumption", "MetricValue", "ReliabilityBins"]


@dataclass(frozen=True, eq=False)
class MetricValue(PlainData):
    """A product metric with an optional confidence interval.

    Parameters
    ----------
    value : float
        The point estimate. With ``unit="%"`` a fraction in [0, 1] (shown as a
        percentage with one decimal); ``NaN`` when the metric is undefined (shown
        as a dash, e.g. a recovery rate when no output was incorrect).
    low, high : float or None, default=None
        Bounds of the confidence interval, in the same unit as ``value``.
        ``NaN`` means unknown and is stored as ``None``.
    unit : {"%", "s", "h", ""}, default="%"
        ``"%"`` a fraction, ``"s"`` seconds (shown in s, min or h), ``"h"`` hours,
        ``""`` a plain number.

    Examples
    --------
    >>> MetricValue(0.873, low=0.861, high=0.884).unit
    '%'
    """

    value: float
    low: float | None = None
    high: float | None = None
    unit: str = "%"

    def __post_init__(self) -> None:
        owner = "MetricValue"
        if self.unit not in UNITS:
            raise InputError(
                f"{owner}: `unit` must be one of {UNITS!r}; got {self.unit!r}. Use '%' for "
                "rates given as fractions, 's' for seconds, 'h' for hours."
            )
        numbers: dict[str, float | None] = {}
        for field in ("value", "low", "high"):
            raw = getattr(self, field)
            if raw is None and field != "value":
                numbers[field] = None
                continue
            if isinstance(raw, bool) or not isinstance(raw, (int, float, np.integer, np.floating)):
                raise InputError(f"{owner}: `{field}` must be a number; got {describe(raw)}.")
            number = float(raw)
            if math.isnan(number) and field != "value":
                # An unknown bound: NaN is how interval estimates elsewhere say so.
                numbers[field] = None
                object.__setattr__(self, field, None)
                continue
            if math.isinf(number):
                raise InputError(
                    f"{owner}: `{field}` must be finite; got {number!r}. Leave an unknown bound "
                    "as None."
                )
            if self.unit == "%" and not math.isnan(number) and not 0.0 <= number <= 1.0:
                raise InputError(
                    f"{owner}: `{field}` is {number!r} but unit '%' expects a fraction in "
                    "[0, 1]. Pass 0.873 for 87.3%."
                )
            numbers[field] = number
            object.__setattr__(self, field, number)
        value, low, high = numbers["value"], numbers["low"], numbers["high"]
        if low is not None and high is not None and low > high:
            raise InputError(
                f"{owner}: the interval is reversed (low={low!r} > high={high!r}); swap them."
            )
        tol = 1e-9
        outside = value is not None and (
            (low is not None and value < low - tol) or (high is not None and value > high + tol)
        )
        if outside:
            raise InputError(
                f"{owner}: `value` {value!r} lies outside its interval [{low!r}, {high!r}]. "
                "Pass the interval of this estimate."
            )


@dataclass(frozen=True, eq=False)
class Assumption(PlainData):
    """One assumption of the outcome model, printed beside the projection.

    Parameters
    ----------
    name : str
        What is assumed, e.g. ``"P(user notices a wrong answer)"``.
    value : str
        The value as it should read, e.g. ``"0.6"`` or ``"45 s"``.
    reason : str
        One line saying where the value comes from.
    """

    name: str
    value: str
    reason: str

    def __post_init__(self) -> None:
        check_text(self.name, "Assumption", "name")
        check_text(self.value, "Assumption", "value")
        check_text(self.reason, "Assumption", "reason", allow_empty=True)


@dataclass(frozen=True, eq=False)
class ReliabilityBins(PlainData):
    """One reliability diagram: accuracy against confidence, per confidence bin.

    Parameters
    ----------
    mean_confidence : sequence or array of float, shape (n_bins,)
        Mean confidence of the inputs in each bin; ``NaN`` for an empty bin.
    accuracy : sequence of float, shape (n_bins,)
        Fraction of correct predictions in each bin; ``NaN`` for an empty bin.
    count : sequence of int, shape (n_bins,)
        Number of inputs in each bin.
    bin_lower, bin_upper : sequence of float, shape (n_bins,)
        Edges of each bin, increasing and within [0, 1].
    ece : float
        Expected calibration error (Naeini et al., 2015), a fraction in [0, 1].

    Notes
    -----
    Every sequence is stored as a tuple of Python numbers, so instances pickle,
    compare and hash by value (NaN equal to NaN). Values of empty bins are
    ignored, whatever they hold, and stored as NaN. Use
    :meth:`from_predictions` to compute the bins from confidences and correctness.

    Examples
    --------
    >>> bins = ReliabilityBins.from_predictions([0.9, 0.8, 0.95, 0.6], [1, 0, 1, 1], n_bins=5)
    >>> bins.count
    (0, 0, 1, 1, 2)
    >>> round(bins.ece, 3)
    0.338
    """

    mean_confidence: Sequence[float] | NDArray[Any]
    accuracy: Sequence[float] | NDArray[Any]
    count: Sequence[int] | NDArray[Any]
    bin_lower: Sequence[float] | NDArray[Any]
    bin_upper: Sequence[float] | NDArray[Any]
    ece: float

    def __post_init__(self) -> None:
        owner = "ReliabilityBins"
        names = ("mean_confidence", "accuracy", "bin_lower", "bin_upper")
        values = {f: float_tuple(getattr(self, f), owner, f) for f in names}
        counts_raw = float_tuple(self.count, owner, "count")
        counts = np.asarray(counts_raw)
        if (
            not np.isfinite(counts).all()
            or (counts < 0).any()
            or (counts != np.round(counts)).any()
        ):
            raise InputError(
                f"{owner}: `count` must hold non-negative integers; got {list(counts_raw)[:8]}."
            )
        lengths = {f: len(v) for f, v in values.items()} | {"count": len(counts_raw)}
        if len(set(lengths.values())) > 1:
            listing = ", ".join(f"`{f}` has {n}" for f, n in lengths.items())
            raise InputError(
                f"{owner}: every field needs one value per bin; {listing}. Pass the same bins."
            )
        if counts.sum() == 0:
            raise InputError(
                f"{owner}: every bin is empty (`count` sums to 0); a diagram needs at least one "
                "input."
            )
        lower = np.asarray(values["bin_lower"])
        upper = np.asarray(values["bin_upper"])
        check_unit_range(lower, owner, "bin_lower", allow_nan=False)
        check_unit_range(upper, owner, "bin_upper", allow_nan=False)
        if (upper <= lower).any() or (lower[1:] < upper[:-1] - 1e-9).any():
            raise InputError(
                f"{owner}: bins must be increasing and must not overlap (bin_lower[i] < "
                f"bin_upper[i] <= bin_lower[i+1]); got lower={list(lower)[:5]}..., "
                f"upper={list(upper)[:5]}.... Sort the bins by confidence."
            )
        filled = counts > 0
        for field in ("mean_confidence", "accuracy"):
            array = np.asarray(values[field])
            check_unit_range(array[filled], owner, field, allow_nan=False)
            # Empty bins carry no value: store NaN so that drawing and equality agree.
            cleaned = np.where(filled, array, np.nan)
            object.__setattr__(self, field, tuple(cleaned.tolist()))
        object.__setattr__(self, "bin_lower", values["bin_lower"])
        object.__setattr__(self, "bin_upper", values["bin_upper"])
        object.__setattr__(self, "count", tuple(int(c) for c in counts_raw))
        object.__setattr__(self, "ece", check_fraction(self.ece, owner, "ece"))

    @property
    def n_samples(self) -> int:
        """Total number of inputs over all bins."""
        return sum(self.count)

    @classmethod
    def from_predictions(
        cls, confidence: ArrayLike, correct: ArrayLike, *, n_bins: int = 15
    ) -> ReliabilityBins:
        """Bin confidences into equal-width bins and measure accuracy in each.

        Bins are right-closed, ``(lower, upper]``, as in Guo et al. (2017), "On
        Calibration of Modern Neural Networks"; a confidence of exactly 0 falls in
        the first bin.

        Parameters
        ----------
        confidence : array-like of shape (n_samples,)
            Confidence of each prediction, in [0, 1].
        correct : array-like of shape (n_samples,)
            1 (or True) where the prediction was correct.
        n_bins : int, default=15
            Number of equal-width bins over [0, 1].

        Returns
        -------
        ReliabilityBins
        """
        if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
            raise InputError(
                f"ReliabilityBins.from_predictions: `n_bins` must be an int >= 1; got "
                f"{n_bins!r}. 10 or 15 are usual."
            )
        conf = check_confidence(confidence, "confidence")
        hits = check_binary_labels(correct, "correct")
        check_consistent_length(confidence=conf, correct=hits)
        edges = np.linspace(0.0, 1.0, int(n_bins) + 1)
        index = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, int(n_bins) - 1)
        count = np.bincount(index, minlength=int(n_bins))
        conf_sum = np.bincount(index, weights=conf, minlength=int(n_bins))
        hit_sum = np.bincount(index, weights=hits.astype(np.float64), minlength=int(n_bins))
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_conf = np.where(count > 0, conf_sum / count, np.nan)
            accuracy = np.where(count > 0, hit_sum / count, np.nan)
        gaps = np.abs(np.nan_to_num(accuracy) - np.nan_to_num(mean_conf))
        ece = float(np.sum(count / conf.size * gaps))
        return cls(
            mean_confidence=mean_conf.tolist(),
            accuracy=accuracy.tolist(),
            count=count.tolist(),
            bin_lower=edges[:-1].tolist(),
            bin_upper=edges[1:].tolist(),
            ece=min(max(ece, 0.0), 1.0),
        )
