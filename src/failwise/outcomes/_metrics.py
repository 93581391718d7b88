"""`ProductMetrics`: what users experienced, with confidence intervals.

The same definitions serve the offline projection (:func:`project`) and, later, measurement
from the event log.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

__all__ = ["METRIC_DESCRIPTIONS", "Estimate", "ProductMetrics"]


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a confidence interval (``low``/``high`` may be NaN if unknown)."""

    value: float
    low: float
    high: float

    def to_dict(self) -> dict[str, float | None]:
        """JSON-friendly: NaN becomes None."""
        return {
            k: (None if math.isnan(v) else v)
            for k, v in (("value", self.value), ("low", self.low), ("high", self.high))
        }

    def __format__(self, spec: str) -> str:
        if math.isnan(self.value):
            return "n/a"
        if not spec:
            spec = ".3g"
        return format(self.value, spec)


#: One line per metric: its definition, as printed in reports.
METRIC_DESCRIPTIONS: dict[str, str] = {
    "task_completion_rate": (
        "tasks that ended with a correct output within the deadline / all tasks"
    ),
    "time_to_correct_output_median_s": (
        "median time from request to correct output (completed tasks)"
    ),
    "time_to_correct_output_p90_s": "90th percentile of that time",
    "escalation_rate": "tasks escalated to a human by the ladder or by the user / all tasks",
    "recovery_rate": "tasks whose first output was wrong and later became correct / tasks whose "
    "first output was wrong",
    "silent_failure_rate": "wrong automatic outputs never corrected / all tasks",
    "automation_rate": "tasks given an automatic output (answer or fallback) / all tasks",
    "selective_accuracy": "correct automatic outputs / automatic outputs",
    "human_hours_per_1000_tasks": "reviewer working hours per 1,000 tasks",
}


@dataclass(frozen=True)
class ProductMetrics:
    """Product metrics of a decision policy, each with a confidence interval.

    Attributes
    ----------
    task_completion_rate, escalation_rate, recovery_rate, silent_failure_rate, automation_rate,
    selective_accuracy : Estimate
        Rates in [0, 1]; see :data:`METRIC_DESCRIPTIONS` for the definitions.
    time_to_correct_output_median_s, time_to_correct_output_p90_s : Estimate
        Seconds.
    human_hours_per_1000_tasks : Estimate
    n_tasks : int
        Number of tasks the metrics are computed from.
    interval_level : float
        Level of the confidence intervals (e.g. 0.95).
    source : str
        "projected" (offline, from an outcome model) or "measured" (from the event log).
    """

    task_completion_rate: Estimate
    time_to_correct_output_median_s: Estimate
    time_to_correct_output_p90_s: Estimate
    escalation_rate: Estimate
    recovery_rate: Estimate
    silent_failure_rate: Estimate
    automation_rate: Estimate
    selective_accuracy: Estimate
    human_hours_per_1000_tasks: Estimate
    n_tasks: int
    interval_level: float
    source: str = "projected"

    @classmethod
    def metric_names(cls) -> list[str]:
        """Names of the fields that hold an :class:`Estimate`."""
        return [f.name for f in fields(cls) if f.type in ("Estimate", Estimate)]

    def to_dict(self) -> dict[str, Any]:
        """Flat JSON-friendly dictionary: ``name`` → value and ``name_ci`` → [low, high]."""
        out: dict[str, Any] = {}
        for name in self.metric_names():
            est: Estimate = getattr(self, name)
            d = est.to_dict()
            out[name] = d["value"]
            out[f"{name}_ci"] = [d["low"], d["high"]]
        out["n_tasks"] = self.n_tasks
        out["interval_level"] = self.interval_level
        out["source"] = self.source
        return out
