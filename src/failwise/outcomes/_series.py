"""`metric_series`: the measured product metrics per hour or day, for a dashboard.

The same definitions as :func:`~failwise.outcomes.measure` (the SQL of
:mod:`failwise.outcomes._metric_sql`, the intervals of :mod:`failwise.outcomes._intervals`),
grouped by the time bucket of each task's decision. Over a store with buckets of whole
hours, the settled hours come from the store's stored rollups (see
:mod:`failwise.outcomes._hours`) and only the rest is computed from the log; otherwise one
query computes, inside the database, the sums of every bucket and the
time-to-correct-output order statistics of every bucket and of the whole window. The sums
add up, so the window's totals are computed from the buckets' sums and equal what
``measure`` gives over the same window.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from numbers import Real
from typing import Any

import numpy as np

from failwise._validation import describe
from failwise.exceptions import InputError
from failwise.outcomes._hours import ACTIONS, Hour, hours_of_store, merge
from failwise.outcomes._intervals import quantile_ranks, z_of
from failwise.outcomes._measure import _bounds, _Counts, _counts, _metrics
from failwise.outcomes._metric_sql import SUMS_COLUMNS, runner
from failwise.outcomes._metrics import Estimate, ProductMetrics
from failwise.outcomes._model import OutcomeModel

__all__ = ["BUCKETS", "MetricSeries", "metric_series"]

#: Named bucket widths, in seconds.
BUCKETS: dict[str, float] = {"hour": 3600.0, "day": 86400.0}

#: Most buckets one series may have.
MAX_BUCKETS = 10_000


def _near(position: str, n: str) -> str:
    """``position`` within the ranks the median and p90 of ``n`` times (and their intervals)
    may need, with a margin: the exact ranks are picked in Python by :func:`quantile_ranks`.
    """
    terms = []
    for q in (0.5, 0.9):
        spread = f"z * SQRT({n} * {q * (1 - q)!r})"
        terms.append(
            f"({position} >= FLOOR({n} * {q} - {spread}) - 2 "
            f"AND {position} <= CEIL({n} * {q} + {spread}) + 1)"
        )
    return "(" + " OR ".join(terms) + ")"


_SUM_NAMES = 17 + len(ACTIONS)

#: One pass over the metric view (the expensive part, materialised once because both
#: halves read it): the sums and action counts of every bucket, then the times to correct
#: output near the ranks the quantiles need, ranked within their bucket and over the
#: window. It continues the ``WITH`` list of the metric view. Parameters: the view's since,
#: until and deadline_s, then the first bucket's start, the width and the normal quantile
#: of the interval level.
SERIES_SELECT = (
    ", b AS (SELECT tasks_view.*, FLOOR((created_at - ?) / ?) AS bucket, "
    "CAST(? AS DOUBLE PRECISION) AS z FROM tasks_view), "
    "ranked AS (SELECT bucket, completed_s, z, "
    "ROW_NUMBER() OVER (PARTITION BY bucket ORDER BY completed_s) - 1 AS position, "
    "COUNT(*) OVER (PARTITION BY bucket) AS n, "
    "ROW_NUMBER() OVER (ORDER BY completed_s) - 1 AS overall, "
    "COUNT(*) OVER () AS n_all FROM b WHERE completed_s IS NOT NULL) "
    f"SELECT 0 AS part, bucket, {SUMS_COLUMNS}, "
    + ", ".join(f"SUM(CASE WHEN action = '{a}' THEN 1 ELSE 0 END) AS n_{a}" for a in ACTIONS)
    + ", NULL AS position, NULL AS overall, NULL AS seconds FROM b GROUP BY bucket "
    "UNION ALL SELECT 1, bucket, "
    + ", ".join(["NULL"] * _SUM_NAMES)
    + ", position, overall, completed_s FROM ranked "
    f"WHERE {_near('position', 'n')} OR {_near('overall', 'n_all')}"
)


@dataclass(frozen=True)
class MetricSeries:
    """Measured product metrics per time bucket, and over the whole window.

    Attributes
    ----------
    starts : list of float
        Start of every bucket (Unix seconds, aligned to whole hours or days in UTC),
        empty buckets included; the first may begin before ``since``.
    bucket_s : float
        Width of a bucket in seconds.
    since, until : float
        The window: tasks decided at ``since <= t < until``.
    metrics : dict of str to list of Estimate
        For each metric of :class:`ProductMetrics`, one estimate per bucket (NaN for an
        empty bucket).
    n_tasks : list of int
        Tasks decided in each bucket.
    actions : dict of str to list of int
        For each action of the ladder, the tasks it decided in each bucket.
    total : ProductMetrics
        The metrics over the whole window: what :func:`measure` gives for it.
    """

    starts: list[float]
    bucket_s: float
    since: float
    until: float
    metrics: dict[str, list[Estimate]]
    n_tasks: list[int]
    actions: dict[str, list[int]]
    total: ProductMetrics
    interval_level: float = 0.95
    names: tuple[str, ...] = field(default_factory=lambda: tuple(ProductMetrics.metric_names()))

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly: per-bucket values and intervals (NaN as None) and the totals."""
        return {
            "starts": list(self.starts),
            "bucket_s": self.bucket_s,
            "since": self.since,
            "until": self.until,
            "interval_level": self.interval_level,
            "n_tasks": list(self.n_tasks),
            "actions": {k: list(v) for k, v in self.actions.items()},
            "metrics": {
                name: [estimate.to_dict() for estimate in values]
                for name, values in self.metrics.items()
            },
            "total": self.total.to_dict(),
        }


