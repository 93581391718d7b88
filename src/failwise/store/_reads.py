"""The store's public reads: tasks, paged events, table pages, the task view.

Everything outside :mod:`failwise.store` reads the log through these methods of
:class:`~failwise.store.Store` (``measure``, ``export``, ``recalibrate``, the replay). Each
long read is paged with a cursor (keyset pagination), so it runs in bounded memory and
holds no connection or snapshot between pages.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

from failwise.exceptions import InputError
from failwise.store._backend import Row
from failwise.store._checks import check_at, check_task_id
from failwise.store._errors import unknown_task
from failwise.store._events import Event, Task
from failwise.store._schema import TABLES

__all__ = [
    "TASK_VIEW_COLUMNS",
    "EventCursor",
    "EventPage",
    "StoreReads",
    "check_size",
    "check_window",
    "event_from_row",
    "task_view_sql",
]

_EVENT_COLUMNS = "id, task_id, kind, at, label, payload"

#: The per-task view: one row per task decided in ``[since, until)`` with what its
#: events say. A resolution undone (``<kind>_reopened``) does not count: the task's
#: escalation is resolved by the first resolution when none was undone, else by the last
#: resolution after the last undo; an undone audit's label is the item's current one.
#: The events and queue items are those of the window's tasks (``IN``, which SQLite runs
#: as index look-ups; a join let it build a Bloom filter over the whole table first).
#: Parameters: since, until. Times are Unix seconds; NULL when it never happened
#: (``audited`` and ``human_s`` too, for a task with no later event or no resolved
#: queue item).
_TASK_VIEW_SELECT = """
WITH bounds AS (
    SELECT CAST(? AS DOUBLE PRECISION) AS since_at, CAST(? AS DOUBLE PRECISION) AS until_at
),
t AS (
    SELECT tasks.task_id, tasks.created_at, tasks.action, tasks.label
    FROM tasks, bounds
    WHERE tasks.created_at >= bounds.since_at AND tasks.created_at < bounds.until_at
),
e AS (
    SELECT
        ev.task_id,
        MIN(CASE WHEN ev.kind = 'feedback_accepted' THEN ev.at END) AS accepted_at,
        MIN(CASE WHEN ev.kind IN ('feedback_corrected', 'feedback_abandoned')
                 THEN ev.at END) AS negative_at,
        MAX(CASE WHEN ev.kind IN ('feedback_corrected', 'feedback_abandoned')
                 THEN ev.at END) AS last_negative_at,
        MIN(CASE WHEN ev.kind = 'clarification_choice' THEN ev.at END) AS choice_at,
        MAX(CASE WHEN ev.kind = 'clarification_choice' THEN ev.label END) AS choice_label,
        MIN(CASE WHEN ev.kind = 'escalation_created' THEN ev.at END) AS escalated_at,
        MIN(CASE WHEN ev.kind = 'escalation_resolved' THEN ev.at END) AS first_resolved_at,
        MAX(CASE WHEN ev.kind = 'escalation_resolved' THEN ev.at END) AS last_resolved_at,
        MAX(CASE WHEN ev.kind = 'escalation_reopened' THEN ev.at END) AS escalation_undone_at,
        MAX(CASE WHEN ev.kind IN ('audit_resolved', 'audit_label')
                 THEN ev.label END) AS any_audit_label,
        MAX(CASE WHEN ev.kind IN ('audit_resolved', 'audit_label')
                 THEN 1 ELSE 0 END) AS any_audited,
        MAX(CASE WHEN ev.kind = 'audit_label' THEN ev.label END) AS audit_event_label,
        MAX(CASE WHEN ev.kind = 'audit_reopened' THEN ev.at END) AS audit_undone_at
    FROM events ev
    WHERE ev.task_id IN (SELECT task_id FROM t) AND ev.kind <> 'decision'
    GROUP BY ev.task_id
),
h AS (
    SELECT qi.task_id, SUM(qi.resolved_at - qi.claimed_at) AS human_s,
           MAX(CASE WHEN qi.kind = 'audit' THEN qi.label END) AS audit_item_label
    FROM queue_items qi
    WHERE qi.task_id IN (SELECT task_id FROM t)
      AND qi.state = 'resolved' AND qi.claimed_at IS NOT NULL
    GROUP BY qi.task_id
)
SELECT
    t.task_id, t.created_at, t.action, t.label,
    e.accepted_at, e.negative_at, e.last_negative_at, e.choice_at, e.choice_label,
    e.escalated_at,
    CASE WHEN e.escalation_undone_at IS NULL THEN e.first_resolved_at
         WHEN e.last_resolved_at > e.escalation_undone_at THEN e.last_resolved_at
    END AS resolved_at,
    CASE WHEN e.audit_undone_at IS NULL THEN e.any_audit_label
         ELSE COALESCE(e.audit_event_label, h.audit_item_label)
    END AS audit_label,
    CASE WHEN e.audit_undone_at IS NULL THEN e.any_audited
         WHEN e.audit_event_label IS NOT NULL OR h.audit_item_label IS NOT NULL THEN 1
         ELSE 0
    END AS audited,
    h.human_s
