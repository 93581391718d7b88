"""Statistics of the review queue: per-reviewer work, and the queue's health over time.

Both are grouped inside the database (the health in one pass over the queue, reviewer
statistics one query per figure), so they stay fast on a long log; the dashboard, the
reviewer page and the CLI read the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from failwise.exceptions import InputError
from failwise.store._backend import Row
from failwise.store._checks import check_at
from failwise.store._queue_levels import ServiceLevels

__all__ = ["QueueHealth", "QueueStats", "ReviewerStats"]

#: Shortest active span a pace is given for (a minute: a few quick resolutions say little).
_MIN_SPAN_H = 1.0 / 60.0

#: Most buckets one health series may have.
_MAX_BUCKETS = 10_000

#: The per-bucket flows of queue health, in the order of :data:`_HEALTH_SQL`'s first column;
#: ``_OPEN`` marks its last row, the snapshot of the items open now.
_FLOWS = ("created", "resolved", "breaches")
_OPEN = len(_FLOWS)
#: The bucket of an item queued or resolved before the first bucket.
_BEFORE = -1

#: Queue health in one statement, with one pass over ``queue_items``, grouped once: each
#: item falls in a group by the bucket it was queued in (``cb``; -1 before the first),
#: resolved in (``rb``; -1 for an item queued and resolved before the first), whose due
#: time passed in unresolved (``db``) and the reviewer who resolved it in the window. The
#: groups are summed per bucket of each kind. The last row is the snapshot of the items
#: open now, read through the open items' index (``queue_open_task``), not the table: the
#: oldest, the counts and the median queue time. ``{due}`` is :meth:`ServiceLevels.sql`;
#: the parameters are the first bucket's start, the width, the end of the last bucket,
#: "now", then the due time's parameters twice.
_HEALTH_SQL = """
WITH p AS (SELECT ? AS s, ? AS w, ? AS e, ? AS now),
grouped AS (
    SELECT cb, rb, db, reviewer, COUNT(*) AS n
    FROM (
        SELECT
            CASE WHEN i.created_at < p.s THEN -1
                WHEN i.created_at < p.e THEN FLOOR((i.created_at - p.s) / p.w) END AS cb,
            CASE WHEN i.state <> 'resolved' OR i.resolved_at >= p.e THEN NULL
                WHEN i.resolved_at >= p.s THEN FLOOR((i.resolved_at - p.s) / p.w)
                WHEN i.created_at < p.s THEN -1 END AS rb,
            CASE WHEN i.due >= p.s AND i.due < p.e AND i.due <= p.now
                AND (i.state <> 'resolved' OR i.resolved_at > i.due)
                THEN FLOOR((i.due - p.s) / p.w) END AS db,
            CASE WHEN i.state = 'resolved' AND i.resolved_at >= p.s AND i.resolved_at < p.e
                THEN i.resolved_by END AS reviewer
        FROM (
            SELECT qi.created_at, qi.state, qi.resolved_at, qi.resolved_by, {due} AS due
            FROM queue_items qi
        ) AS i CROSS JOIN p
    ) AS items
    GROUP BY cb, rb, db, reviewer
),
open_now AS (
    SELECT qi.created_at,
        CASE WHEN qi.state IN ('pending', 'expired') OR qi.lease_expires_at <= p.now
            THEN 1 ELSE 0 END AS waiting,
        CASE WHEN qi.state = 'claimed' AND qi.lease_expires_at > p.now
            THEN 1 ELSE 0 END AS claimed,
        CASE WHEN {due} <= p.now THEN 1 ELSE 0 END AS breached
    FROM queue_items qi CROSS JOIN p
    WHERE qi.state <> 'resolved' AND qi.created_at <= p.now
)
SELECT 0, cb, SUM(n), 0, 0, 0, 0, 0.0 FROM grouped WHERE cb IS NOT NULL GROUP BY cb
UNION ALL
SELECT 1, rb, SUM(n), COUNT(DISTINCT reviewer), 0, 0, 0, 0.0
FROM grouped WHERE rb IS NOT NULL GROUP BY rb
UNION ALL
SELECT 2, db, SUM(n), 0, 0, 0, 0, 0.0 FROM grouped WHERE db IS NOT NULL GROUP BY db
UNION ALL
SELECT 3, MIN(created_at), COUNT(*), 0, SUM(waiting), SUM(claimed), SUM(breached), (
    SELECT AVG(created_at) FROM (
        SELECT created_at, ROW_NUMBER() OVER (ORDER BY created_at) AS position,
            COUNT(*) OVER () AS total
        FROM open_now
    ) AS ranked
    WHERE 2 * position IN (total, total + 1, total + 2)
)
FROM open_now
"""


def _float(value: Any) -> float:
    return float("nan") if value is None else float(value)


@dataclass(frozen=True)
class ReviewerStats:
    """What one reviewer did in a window.

    Attributes
    ----------
    reviewer : str
    resolved : int
        Items resolved.
    resolved_per_hour : float
        Resolutions per hour of the reviewer's active span (first claim to last
        resolution in the window); NaN for fewer than two resolutions or a span under a
        minute.
    median_handling_s : float
        Median seconds from claim to resolution.
    audited : int
        Resolutions whose task a later audit labelled.
    overturned : int
        Of those, the ones the later audit labelled differently.
    overturn_rate : float
        ``overturned / audited``; NaN when none was audited.
    """

    reviewer: str
    resolved: int
    resolved_per_hour: float
    median_handling_s: float
    audited: int
    overturned: int
    overturn_rate: float


@dataclass(frozen=True)
class QueueHealth:
    """The review queue now, and per time bucket.

    Attributes
    ----------
    at : float
        "Now" (Unix seconds) of the snapshot.
    waiting, claimed : int
        Items claimable now (pending, or a lease that ran out), and held now.
    oldest_age_s, median_age_s : float
        Age of the oldest open item and the median age of open items now (NaN: none).
    breached : int
        Open items past their due time now.
    starts : list of float
        Start of every bucket (Unix seconds, aligned to multiples of ``bucket_s``).
    bucket_s : float
    depth : list of int
        Open items (queued, not resolved) at the end of each bucket.
    created, resolved : list of int
        Items queued and resolved in each bucket.
    reviewers : list of int
        Distinct reviewers who resolved an item in each bucket.
    breaches : list of int
        Items whose due time fell in each bucket (before ``at``) unresolved by then.
    """

    at: float
    waiting: int
    claimed: int
    oldest_age_s: float
    median_age_s: float
    breached: int
    starts: list[float]
    bucket_s: float
    depth: list[int]
    created: list[int]
    resolved: list[int]
    reviewers: list[int]
    breaches: list[int]

    @property
    def resolved_per_hour(self) -> list[float]:
        """Reviewer throughput: items resolved per hour in each bucket."""
        return [n * 3600.0 / self.bucket_s for n in self.resolved]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly (NaN as None)."""
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            out[name] = None if isinstance(value, float) and math.isnan(value) else value
        out["resolved_per_hour"] = self.resolved_per_hour
        return out


