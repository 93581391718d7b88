"""The dashboard: product metrics over time, the ladder's action mix, queue health and
calibration in production, as server-side SVG (readable without JavaScript).

The numbers come from :func:`failwise.outcomes.metric_series` (the definitions of
``measure``: the window's tiles are what ``GET /v1/metrics`` gives for the same window),
:meth:`failwise.store.Queue.health` and :func:`failwise.outcomes.labelled_reliability`;
the charts from :mod:`failwise.report`; the monitor's findings and estimates from
:mod:`failwise.service._dashboard_monitor`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from markupsafe import Markup

from failwise.outcomes import MetricSeries, labelled_reliability, metric_series
from failwise.report import (
    METRIC_NAMES,
    MetricValue,
    TimelineSeries,
    format_metric,
    metric_info,
    reliability_diagram,
    stacked_timeline_chart,
    timeline_chart,
)
from failwise.service._auth import Principal
from failwise.service._dashboard_monitor import monitor_estimates, monitor_findings
from failwise.service._pages_review import label_names, levels_of, page_principal
from failwise.service._render import page
from failwise.service._state import ServiceState, get_state
from failwise.store import QueueHealth

__all__ = ["WINDOWS", "dashboard_router"]

dashboard_router = APIRouter(include_in_schema=False)

#: The reliability diagram covers at most the last day of the window.
_RELIABILITY_S = 86_400.0

State = Annotated[ServiceState, Depends(get_state)]

#: The windows the dashboard offers: query value → (seconds, label).
WINDOWS: dict[str, tuple[float, str]] = {
    "6h": (6 * 3600.0, "last 6 hours"),
    "24h": (86_400.0, "last 24 hours"),
    "7d": (7 * 86_400.0, "last 7 days"),
    "30d": (30 * 86_400.0, "last 30 days"),
}


@dataclass(frozen=True)
class _Tile:
    name: str
    label: str
    help: str
    value: str
    interval: str
    raw: str
    note: str = ""


#: Why a metric has no value although the window has tasks (its interval may still bound it).
_NO_VALUE = {
    "time_to_correct_output_median_s": "no task reached a correct output yet",
    "time_to_correct_output_p90_s": "no task reached a correct output yet",
    "recovery_rate": "no first output was known to be wrong",
    "selective_accuracy": "no automatic answer",
}
#: Why a value is only bounded: the audits do not tell the error rate of unaudited answers.
_BOUNDS_ONLY = "bounds only: needs more audited answers"


def _no_value(name: str, estimate: Any, n_tasks: int) -> tuple[str, str]:
    """(interval, note) of a metric without a value: its bounds when it has them, and why."""
    if n_tasks == 0:
        return "", "no task in the window"
    if math.isnan(estimate.low) or math.isnan(estimate.high):
        return "", _NO_VALUE.get(name, "not defined for these tasks")
    info = metric_info(name)
    unit = info.unit if info is not None else ""
    low = format_metric(MetricValue(estimate.low, unit=unit))[0]
    high = format_metric(MetricValue(estimate.high, unit=unit))[0]
    return f"between {low} and {high}", _BOUNDS_ONLY


@dataclass(frozen=True)
class _Chart:
    svg: Markup
    caption: str


def _tiles(series: MetricSeries) -> list[_Tile]:
    out = []
    for name in METRIC_NAMES:
        estimate = getattr(series.total, name)
        info = metric_info(name)
        unit = info.unit if info is not None else ""
        low = None if math.isnan(estimate.low) else estimate.low
        high = None if math.isnan(estimate.high) else estimate.high
        value, interval = format_metric(MetricValue(estimate.value, low=low, high=high, unit=unit))
        note = ""
        if math.isnan(estimate.value):
            interval, note = _no_value(name, estimate, series.total.n_tasks)
        out.append(
            _Tile(
                name=name,
                label=info.label if info is not None else name,
                help=info.help if info is not None else "",
                value=value,
                interval=interval,
                raw="" if math.isnan(estimate.value) else repr(float(estimate.value)),
                note=note,
            )
        )
    return out


def _line(series: MetricSeries, name: str, label: str) -> TimelineSeries:
    values = series.metrics[name]
    return TimelineSeries(
        label,
        [e.value for e in values],
        low=[e.low for e in values],
        high=[e.high for e in values],
    )


def _charts(series: MetricSeries) -> list[_Chart]:
    starts, width = series.starts, series.bucket_s
    return [
        _Chart(
            timeline_chart(
                starts,
                width,
                [
                    _line(series, "task_completion_rate", "Task completion"),
                    _line(series, "automation_rate", "Automation"),
                ],
                title="Task completion and automation",
                uid="completion",
            ),
            "Share of tasks completed with a correct output within the deadline, and share "
            "answered automatically; bands are the confidence intervals.",
        ),
        _Chart(
            timeline_chart(
                starts,
                width,
                [
                    _line(series, "escalation_rate", "Escalation"),
                    _line(series, "silent_failure_rate", "Silent failures"),
                    _line(series, "recovery_rate", "Recovery"),
                ],
                title="Escalation, silent failures and recovery",
                uid="failures",
            ),
            "Silent failures are estimated from the audit sample of automatic answers.",
        ),
        _Chart(
            timeline_chart(
                starts,
                width,
                [
                    _line(series, "time_to_correct_output_median_s", "Median"),
                    _line(series, "time_to_correct_output_p90_s", "p90"),
                ],
                title="Time to correct output",
                uid="latency",
                unit="s",
            ),
            "From the request to the first correct output, over completed tasks.",
        ),
        _Chart(
            stacked_timeline_chart(
                starts, width, series.actions, title="The ladder's action mix", uid="actions"
            ),
            "Tasks per bucket by the action the ladder took.",
        ),
    ]


def _queue_charts(health: QueueHealth) -> list[_Chart]:
    starts, width = health.starts, health.bucket_s
    return [
        _Chart(
            timeline_chart(
                starts,
                width,
                [
                    TimelineSeries("Open items", [float(v) for v in health.depth]),
                    TimelineSeries("Past due", [float(v) for v in health.breaches]),
                ],
                title="Queue depth and breaches",
                uid="depth",
                unit="",
                y_title="Items",
            ),
            "Items open at the end of each bucket, and items whose due time passed in it "
            "unresolved.",
        ),
        _Chart(
            timeline_chart(
                starts,
                width,
                [
                    TimelineSeries("Resolved per hour", health.resolved_per_hour),
                    TimelineSeries("Queued per hour", [n * 3600.0 / width for n in health.created]),
                    TimelineSeries("Reviewers (people)", [float(v) for v in health.reviewers]),
                ],
                title="Reviewer throughput",
                uid="throughput",
                unit="",
                y_title="Items per hour",
            ),
            "Items resolved and queued per hour, and the reviewers who resolved any.",
        ),
    ]


def _queue_active(health: QueueHealth) -> bool:
    """Whether any item was open, queued or resolved in the window (else its charts are flat)."""
    return bool(
        health.waiting
        or health.claimed
        or any(health.depth)
        or any(health.created)
        or any(health.resolved)
    )


def _render(request: Request, state: ServiceState, principal: Principal) -> Response:
    now = time.time()
    window = request.query_params.get("window", "24h")
    if window not in WINDOWS:
        window = "24h"
    bucket = request.query_params.get("bucket", "hour")
    if bucket not in ("hour", "day"):
        bucket = "hour"
    span = WINDOWS[window][0]
    since, until = now - span, now
    series = metric_series(state.store, since, until, bucket=bucket)
    health = state.store.queue.health(
        series.starts[0], until, series.bucket_s, levels=levels_of(state), at=now
    )
    # Calibration is a now-question, and labels are read one task at a time: the last day.
    bins = labelled_reliability(state.store, max(since, until - _RELIABILITY_S), until)
    reliability = (
        None if bins is None else reliability_diagram(bins, title="Labelled tasks", uid="rel")
    )
    found = monitor_findings(state.store, since, until)
    context: dict[str, Any] = {
        "series": series,
        "tiles": _tiles(series),
        "charts": _charts(series),
        "health": health,
        "queue_charts": _queue_charts(health),
        "queue_active": _queue_active(health),
        "reliability": reliability,
        "n_labelled": 0 if bins is None else int(sum(bins.count)),
        "findings": found,
        "estimates": monitor_estimates(state.store, since, until),
        "windows": [(key, text) for key, (_, text) in WINDOWS.items()],
        "window": window,
        "bucket": bucket,
    }
    return page(
        request,
        "dashboard.html.j2",
        principal=principal,
        title="Dashboard",
        label_names=label_names(state),
        now=now,
        **context,
    )


@dashboard_router.get("/dashboard")
async def dashboard(request: Request, state: State) -> Response:
    """Product metrics per hour or day, the action mix, queue health and calibration."""
    principal = await page_principal(request, "viewer", "reviewer", "service")
    if isinstance(principal, Response):
        return principal
    return await run_in_threadpool(_render, request, state, principal)