FROM t CROSS JOIN bounds
LEFT JOIN e ON e.task_id = t.task_id
LEFT JOIN h ON h.task_id = t.task_id
"""

#: The columns of ``task_view``, in order.
TASK_VIEW_COLUMNS: tuple[str, ...] = (
    "task_id",
    "created_at",
    "action",
    "label",
    "accepted_at",
    "negative_at",
    "last_negative_at",
    "choice_at",
    "choice_label",
    "escalated_at",
    "resolved_at",
    "audit_label",
    "audited",
    "human_s",
)


def task_view_sql(query: str) -> str:
    """``query`` (standard SQL reading the relation ``task_view``) over the store's tables.

    The result runs on SQLite, PostgreSQL and DuckDB (over a Parquet export); its first
    two parameters are the view's ``since`` and ``until``, then ``query``'s own. ``query``
    may have a ``WITH`` clause of its own.
    """
    return f"WITH task_view AS ({_TASK_VIEW_SELECT}) SELECT * FROM ({query}) AS result"


def event_from_row(row: Row) -> Event:
    event_id, task_id, kind, at, label, payload = row
    return Event(
        id=int(event_id),
        task_id=str(task_id),
        kind=str(kind),
        at=float(at),
        label=None if label is None else int(label),
        payload=json.loads(payload) if payload else {},
    )


@dataclass(frozen=True)
class EventCursor:
    """Where a page of events ended: pass it as ``after`` to read the next page."""

    at: float
    id: int


@dataclass(frozen=True)
class EventPage:
    """One page of events, by time, and the cursor of the next page (None: the last)."""

    events: list[Event]
    next: EventCursor | None


def check_window(since: Any, until: Any) -> tuple[float | None, float | None]:
    low = None if since is None else check_at(since, "since")
    high = None if until is None else check_at(until, "until")
    if low is not None and high is not None and low > high:
        raise InputError(f"`since` ({low!r}) is after `until` ({high!r}); pass since <= until.")
    return low, high


def _finite(value: Any, name: str, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise InputError(f"`{name}` must be a finite time in Unix seconds or None; got {value!r}.")
    return float(value)


def check_size(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise InputError(f"`{name}` must be an int >= 1; got {value!r}.")
    return int(value)


class StoreReads:
    """The read methods of :class:`~failwise.store.Store`."""

    backend: str

    def _read(self, template: str, params: Sequence[Any] = ()) -> list[Row]:
        raise NotImplementedError  # pragma: no cover  (Store implements it)

    # ---------------------------------------------------------------- one task
    def task(self, task_id: str) -> Task:
        """The task ``task_id`` as its decision opened it.

        Raises
        ------
        UnknownTaskError
            When there is no such task.
        """
        task_id = check_task_id(task_id)
        rows = self._read(
            "SELECT t.task_id, t.created_at, t.action, t.label, t.confidence, t.predicted, "
            "t.band, t.ood_score, t.policy_version, e.payload FROM tasks t JOIN events e "
            "ON e.task_id = t.task_id AND e.kind = 'decision' WHERE t.task_id = ?",
            (task_id,),
        )
        if not rows:
            raise unknown_task(task_id, self.backend)
        row = rows[0]
        return Task(
            task_id=str(row[0]),
            created_at=float(row[1]),
            action=str(row[2]),
            label=None if row[3] is None else int(row[3]),
            confidence=None if row[4] is None else float(row[4]),
            predicted=None if row[5] is None else int(row[5]),
            band=None if row[6] is None else str(row[6]),
            ood_score=None if row[7] is None else float(row[7]),
            policy_version=None if row[8] is None else str(row[8]),
            decision=json.loads(row[9]),
        )

    def events(self, task_id: str) -> list[Event]:
        """Every event of task ``task_id``, by time (ties in the order they were appended).

        Raises
        ------
        UnknownTaskError
            When there is no such task.
        """
        task_id = check_task_id(task_id)
        rows = self._read(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE task_id = ? ORDER BY at, id", (task_id,)
        )
        if not rows:
            raise unknown_task(task_id, self.backend)
        return [event_from_row(row) for row in rows]

    # ---------------------------------------------------------------- paged events
    def event_page(
        self,
        since: float | None = None,
        until: float | None = None,
        *,
        after: EventCursor | None = None,
        limit: int = 10_000,
    ) -> EventPage:
        """One page of the events with ``since <= at < until``, by time.

        Parameters
        ----------
        since, until : float, optional
            Unix seconds; unbounded by default.
        after : EventCursor, optional
            The ``next`` cursor of the previous page; the first page by default.
        limit : int, default=10_000
            Most events in the page.

        Returns
        -------
        EventPage
            ``next`` is None when this page is the last.

        Examples
        --------
        >>> import tempfile
        >>> from failwise import store
        >>> folder = tempfile.mkdtemp()
        >>> with store.open(f"sqlite:///{folder}/events.db") as events:
        ...     for i in range(3):
        ...         _ = events.record_decision(f"t{i}", {"action": "answer", "label": i}, at=i)
        ...     first = events.event_page(limit=2)
        ...     second = events.event_page(after=first.next, limit=2)
        >>> [e.task_id for e in first.events], [e.task_id for e in second.events], second.next
        (['t0', 't1'], ['t2'], None)
        """
        low, high = check_window(since, until)
        size = check_size(limit, "limit")
        if after is not None and not isinstance(after, EventCursor):
            raise InputError(
                f"`after` must be the `next` cursor of a previous EventPage (or None); got "
                f"{after!r}."
            )
        where: list[str] = []
        params: list[Any] = []
        if after is not None:
            where.append("(at, id) > (?, ?)")
            params += [after.at, after.id]
        elif low is not None:
            where.append("at >= ?")
            params.append(low)
        if high is not None:
            where.append("at < ?")
            params.append(high)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = self._read(
            f"SELECT {_EVENT_COLUMNS} FROM events{clause} ORDER BY at, id LIMIT ?",
            (*params, size),
        )
        page = [event_from_row(row) for row in rows]
        cursor = EventCursor(page[-1].at, page[-1].id) if len(page) == size else None
        return EventPage(page, cursor)

    def iter_events(
        self,
        since: float | None = None,
        until: float | None = None,
        batch_size: int = 10_000,
    ) -> Iterator[Event]:
        """Every event with ``since <= at < until``, by time, read ``batch_size`` at a time.

        Each batch is one :meth:`event_page`: a separate query, so a long iteration
        holds no connection or snapshot between batches; events appended meanwhile at
        later times are included.

        Parameters
        ----------
        since, until : float, optional
            Unix seconds; unbounded by default.
        batch_size : int, default=10_000
        """
        check_window(since, until)
        size = check_size(batch_size, "batch_size")
        return self._iter_events(since, until, size)

    def _iter_events(self, since: Any, until: Any, size: int) -> Iterator[Event]:
        page = self.event_page(since, until, limit=size)
        while True:
            yield from page.events
            if page.next is None:
                return
            page = self.event_page(since, until, after=page.next, limit=size)

    # ---------------------------------------------------------------- whole tables
    def table_pages(self, table: str, *, batch_size: int = 100_000) -> Iterator[list[Row]]:
        """The rows of ``table`` in pages of ``batch_size``, in the order of its key.

        Parameters
        ----------
        table : {"tasks", "events", "queue_items"}
            Its columns are :data:`failwise.store.TABLES` ``[table].names``, in order.
        batch_size : int, default=100_000

        Yields
        ------
        list of tuple
            One page of rows (keyset pagination: one query per page).
        """
        if table not in TABLES:
            raise InputError(f"`table` must be one of {list(TABLES)}; got {table!r}.")
        size = check_size(batch_size, "batch_size")
        return self._table_pages(table, size)

    def _table_pages(self, table: str, size: int) -> Iterator[list[Row]]:
        description = TABLES[table]
        names = ", ".join(description.names)
        key = description.key
        position = description.names.index(key)
        rows = self._read(f"SELECT {names} FROM {table} ORDER BY {key} LIMIT ?", (size,))
        while rows:
            yield rows
            if len(rows) < size:
                return
            rows = self._read(
                f"SELECT {names} FROM {table} WHERE {key} > ? ORDER BY {key} LIMIT ?",
                (rows[-1][position], size),
            )

    # ---------------------------------------------------------------- the task view
    def query_task_view(
        self,
        query: str,
        params: Sequence[Any] = (),
        *,
        since: float | None = None,
        until: float | None = None,
    ) -> list[Row]:
        """Run a read-only ``query`` over ``task_view``, the per-task view of the log.

        ``task_view`` has one row per task decided in ``[since, until)`` with the columns
        :data:`TASK_VIEW_COLUMNS`: the decision's ``action`` and ``label`` and, from the
        task's later events, when the user accepted (``accepted_at``) or corrected or
        abandoned it (``negative_at``, ``last_negative_at``), the clarification pick
        (``choice_at``, ``choice_label``), the escalation (``escalated_at``,
        ``resolved_at``), the audit (``audit_label``, ``audited``) and the reviewers'
        handling time (``human_s``). This is what :func:`failwise.outcomes.measure`
        reads; :func:`task_view_sql` gives the same view as SQL for DuckDB.

        Parameters
        ----------
        query : str
            Standard SQL over ``task_view`` with ``?`` placeholders (it may have a
            ``WITH`` clause of its own).
        params : sequence
            ``query``'s parameters.
        since, until : float, optional
            Unix seconds of the decision; unbounded by default.

        Returns
        -------
        list of tuple

        Examples
        --------
        >>> import tempfile
        >>> from failwise import store
        >>> folder = tempfile.mkdtemp()
        >>> with store.open(f"sqlite:///{folder}/events.db") as events:
        ...     _ = events.record_decision("t1", {"action": "answer", "label": 3}, at=1.0)
        ...     _ = events.feedback("t1", "accepted", at=4.0)
        ...     events.query_task_view("SELECT task_id, accepted_at - created_at FROM task_view")
        [('t1', 3.0)]
        """
        if not isinstance(query, str) or not query.strip():
            raise InputError(f"`query` must be a SQL string over task_view; got {query!r}.")
        low = _finite(since, "since", -1.0e300)
        high = _finite(until, "until", 1.0e300)
        if low > high:
            raise InputError(f"`since` ({low!r}) is after `until` ({high!r}); pass since <= until.")
        return self._read(task_view_sql(query), (low, high, *params))