class QueueStats:
    """Reviewer statistics and queue health of :class:`~failwise.store.Queue`."""

    _read: Callable[[str, Sequence[Any]], list[Row]]

    # ---------------------------------------------------------------- reviewers
    def reviewer_stats(
        self, since: float | None = None, until: float | None = None
    ) -> list[ReviewerStats]:
        """Per reviewer: resolutions in ``[since, until)``, pace, handling time, overturns.

        A resolution is *overturned* when an audit of the same task after it (an
        ``audit_resolved`` or ``audit_label`` event) gives another label; the rate is over
        the resolutions a later audit labelled. Reviewers by number resolved, most first.
        """
        low = -1.0e300 if since is None else check_at(since, "since")
        high = 1.0e300 if until is None else check_at(until, "until")
        if low > high:
            raise InputError(f"`since` ({low!r}) is after `until` ({high!r}); pass since <= until.")
        window = (
            "qi.state = 'resolved' AND qi.resolved_by IS NOT NULL "
            "AND qi.resolved_at >= ? AND qi.resolved_at < ?"
        )
        totals = self._read(
            "SELECT qi.resolved_by, COUNT(*), MIN(qi.claimed_at), MAX(qi.resolved_at) "
            f"FROM queue_items qi WHERE {window} GROUP BY qi.resolved_by",
            (low, high),
        )
        medians = self._read(
            "SELECT resolved_by, AVG(h) FROM ("
            " SELECT qi.resolved_by, qi.resolved_at - qi.claimed_at AS h,"
            " ROW_NUMBER() OVER (PARTITION BY qi.resolved_by"
            "  ORDER BY qi.resolved_at - qi.claimed_at) AS position,"
            " COUNT(*) OVER (PARTITION BY qi.resolved_by) AS n"
            f" FROM queue_items qi WHERE {window} AND qi.claimed_at IS NOT NULL"
            ") AS ranked WHERE 2 * position IN (n, n + 1, n + 2) GROUP BY resolved_by",
            (low, high),
        )
        audits = self._read(
            "SELECT qi.resolved_by, COUNT(*), SUM(CASE WHEN EXISTS ("
            " SELECT 1 FROM events a WHERE a.task_id = qi.task_id"
            " AND a.kind IN ('audit_resolved', 'audit_label') AND a.at > qi.resolved_at"
            " AND a.label <> qi.label) THEN 1 ELSE 0 END) "
            f"FROM queue_items qi WHERE {window} AND EXISTS ("
            " SELECT 1 FROM events a WHERE a.task_id = qi.task_id"
            " AND a.kind IN ('audit_resolved', 'audit_label') AND a.at > qi.resolved_at) "
            "GROUP BY qi.resolved_by",
            (low, high),
        )
        median_by = {str(r[0]): float(r[1]) for r in medians}
        audit_by = {str(r[0]): (int(r[1]), int(r[2] or 0)) for r in audits}
        out = []
        for reviewer, count, first, last in totals:
            name = str(reviewer)
            n = int(count)
            span_h = (_float(last) - _float(first)) / 3600.0
            audited, overturned = audit_by.get(name, (0, 0))
            out.append(
                ReviewerStats(
                    reviewer=name,
                    resolved=n,
                    resolved_per_hour=n / span_h if n > 1 and span_h >= _MIN_SPAN_H else math.nan,
                    median_handling_s=median_by.get(name, float("nan")),
                    audited=audited,
                    overturned=overturned,
                    overturn_rate=overturned / audited if audited else float("nan"),
                )
            )
        return sorted(out, key=lambda s: (-s.resolved, s.reviewer))

    # ---------------------------------------------------------------- health
    def health(
        self,
        since: float,
        until: float,
        bucket_s: float = 3600.0,
        *,
        levels: ServiceLevels | None = None,
        at: float | None = None,
    ) -> QueueHealth:
        """The queue now, and its depth, flow, reviewers and breaches per bucket.

        Parameters
        ----------
        since, until : float
            Unix seconds; buckets start at ``since`` rounded down to a multiple of
            ``bucket_s`` and cover ``[since, until)``.
        bucket_s : float, default=3600.0
        levels : ServiceLevels, optional
            Due times; the defaults by default.
        at : float, optional
            "Now" for the snapshot and for which due times have passed; by default now
            or ``until``, whichever is earlier.

        Examples
        --------
        >>> import tempfile
        >>> from failwise import store
        >>> folder = tempfile.mkdtemp()
        >>> with store.open(f"sqlite:///{folder}/events.db") as events:
        ...     request = store.QueueRequest("t1", "escalation", "low confidence", 0.9)
        ...     _ = events.record_decision("t1", {"action": "escalate"}, at=10.0, enqueue=[request])
        ...     health = events.queue.health(0.0, 7200.0, at=7200.0)
        >>> health.depth, health.created, health.breaches, health.waiting
        ([1, 1], [1, 0], [1, 0], 1)
        """
        low, high = check_at(since, "since"), check_at(until, "until")
        if low >= high:
            raise InputError(f"`since` ({low!r}) must be before `until` ({high!r}).")
        if (
            isinstance(bucket_s, bool)
            or not isinstance(bucket_s, (int, float))
            or not math.isfinite(bucket_s)
            or bucket_s < 1
        ):
            raise InputError(f"`bucket_s` must be a number of seconds >= 1; got {bucket_s!r}.")
        width = float(bucket_s)
        start = math.floor(low / width) * width
        n = max(math.ceil((high - start) / width), 1)
        if n > _MAX_BUCKETS:
            raise InputError(
                f"The window holds {n:,} buckets of {width:g} s; at most {_MAX_BUCKETS:,}. "
                "Use wider buckets or a shorter window."
            )
        sla = levels if levels is not None else ServiceLevels()
        if not isinstance(sla, ServiceLevels):
            raise InputError(f"`levels` must be a ServiceLevels or None; got {levels!r}.")
        now = min(check_at(at), high) if at is None else check_at(at)
        due, due_params = sla.sql("qi")
        params = (start, width, start + n * width, now, *due_params, *due_params)
        rows = self._read(_HEALTH_SQL.format(due=due), params)
        flows = {name: [0] * n for name in (*_FLOWS, "reviewers")}
        before = [0, 0, 0]  # items queued before the first bucket, and those resolved before it
        snapshot: Row = ()
        for row in rows:
            kind, index = int(row[0]), row[1]
            if kind == _OPEN:
                snapshot = row
            elif int(index) == _BEFORE:
                before[kind] = int(row[2])
            elif 0 <= int(index) < n:
                flows[_FLOWS[kind]][int(index)] = int(row[2])
                if _FLOWS[kind] == "resolved":
                    flows["reviewers"][int(index)] = int(row[3])
        open_now = before[0] - before[1]
        depth = []
        for k in range(n):
            open_now += flows["created"][k] - flows["resolved"][k]
            depth.append(open_now)
        oldest, median = snapshot[1], snapshot[7]
        return QueueHealth(
            at=now,
            waiting=int(snapshot[4] or 0),
            claimed=int(snapshot[5] or 0),
            oldest_age_s=now - float(oldest) if oldest is not None else math.nan,
            median_age_s=now - float(median) if median is not None else math.nan,
            breached=int(snapshot[6] or 0),
            starts=[start + k * width for k in range(n)],
            bucket_s=width,
            depth=depth,
            created=flows["created"],
            resolved=flows["resolved"],
            reviewers=flows["reviewers"],
            breaches=flows["breaches"],
        )
