"""Statistics of the review queue: per-reviewer work, and the queue's health over time.

Both are grouped inside the database (one query per figure), so they stay fast on a long
log; the dashboard, the reviewer page and the CLI read the same numbers.
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
        bucket = "FLOOR(({column} - ?) / ?)"
        end = start + n * width

        def per_bucket(column: str, extra: str = "") -> list[int]:
            out = [0] * n
            expression = bucket.format(column=column)
            rows = self._read(
                f"SELECT b, COUNT(*) FROM (SELECT {expression} AS b FROM queue_items qi "
                f"WHERE {column} >= ? AND {column} < ?{extra}) AS x GROUP BY b",
                (start, width, start, end),
            )
            for index, count in rows:
                if 0 <= int(index) < n:
                    out[int(index)] = int(count)
            return out

        created = per_bucket("qi.created_at")
        resolved = per_bucket("qi.resolved_at", " AND qi.state = 'resolved'")
        base = self._read(
            "SELECT SUM(CASE WHEN qi.created_at < ? THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN qi.state = 'resolved' AND qi.resolved_at < ? THEN 1 ELSE 0 END) "
            "FROM queue_items qi WHERE qi.created_at < ?",
            (start, start, start),
        )[0]
        open_now = int(base[0] or 0) - int(base[1] or 0)
        depth = []
        for k in range(n):
            open_now += created[k] - resolved[k]
            depth.append(open_now)
        breach_rows = self._read(
            f"SELECT b, COUNT(*) FROM (SELECT FLOOR(({due} - ?) / ?) AS b FROM queue_items qi "
            f"WHERE {due} >= ? AND {due} < ? AND {due} <= ? "
            f"AND (qi.state <> 'resolved' OR qi.resolved_at > {due})) AS x GROUP BY b",
            (
                *due_params,
                start,
                width,
                *due_params,
                start,
                *due_params,
                end,
                *due_params,
                now,
                *due_params,
            ),
        )
        breaches = [0] * n
        for index, count in breach_rows:
            if 0 <= int(index) < n:
                breaches[int(index)] = int(count)
        reviewer_rows = self._read(
            "SELECT b, COUNT(DISTINCT resolved_by) FROM (SELECT FLOOR((qi.resolved_at - ?) / ?) "
            "AS b, qi.resolved_by FROM queue_items qi WHERE qi.state = 'resolved' "
            "AND qi.resolved_at >= ? AND qi.resolved_at < ?) AS x GROUP BY b",
            (start, width, start, end),
        )
        reviewers = [0] * n
        for index, count in reviewer_rows:
            if 0 <= int(index) < n:
                reviewers[int(index)] = int(count)
        snapshot = self._read(
            "SELECT SUM(CASE WHEN qi.state IN ('pending', 'expired') OR qi.lease_expires_at <= ? "
            "THEN 1 ELSE 0 END), SUM(CASE WHEN qi.state = 'claimed' AND qi.lease_expires_at > ? "
            f"THEN 1 ELSE 0 END), MIN(qi.created_at), SUM(CASE WHEN {due} <= ? THEN 1 ELSE 0 END) "
            "FROM queue_items qi WHERE qi.state <> 'resolved' AND qi.created_at <= ?",
            (now, now, *due_params, now, now),
        )[0]
        median = self._read(
            "SELECT AVG(created_at) FROM (SELECT qi.created_at, ROW_NUMBER() OVER "
            "(ORDER BY qi.created_at) AS position, COUNT(*) OVER () AS n FROM queue_items qi "
            "WHERE qi.state <> 'resolved' AND qi.created_at <= ?) AS ranked "
            "WHERE 2 * position IN (n, n + 1, n + 2)",
            (now,),
        )[0][0]
        return QueueHealth(
            at=now,
            waiting=int(snapshot[0] or 0),
            claimed=int(snapshot[1] or 0),
            oldest_age_s=now - float(snapshot[2]) if snapshot[2] is not None else math.nan,
            median_age_s=now - float(median) if median is not None else math.nan,
            breached=int(snapshot[3] or 0),
            starts=[start + k * width for k in range(n)],
            bucket_s=width,
            depth=depth,
            created=created,
            resolved=resolved,
            reviewers=reviewers,
            breaches=breaches,
        )
