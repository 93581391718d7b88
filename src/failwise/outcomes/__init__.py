"""Product metrics: projected offline from an outcome model, and measured online from events."""

from __future__ import annotations

from failwise.outcomes._behaviour import Behaviour, draw_behaviour
from failwise.outcomes._compare import Comparison, ComparisonRow, compare
from failwise.outcomes._measure import measure
from failwise.outcomes._metrics import METRIC_DESCRIPTIONS, Estimate, ProductMetrics
from failwise.outcomes._model import Assumption, OutcomeModel
from failwise.outcomes._projection import TaskPaths, project, task_paths

__all__ = [
    "METRIC_DESCRIPTIONS",
    "Assumption",
    "Behaviour",
    "Comparison",
    "ComparisonRow",
    "Estimate",
    "OutcomeModel",
    "ProductMetrics",
    "TaskPaths",
    "compare",
    "draw_behaviour",
    "measure",
    "project",
    "task_paths",
]
