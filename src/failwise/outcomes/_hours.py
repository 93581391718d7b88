"""Per-hour parts of the metric view: computed, stored as rollups, and summed into buckets.

An :class:`Hour` holds what every measured metric of an hour's tasks needs: the sums of
:data:`~failwise.outcomes._metric_sql.SUMS_COLUMNS`, the action counts and every time to
correct output, sorted. Buckets (hours, days, any multiple of an hour) and the window's
totals are sums of hours, and their quantiles are picked from the merged exact times, so
they are the numbers a computation from scratch gives: the counts and the order
statistics exactly, the sums of reviewers' seconds up to the rounding of a float sum
taken in another order.

:func:`hours_of_store` reads the settled hours of a window from the store's rollups
(:meth:`failwise.store.Store.metric_rollups`, which recomputes stale ones) and computes
the rest (a partial first hour, the last minutes) from the log.
"""

from __future__ import annotations

import base64
import json
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from failwise.outcomes._measure import _Counts, _counts
from failwise.outcomes._metric_sql import METRIC_VIEW_SQL, SUMS_COLUMNS
from failwise.policy import Action

__all__ = ["ACTIONS", "HOUR_SELECT", "Hour", "decode", "encode", "hours_of_store"]

#: The ladder's actions, in order (the action mix counts each).
ACTIONS: tuple[str, ...] = tuple(action.value for action in Action)

_N_SUMS = len(_Counts.__dataclass_fields__)

#: Per hour of the view's tasks: the sums and action counts (part 0), then every time to
#: correct output (part 1). Continues the ``WITH`` list of the metric view; parameter:
#: none beyond the view's.
HOUR_SELECT = (
    ", b AS (SELECT tasks_view.*, FLOOR(created_at / 3600.0) AS hour FROM tasks_view) "
    f"SELECT 0 AS part, hour, {SUMS_COLUMNS}, "
    + ", ".join(f"SUM(CASE WHEN action = '{a}' THEN 1 ELSE 0 END) AS n_{a}" for a in ACTIONS)
    + ", NULL AS seconds FROM b GROUP BY hour "
    "UNION ALL SELECT 1, hour, "
    + ", ".join(["NULL"] * (_N_SUMS + len(ACTIONS)))
    + ", completed_s FROM b WHERE completed_s IS NOT NULL"
)


@dataclass(frozen=True)
class Hour:
    """The sums, action counts and sorted times to correct output of some tasks."""

    counts: _Counts
    actions: tuple[int, ...]
    times: np.ndarray[Any, np.dtype[np.float64]]


EMPTY = Hour(_counts((0,) * _N_SUMS), (0,) * len(ACTIONS), np.empty(0, dtype=np.float64))


def merge(hours: Sequence[Hour]) -> Hour:
    """The sums of ``hours``, and their times merged and sorted."""
    if len(hours) == 1:
        return hours[0]
    if not hours:
        return EMPTY
    names = _Counts.__dataclass_fields__
    counts = _Counts(**{name: sum(getattr(h.counts, name) for h in hours) for name in names})
    actions = tuple(sum(column) for column in zip(*(h.actions for h in hours), strict=True))
    times = np.sort(np.concatenate([h.times for h in hours]), kind="stable")
    return Hour(counts, actions, times)


def encode(hour: Hour) -> str:
    """``hour`` as the text of a stored rollup: JSON, with the times as base64 float64."""
    c = hour.counts
    sums = [getattr(c, name) for name in _Counts.__dataclass_fields__]
    times = base64.b64encode(hour.times.astype("<f8").tobytes()).decode("ascii")
    return json.dumps({"sums": sums, "actions": list(hour.actions), "times": times})


def decode(payload: str) -> Hour:
    """The :class:`Hour` that :func:`encode` wrote."""
    data = json.loads(payload)
    raw = base64.b64decode(data["times"])
    times = np.frombuffer(raw, dtype="<f8").astype(np.float64)
    return Hour(_counts(tuple(data["sums"])), tuple(int(a) for a in data["actions"]), times)


def n_tasks(payload: str) -> int:
    """The tasks a stored payload counts."""
    return int(json.loads(payload)["sums"][0])


def hours_from_rows(rows: Iterable[Sequence[Any]], starts: Iterable[float]) -> dict[float, Hour]:
    """Rows of :data:`HOUR_SELECT` as one :class:`Hour` per start in ``starts``."""
    sums: dict[float, tuple[Any, ...]] = {}
    times: dict[float, list[float]] = {}
    for row in rows:
        start = float(row[1]) * 3600.0
        if int(row[0]) == 0:
            sums[start] = tuple(row[2:])
        else:
            times.setdefault(start, []).append(float(row[-1]))
    out: dict[float, Hour] = {}
    for start in starts:
        if start not in sums:
            out[start] = EMPTY
            continue
        row = sums[start]
        out[start] = Hour(
            _counts(row[:_N_SUMS]),
            tuple(int(v or 0) for v in row[_N_SUMS : _N_SUMS + len(ACTIONS)]),
            np.sort(np.asarray(times.get(start, []), dtype=np.float64)),
        )
    return out


def _hour_starts(low: float, high: float) -> list[float]:
    first = math.floor(low / 3600.0) * 3600.0
    return [first + k * 3600.0 for k in range(max(math.ceil((high - first) / 3600.0), 0))]


def hours_of_store(store: Any, low: float, high: float, deadline_s: float) -> dict[float, Hour]:
    """Every hour of ``[low, high)`` that holds part of the window (keyed by its start):
    settled whole hours from the store's rollups, the rest computed from the log."""
    from failwise.store import ROLLUP_S, SETTLE_S

    first = math.ceil(low / ROLLUP_S) * ROLLUP_S
    settled = math.floor((time.time() - SETTLE_S) / ROLLUP_S) * ROLLUP_S
    end = max(first, min(math.floor(high / ROLLUP_S) * ROLLUP_S, settled))
    view = METRIC_VIEW_SQL + HOUR_SELECT

    def compute(query: Any, runs: Sequence[tuple[float, float]]) -> Mapping[float, str]:
        payloads: dict[float, str] = {}
        for start, stop in runs:
            rows = query(view, (deadline_s,), start, stop)
            for hour, part in hours_from_rows(rows, _hour_starts(start, stop)).items():
                payloads[hour] = encode(part)
        return payloads

    hours: dict[float, Hour] = {}
    if end > first:
        stored = store.metric_rollups(deadline_s, first, end, compute, n_tasks=n_tasks)
        hours.update({hour: decode(payload) for hour, payload in stored.items()})
    for since, until in ((low, min(first, high)), (max(end, low), high)):
        if until > since:
            rows = store.query_task_view(view, (deadline_s,), since=since, until=until)
            hours.update(hours_from_rows(rows, _hour_starts(since, until)))
    return hours
