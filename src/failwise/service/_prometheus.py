"""Prometheus metrics of the service, safe with several worker processes.

With ``PROMETHEUS_MULTIPROC_DIR`` set (``failwise serve --workers N`` sets it to a fresh
folder when it is not set), every worker writes its samples there and ``/metrics``
aggregates all workers; otherwise the process's own registry is served.

Metrics: ``failwise_http_requests_total`` (method, route template, status),
``failwise_http_request_duration_seconds`` (method, route template) and
``failwise_decisions_total`` (action).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CONTENT_TYPE_LATEST", "PrometheusMiddleware", "count_decisions", "exposition"]

REQUESTS = Counter(
    "failwise_http_requests",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
DURATION = Histogram(
    "failwise_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route template.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
DECISIONS = Counter("failwise_decisions", "Decisions recorded, by action.", ["action"])

# The labelled series of each (method, route template, status), and of each action, looked
# up once: `labels` checks and locks on every call. Route templates, statuses and actions are
# few, so these stay small.
_SERIES: dict[tuple[str, str, int], tuple[Any, Any]] = {}
_DECISION_SERIES: dict[str, Any] = {}


def count_decisions(actions: Iterable[str]) -> None:
    """Count recorded decisions by action."""
    counts: dict[str, int] = {}
    for action in actions:
        counts[action] = counts.get(action, 0) + 1
    for action, n in counts.items():
        series = _DECISION_SERIES.get(action)
        if series is None:
            series = _DECISION_SERIES.setdefault(action, DECISIONS.labels(action))
        series.inc(n)


def exposition() -> bytes:
    """The text exposition of every worker's metrics (or this process's)."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=folder)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest()


class PrometheusMiddleware:
    """Count and time every HTTP request by its route template (not its raw path)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route: Any = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            key = (str(scope.get("method", "")), template, status[0])
            series = _SERIES.get(key)
            if series is None:
                series = _SERIES.setdefault(
                    key,
                    (REQUESTS.labels(key[0], template, str(key[2])), DURATION.labels(*key[:2])),
                )
            series[0].inc()
            series[1].observe(time.perf_counter() - start)
