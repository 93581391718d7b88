"""The metrics the report knows by name: label, direction, definition and unit.

Also the ladder's actions in display order and the units a value may carry.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ACTIONS", "METRIC_NAMES", "UNITS", "canonical_metric_name", "metric_info"]

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
