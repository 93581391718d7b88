"""Product metrics: projected offline from an outcome model, and measured online from events."""

from __future__ import annotations

from failwise.outcomes._behaviour import Behaviour, draw_behaviour
from failwise.outcomes._compare import Comparison, ComparisonRow, compare
from failwise.outcomes._measure import measure
from failwise.outcomes._metrics import METRIC_DESCRIPTIONS, Estimate, ProductMetrics
from failwise.outcomes._model import Assumption, OutcomeModel
from failwise.outcomes._projection import TaskPaths, project, task_paths
from failwise.outcomes._reliability import labelled_reliability
from failwise.outcomes._series import BUCKETS, MetricSeries, metric_series

__all__ = [
    "BUCKETS",
    "METRIC_DESCRIPTIONS",
    "Assumption",
    "Behaviour",
    "Comparison",
    "ComparisonRow",
    "Estimate",
    "MetricSeries",
    "OutcomeModel",
    "ProductMetrics",
    "TaskPaths",
    "compare",
    "draw_behaviour",
    "labelled_reliability",
    "measure",
    "metric_series",
    "project",
    "task_paths",
]
