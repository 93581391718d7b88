"""`ModelSection`: everything the report shows about one model, validated on construction."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from failwise._validation import describe
from failwise.exceptions import InputError
from failwise.report._catalogue import _KNOWN_METRICS, ACTIONS, canonical_metric_name
from failwise.report._checks import (
    PlainData,
    check_fraction,
    check_text,
    check_unit_range,
    float_tuple,
)
from failwise.report._model import MetricValue, ReliabilityBins

__all__ = ["ModelSection"]


@dataclass(frozen=True, eq=False)
class ModelSection(PlainData):
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
    headline : str, default=""
        One sentence on what the ladder automates (e.g. "... answers nothing automatically:
        98.0% of requests go to clarification"); empty: the report words it from
        ``operating_coverage`` and ``outcome_counts``.
    operating_risk_in_scope : float, default=NaN
        Error rate among automatic answers on in-scope inputs only, shown beside
        ``operating_risk`` when out-of-scope inputs were answered.
    notes : sequence of str, default=()
        Sentences shown under the model's operating point (a target exceeded on test rows
        and why, an out-of-scope rule that could not be met).
    frontier : sequence of (float, float, float, int or None), default=()
        What the validation data certifies at other targets: (target risk, confidence
        level, certified coverage, labelled rows still needed or None), drawn as a table.
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
    headline: str = ""
    operating_risk_in_scope: float = math.nan
    notes: Sequence[str] = ()
    frontier: Sequence[tuple[float, float, float, int | None]] = ()

    def __post_init__(self) -> None:
        owner = f"ModelSection {self.name!r}" if isinstance(self.name, str) else "ModelSection"
        check_text(self.name, owner, "name")
        check_text(self.policy_summary, owner, "policy_summary", allow_empty=True)
        object.__setattr__(self, "accuracy", check_fraction(self.accuracy, owner, "accuracy"))
        for field in ("before", "after"):
            if not isinstance(getattr(self, field), ReliabilityBins):
                raise InputError(
                    f"{owner}: `{field}` must be a ReliabilityBins; got "
                    f"{describe(getattr(self, field))}. Build one with "
                    "`ReliabilityBins.from_predictions(confidence, correct)`."
                )
        coverage = float_tuple(self.coverage, owner, "coverage")
        risk = float_tuple(self.risk, owner, "risk")
        if len(coverage) != len(risk):
            raise InputError(
                f"{owner}: `coverage` has {len(coverage)} points but `risk` has {len(risk)}; "
                "pass one risk per coverage value."
            )
        check_unit_range(np.asarray(coverage), owner, "coverage", allow_nan=False)
        check_unit_range(np.asarray(risk), owner, "risk", allow_nan=True)
        if all(math.isnan(r) for r in risk):
            raise InputError(f"{owner}: `risk` is NaN everywhere; the curve has no point to draw.")
        object.__setattr__(self, "coverage", coverage)
        object.__setattr__(self, "risk", risk)
        object.__setattr__(
            self,
            "operating_coverage",
            check_fraction(self.operating_coverage, owner, "operating_coverage"),
        )
        object.__setattr__(
            self,
            "operating_risk",
            check_fraction(self.operating_risk, owner, "operating_risk", allow_nan=True),
        )
        if self.target_risk is not None:
            target = check_fraction(self.target_risk, owner, "target_risk")
            object.__setattr__(self, "target_risk", target)
        object.__setattr__(self, "outcome_counts", self._checked_counts(owner))
        object.__setattr__(self, "metrics", self._checked_metrics(owner))
        check_text(self.headline, owner, "headline", allow_empty=True)
        object.__setattr__(
            self,
            "operating_risk_in_scope",
            check_fraction(
                self.operating_risk_in_scope, owner, "operating_risk_in_scope", allow_nan=True
            ),
        )
        if isinstance(self.notes, str) or not isinstance(self.notes, Sequence):
            raise InputError(
                f"{owner}: `notes` must be a sequence of strings; got {describe(self.notes)}."
            )
        object.__setattr__(
            self, "notes", tuple(check_text(n, owner, "notes[]") for n in self.notes)
        )
        object.__setattr__(self, "frontier", self._checked_frontier(owner))

    def _checked_frontier(self, owner: str) -> tuple[tuple[float, float, float, int | None], ...]:
        if isinstance(self.frontier, str) or not isinstance(self.frontier, Sequence):
            raise InputError(
                f"{owner}: `frontier` must be a sequence of (target risk, confidence level, "
                f"coverage, rows needed) tuples; got {describe(self.frontier)}."
            )
        rows = []
        for i, row in enumerate(self.frontier):
            if not isinstance(row, (tuple, list)) or len(row) != 4:
                raise InputError(
                    f"{owner}: `frontier[{i}]` must be (target risk, confidence level, "
                    f"coverage, rows needed); got {row!r}."
                )
            target = check_fraction(row[0], owner, f"frontier[{i}] target risk")
            level = check_fraction(row[1], owner, f"frontier[{i}] confidence level")
            coverage = check_fraction(row[2], owner, f"frontier[{i}] coverage")
            needed = row[3]
            if needed is not None and (
                isinstance(needed, bool) or not isinstance(needed, (int, np.integer)) or needed < 0
            ):
                raise InputError(
                    f"{owner}: `frontier[{i}]` rows needed must be a non-negative int or None; "
                    f"got {needed!r}."
                )
            rows.append((target, level, coverage, None if needed is None else int(needed)))
        return tuple(rows)

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