def _width(bucket: Any) -> float:
    if isinstance(bucket, str) and bucket in BUCKETS:
        return BUCKETS[bucket]
    seconds = bucket.total_seconds() if isinstance(bucket, timedelta) else bucket
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, Real)
        or not math.isfinite(seconds)
        or seconds < 1
    ):
        raise InputError(
            f"`bucket` must be 'hour', 'day', or a width of at least 1 second (a number or a "
            f"timedelta); got {describe(bucket)}."
        )
    return float(seconds)


def _window(since: Any, until: Any, window: Any, width: float) -> tuple[float, float]:
    if since is None and window is None:
        window = 24 * width if width < BUCKETS["day"] else 30 * width
    if until is None and window is not None:
        until = time.time()
    low, high = _bounds(since, until, window)
    if high >= 1.0e299:
        high = time.time()
    if high <= low:
        raise InputError(
            f"The window is empty: `since` ({low!r}) is not before `until` ({high!r})."
        )
    return low, high


def _sum_counts(parts: list[_Counts]) -> _Counts:
    names = _Counts.__dataclass_fields__
    values = {name: sum(getattr(part, name) for part in parts) for name in names}
    return _Counts(**values)


def _empty_counts() -> _Counts:
    return _counts((0,) * 17)


def metric_series(
    source: Any,
    since: float | datetime | None = None,
    until: float | datetime | None = None,
    window: float | timedelta | None = None,
    *,
    bucket: str | float | timedelta = "hour",
    outcome_model: OutcomeModel | None = None,
    interval_level: float = 0.95,
    use_rollups: bool = True,
) -> MetricSeries:
    """Measure product metrics per hour or day from the event log.

    Parameters
    ----------
    source : Store, str or DuckDB connection
        As for :func:`measure`.
    since, until : float or datetime, optional
        The window, as for :func:`measure`; ``until`` defaults to now.
    window : float or timedelta, optional
        The last ``window`` seconds before ``until``; without ``since`` nor ``window``,
        the last 24 buckets (hours) or 30 (days and wider).
    bucket : {"hour", "day"}, float or timedelta, default="hour"
        Width of a bucket; buckets are aligned to multiples of it in UTC.
    outcome_model : OutcomeModel, optional
        Only its ``deadline_s`` is used.
    interval_level : float, default=0.95
    use_rollups : bool, default=True
        Over a :class:`~failwise.store.Store` with buckets of whole hours, read the
        settled hours from the store's rollups (recomputing the stale ones) and compute
        only the rest from the log: the same numbers (counts and quantiles exactly,
        reviewers' seconds to float rounding), far faster over long windows. False
        computes every bucket from the log.

    Returns
    -------
    MetricSeries

    Examples
    --------
    >>> import tempfile
    >>> from failwise import store
    >>> from failwise.outcomes import metric_series
    >>> folder = tempfile.mkdtemp()
    >>> with store.open(f"sqlite:///{folder}/events.db") as events:
    ...     _ = events.record_decision("t1", {"action": "answer", "label": 3}, at=100.0)
    ...     _ = events.record_decision("t2", {"action": "escalate"}, at=4000.0)
    ...     series = metric_series(events, since=0.0, until=7200.0)
    >>> series.n_tasks, series.actions["escalate"], series.total.n_tasks
    ([1, 1], [0, 1], 2)
    """
    model = outcome_model if outcome_model is not None else OutcomeModel()
    if not isinstance(model, OutcomeModel):
        raise InputError(f"`outcome_model` must be an OutcomeModel; got {describe(model)}.")
    if (
        isinstance(interval_level, bool)
        or not isinstance(interval_level, Real)
        or not 0 < interval_level < 1
    ):
        raise InputError(
            f"`interval_level` must lie in (0, 1), e.g. 0.95; got {describe(interval_level)}."
        )
    if not isinstance(use_rollups, (bool, np.bool_)):
        raise InputError(f"`use_rollups` must be True or False; got {describe(use_rollups)}.")
    level = float(interval_level)
    width = _width(bucket)
    low, high = _window(since, until, window, width)
    start = math.floor(low / width) * width
    n_buckets = max(math.ceil((high - start) / width), 1)
    if n_buckets > MAX_BUCKETS:
        raise InputError(
            f"The window holds {n_buckets:,} buckets of {width:g} s; at most {MAX_BUCKETS:,} "
            "are drawn. Use wider buckets (bucket='day') or a shorter window."
        )
    from failwise.store import ROLLUP_S, Store

    if use_rollups and isinstance(source, Store) and width % ROLLUP_S == 0:
        hours = hours_of_store(source, low, high, float(model.deadline_s))
        counts, actions, found, everywhere = _from_hours(hours, start, width, n_buckets, level)
    else:
        counts, actions, found, everywhere = _from_view(
            source, (low, high, float(model.deadline_s)), start, width, n_buckets, level
        )
    total_counts = _sum_counts(counts)
    times = [_pick(found[i], c.n_timed, level) for i, c in enumerate(counts)]
    total_times = _pick(everywhere, total_counts.n_timed, level)
    per_bucket = [
        _bucket_metrics(c, tuple(sorted(times[i].items())), level) for i, c in enumerate(counts)
    ]
    metrics = {name: [values[name] for values in per_bucket] for name in per_bucket[0]}
    total = ProductMetrics(
        **_metrics(total_counts, total_times, level),
        n_tasks=total_counts.n_tasks,
        interval_level=level,
        source="measured",
    )
    return MetricSeries(
        starts=[start + i * width for i in range(n_buckets)],
        bucket_s=width,
        since=low,
        until=high,
        metrics=metrics,
        n_tasks=[c.n_tasks for c in counts],
        actions=actions,
        total=total,
        interval_level=level,
    )


