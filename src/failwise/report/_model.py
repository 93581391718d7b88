"""Plain-data inputs of the HTML report.

Every type here is a frozen dataclass of numbers and strings, so a command line,
a notebook or a service can build one without importing any estimator. Each
validates itself on construction and raises :class:`~failwise.exceptions.InputError`
naming the field, what arrived and how to fix it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
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

__all__ = [
    "ACTIONS",
    "METRIC_NAMES",
    "Assumption",
    "MetricValue",
    "ModelSection",
    "ReliabilityBins",
]

#: The rungs of the decision ladder, in order.
ACTIONS: tuple[str, ...] = ("answer", "clarify", "fallback", "escalate", "abstain")

#: Units a :class:`MetricValue` may carry: a fraction shown as a percentage,
#: seconds, hours, or a plain number.
UNITS: tuple[str, ...] = ("%", "s", "h", "")


@dataclass(frozen=True)
class _MetricInfo:
    label: str
    higher_is_better: bool
    help: str
    unit: str = "%"


#: Metrics the report knows by name, in display order: label, direction, definition.
_KNOWN_METRICS: dict[str, _MetricInfo] = {
    "task_completion_rate": _MetricInfo(
        "Task completion",
        True,
        "Tasks that ended with a correct output delivered within the deadline / all tasks.",
    ),
    "time_to_correct_output_median_s": _MetricInfo(
        "Time to correct, median",
        False,
        "Median time from request to a correct output, over completed tasks.",
        "s",
    ),
    "time_to_correct_output_p90_s": _MetricInfo(
        "Time to correct, p90",
        False,
        "90th percentile of the time from request to a correct output, over completed tasks.",
        "s",
    ),
    "escalation_rate": _MetricInfo(
        "Escalation rate",
        False,
        "Tasks escalated to a human (by the ladder or by the user after a wrong answer) / all "
        "tasks.",
    ),
    "recovery_rate": _MetricInfo(
        "Recovery rate",
        True,
        "Tasks whose first output was incorrect and that later reached a correct output / tasks "
        "whose first output was incorrect.",
    ),
    "silent_failure_rate": _MetricInfo(
        "Silent failures",
        False,
        "Incorrect automatic answers that were never corrected / all tasks.",
    ),
    "automation_rate": _MetricInfo(
        "Automation rate",
        True,
        "Tasks given an automatic output (an answer or a fallback) / all tasks.",
    ),
    "selective_accuracy": _MetricInfo(
        "Selective accuracy",
        True,
        "Accuracy among the automatic answers.",
    ),
    "human_hours_per_1000_tasks": _MetricInfo(
        "Human hours / 1,000 tasks",
        False,
        "Reviewer time spent on escalations and audits per 1,000 tasks.",
        "h",
    ),
}

#: Metric names the report recognises, in the order it shows them. Other names are
#: shown after these, as given, with no "best" marking.
METRIC_NAMES: tuple[str, ...] = tuple(_KNOWN_METRICS)

_ALIASES: dict[str, str] = {
    **{name: name for name in _KNOWN_METRICS},
    **{info.label.lower(): name for name, info in _KNOWN_METRICS.items()},
    "time_to_correct_median": "time_to_correct_output_median_s",
    "time_to_correct_p90": "time_to_correct_output_p90_s",
    "human_hours_per_1000": "human_hours_per_1000_tasks",
    "task completion rate": "task_completion_rate",
    "silent-failure rate": "silent_failure_rate",
    "silent failure rate": "silent_failure_rate",
    "human hours per 1,000 tasks": "human_hours_per_1000_tasks",
}


def canonical_metric_name(name: str) -> str:
    """Map a display label such as ``"Escalation rate"`` to its key; unknown names pass."""
    return _ALIASES.get(name.strip().lower(), name)


def metric_info(name: str) -> _MetricInfo | None:
    """Label, direction and definition of a known metric key, else ``None``."""
    return _KNOWN_METRICS.get(name)


# ---------------------------------------------------------------------------------------------
# Field checks
# ---------------------------------------------------------------------------------------------


def _float_tuple(value: Any, owner: str, field: str) -> tuple[float, ...]:
    if isinstance(value, (str, bytes)) or value is None:
        raise InputError(
            f"{owner}: `{field}` must be a sequence of numbers; got {describe(value)}. "
            "Pass a list or a 1-D NumPy array."
        )
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(
            f"{owner}: `{field}` must be a sequence of numbers; got {describe(value)}. "
            "Pass a list or a 1-D NumPy array of floats."
        ) from None
    if array.ndim != 1:
        raise InputError(
            f"{owner}: `{field}` must be 1-D; got shape {array.shape}. Pass one value per bin "
            "or per point."
        )
    if array.size == 0:
        raise InputError(f"{owner}: `{field}` is empty; at least one value is needed.")
    return tuple(array.tolist())


def _check_unit_range(
    values: NDArray[np.float64], owner: str, field: str, *, allow_nan: bool
) -> None:
    bad_nan = np.isnan(values)
    if bad_nan.any() and not allow_nan:
        raise InputError(
            f"{owner}: `{field}` contains NaN at position {int(np.flatnonzero(bad_nan)[0])}; "
            "a value in [0, 1] is needed there."
        )
    finite = values[~bad_nan]
    if finite.size and (not np.isfinite(finite).all() or finite.min() < 0 or finite.max() > 1):
        raise InputError(
            f"{owner}: `{field}` must lie in [0, 1]; got values from {float(finite.min()):.4g} "
            f"to {float(finite.max()):.4g}. Pass fractions (0.873), not percentages (87.3)."
        )


def _check_fraction(value: Any, owner: str, field: str, *, allow_nan: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputError(f"{owner}: `{field}` must be a number in [0, 1]; got {describe(value)}.")
    number = float(value)
    if math.isnan(number) and allow_nan:
        return number
    if not 0.0 <= number <= 1.0:
        raise InputError(
            f"{owner}: `{field}` must be a number in [0, 1]; got {number!r}. Pass fractions "
            "(0.873), not percentages (87.3)."
        )
    return number


def _check_text(value: Any, owner: str, field: str, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise InputError(f"{owner}: `{field}` must be a string; got {describe(value)}.")
    if not allow_empty and not value.strip():
        raise InputError(f"{owner}: `{field}` is empty; give it a short, readable text.")
    return value


def _canonical(value: Any) -> Any:
    """A hashable stand-in for a field value in which every NaN reads as None."""
    if isinstance(value, _PlainData):
        return value._key()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (tuple, list)):
        return tuple(_canonical(v) for v in value)
    if isinstance(value, Mapping):
        return tuple((k, _canonical(v)) for k, v in value.items())
    return value


class _PlainData:
    """Value semantics for frozen dataclasses whose fields may hold NaN.

    ``float("nan") != float("nan")``, so the generated ``__eq__`` would call a
    copy of a diagram with an empty bin different from the original; here two
    instances are equal when their fields are, NaN matching NaN.
    """

    __slots__ = ()

    def _key(self) -> tuple[Any, ...]:
        values = (getattr(self, f.name) for f in fields(self))  # type: ignore[arg-type]
        return (type(self).__name__, *(_canonical(v) for v in values))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _PlainData) or type(other) is not type(self):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


# ---------------------------------------------------------------------------------------------
# Types
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class MetricValue(_PlainData):
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
class Assumption(_PlainData):
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
        _check_text(self.name, "Assumption", "name")
        _check_text(self.value, "Assumption", "value")
        _check_text(self.reason, "Assumption", "reason", allow_empty=True)


@dataclass(frozen=True, eq=False)
class ReliabilityBins(_PlainData):
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
        values = {f: _float_tuple(getattr(self, f), owner, f) for f in names}
        counts_raw = _float_tuple(self.count, owner, "count")
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
        _check_unit_range(lower, owner, "bin_lower", allow_nan=False)
        _check_unit_range(upper, owner, "bin_upper", allow_nan=False)
        if (upper <= lower).any() or (lower[1:] < upper[:-1] - 1e-9).any():
            raise InputError(
                f"{owner}: bins must be increasing and must not overlap (bin_lower[i] < "
                f"bin_upper[i] <= bin_lower[i+1]); got lower={list(lower)[:5]}..., "
                f"upper={list(upper)[:5]}.... Sort the bins by confidence."
            )
        filled = counts > 0
        for field in ("mean_confidence", "accuracy"):
            array = np.asarray(values[field])
            _check_unit_range(array[filled], owner, field, allow_nan=False)
            # Empty bins carry no value: store NaN so that drawing and equality agree.
            cleaned = np.where(filled, array, np.nan)
            object.__setattr__(self, field, tuple(cleaned.tolist()))
        object.__setattr__(self, "bin_lower", values["bin_lower"])
        object.__setattr__(self, "bin_upper", values["bin_upper"])
        object.__setattr__(self, "count", tuple(int(c) for c in counts_raw))
        object.__setattr__(self, "ece", _check_fraction(self.ece, owner, "ece"))

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


@dataclass(frozen=True, eq=False)
class ModelSection(_PlainData):
    """Everything the report shows about one model.

    Parameters
    ----------
    name : str
        The model's name as readers know it.
    accuracy : float
        Top-1 accuracy on the evaluation set, a fraction.
    before, after : ReliabilityBins
        Reliability of the confidence before and after calibration.
    coverage, risk : sequence or array of float, shape (n_points,)
        The risk–coverage curve (Geifman & El-Yaniv, 2017): share of inputs
        answered automatically and error rate among them. Any length; the chart
        draws at most about 400 points. ``NaN`` risk (nothing answered) is skipped.
    operating_coverage, operating_risk : float
        The operating point the ladder chose. ``operating_risk`` is ``NaN`` when
        the ladder answers nothing automatically.
    target_risk : float or None
        The risk the thresholds were fitted to, drawn as a dashed line.
    outcome_counts : mapping of str to (int, int)
        Per ladder action (``"answer"``, ``"clarify"``, ``"fallback"``,
        ``"escalate"``, ``"abstain"``): inputs that ended correctly and
        incorrectly. Missing actions count as zero.
    metrics : mapping of str to MetricValue
        Product metrics by name. Names from :data:`METRIC_NAMES` (or their
        labels, e.g. ``"Task completion"``) are shown in a fixed order; others
        follow as given. ``"task_completion_rate"`` is required: models are
        ranked by it.
    policy_summary : str, default=""
        One line: the thresholds chosen and why.
    """

    name: str
    accuracy: float
    before: ReliabilityBins
    after: ReliabilityBins
    coverage: Sequence[float] | NDArray[Any]
    risk: Sequence[float] | NDArray[Any]
    operating_coverage: float
    operating_risk: float
    target_risk: float | None
    outcome_counts: Mapping[str, tuple[int, int]]
    metrics: Mapping[str, MetricValue]
    policy_summary: str = ""

    def __post_init__(self) -> None:
        owner = f"ModelSection {self.name!r}" if isinstance(self.name, str) else "ModelSection"
        _check_text(self.name, owner, "name")
        _check_text(self.policy_summary, owner, "policy_summary", allow_empty=True)
        object.__setattr__(self, "accuracy", _check_fraction(self.accuracy, owner, "accuracy"))
        for field in ("before", "after"):
            if not isinstance(getattr(self, field), ReliabilityBins):
                raise InputError(
                    f"{owner}: `{field}` must be a ReliabilityBins; got "
                    f"{describe(getattr(self, field))}. Build one with "
                    "`ReliabilityBins.from_predictions(confidence, correct)`."
                )
        coverage = _float_tuple(self.coverage, owner, "coverage")
        risk = _float_tuple(self.risk, owner, "risk")
        if len(coverage) != len(risk):
            raise InputError(
                f"{owner}: `coverage` has {len(coverage)} points but `risk` has {len(risk)}; "
                "pass one risk per coverage value."
            )
        _check_unit_range(np.asarray(coverage), owner, "coverage", allow_nan=False)
        _check_unit_range(np.asarray(risk), owner, "risk", allow_nan=True)
        if all(math.isnan(r) for r in risk):
            raise InputError(f"{owner}: `risk` is NaN everywhere; the curve has no point to draw.")
        object.__setattr__(self, "coverage", coverage)
        object.__setattr__(self, "risk", risk)
        object.__setattr__(
            self,
            "operating_coverage",
            _check_fraction(self.operating_coverage, owner, "operating_coverage"),
        )
        object.__setattr__(
            self,
            "operating_risk",
            _check_fraction(self.operating_risk, owner, "operating_risk", allow_nan=True),
        )
        if self.target_risk is not None:
            target = _check_fraction(self.target_risk, owner, "target_risk")
            object.__setattr__(self, "target_risk", target)
        object.__setattr__(self, "outcome_counts", self._checked_counts(owner))
        object.__setattr__(self, "metrics", self._checked_metrics(owner))

    def _checked_counts(self, owner: str) -> dict[str, tuple[int, int]]:
        if not isinstance(self.outcome_counts, Mapping):
            raise InputError(
                f"{owner}: `outcome_counts` must map an action to (n correct, n incorrect); got "
                f"{describe(self.outcome_counts)}."
            )
        unknown = [a for a in self.outcome_counts if a not in ACTIONS]
        if unknown:
            raise InputError(
                f"{owner}: `outcome_counts` has unknown action(s) {unknown!r}; the ladder's "
                f"actions are {', '.join(ACTIONS)}."
            )
        counts: dict[str, tuple[int, int]] = {}
        for action in ACTIONS:
            pair = self.outcome_counts.get(action, (0, 0))
            ok = (
                isinstance(pair, (tuple, list))
                and len(pair) == 2
                and all(
                    isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 0
                    for n in pair
                )
            )
            if not ok:
                raise InputError(
                    f"{owner}: `outcome_counts[{action!r}]` must be a pair of non-negative ints "
                    f"(n correct, n incorrect); got {pair!r}."
                )
            counts[action] = (int(pair[0]), int(pair[1]))
        if sum(c + i for c, i in counts.values()) == 0:
            raise InputError(
                f"{owner}: `outcome_counts` is all zeros; the breakdown needs at least one input."
            )
        return counts

    def _checked_metrics(self, owner: str) -> dict[str, MetricValue]:
        if not isinstance(self.metrics, Mapping):
            raise InputError(
                f"{owner}: `metrics` must map a metric name to a MetricValue; got "
                f"{describe(self.metrics)}."
            )
        metrics: dict[str, MetricValue] = {}
        for raw_name, value in self.metrics.items():
            if not isinstance(raw_name, str) or not raw_name.strip():
                raise InputError(
                    f"{owner}: metric names must be non-empty strings; got {raw_name!r}."
                )
            if not isinstance(value, MetricValue):
                raise InputError(
                    f"{owner}: metric {raw_name!r} must be a MetricValue; got {describe(value)}. "
                    "Wrap it, e.g. `MetricValue(0.87, low=0.85, high=0.89)`."
                )
            name = canonical_metric_name(raw_name)
            if name in metrics:
                raise InputError(
                    f"{owner}: metric {raw_name!r} is given twice (as {name!r}); keep one."
                )
            info = _KNOWN_METRICS.get(name)
            if info is not None and value.unit != info.unit:
                raise InputError(
                    f"{owner}: metric {raw_name!r} must have unit {info.unit!r}; got "
                    f"{value.unit!r}. Pass `MetricValue(..., unit={info.unit!r})`."
                )
            metrics[name] = value
        if "task_completion_rate" not in metrics:
            raise InputError(
                f"{owner}: `metrics` lacks 'task_completion_rate'; the report ranks models by "
                f"it. Got {sorted(metrics)!r}. Add "
                "`'task_completion_rate': MetricValue(value, low, high)`."
            )
        return metrics