@functools.lru_cache(maxsize=1 << 16)
def _bucket_metrics(
    counts: _Counts, times: tuple[tuple[int, float], ...], level: float
) -> dict[str, Estimate]:
    """:func:`_metrics` of one bucket, remembered: a dashboard redraws the same settled
    buckets on every load, and their intervals cost more than reading them."""
    return _metrics(counts, dict(times), level)


_Parts = tuple[list[_Counts], dict[str, list[int]], list[dict[int, float]], dict[int, float]]


def _from_view(
    source: Any,
    params: tuple[float, float, float],
    start: float,
    width: float,
    n: int,
    level: float,
) -> _Parts:
    """The buckets' sums and the order statistics their quantiles need, in one query."""
    run, close = runner(source)
    try:
        rows = run(SERIES_SELECT, (*params, start, width, z_of(level)))
    finally:
        close()
    counts = [_empty_counts() for _ in range(n)]
    actions = {a: [0] * n for a in ACTIONS}
    found: list[dict[int, float]] = [{} for _ in range(n)]
    everywhere: dict[int, float] = {}
    for row in rows:
        index = int(row[1])
        if not 0 <= index < n:  # pragma: no cover - the window bounds the tasks
            continue
        if int(row[0]) == 0:
            counts[index] = _counts(tuple(row[2:19]))
            for position, action in enumerate(ACTIONS):
                actions[action][index] = int(row[19 + position] or 0)
            continue
        position, overall, seconds = row[-3:]
        if position is not None:
            found[index][int(position)] = float(seconds)
        everywhere[int(overall)] = float(seconds)
    return counts, actions, found, everywhere


def _from_hours(
    hours: dict[float, Hour], start: float, width: float, n: int, level: float
) -> _Parts:
    """The same from per-hour parts: sums added, times merged (exact order statistics)."""
    groups: list[list[Hour]] = [[] for _ in range(n)]
    for hour, part in hours.items():
        index = math.floor((hour - start) / width)
        if 0 <= index < n:
            groups[index].append(part)
    buckets = [merge(group) for group in groups]
    window = merge(buckets)
    actions = {a: [b.actions[k] for b in buckets] for k, a in enumerate(ACTIONS)}
    found = [_ranks(b.times, level) for b in buckets]
    return [b.counts for b in buckets], actions, found, _ranks(window.times, level)


def _ranks(times: np.ndarray[Any, np.dtype[np.float64]], level: float) -> dict[int, float]:
    """The order statistics of sorted ``times`` that the median and p90 need."""
    if not len(times):
        return {}
    z = z_of(level)
    ranks = {r for q in (0.5, 0.9) for r in quantile_ranks(len(times), q, z)}
    return {r: float(times[r]) for r in ranks}


def _pick(found: dict[int, float], n: int, level: float) -> dict[int, float]:
    """The order statistics among ``found`` that the median and p90 of ``n`` times need."""
    if not n:
        return {}
    z = z_of(level)
    ranks = {r for q in (0.5, 0.9) for r in quantile_ranks(n, q, z)}
    return {r: found[r] for r in ranks}
