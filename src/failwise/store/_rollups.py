"""Stored per-hour rollups of the metric view, and the marks that keep them fresh.

A dashboard over 30 days of hourly buckets would otherwise recompute the per-task metric
view over every task of the window on every load. Instead, each settled hour (one that
ended at least :data:`SETTLE_S` ago) is computed once and stored in ``metric_rollups``
as a payload that the caller (:mod:`failwise.outcomes`) builds and reads; the store only
keeps it and knows when it is stale.

Freshness
---------
A task's metrics change when later events arrive for it (feedback, a clarification pick,
an escalation resolved or undone, an audit), and a task belongs to the hour of its
decision. A trigger on ``events`` (every append, whichever write path made it) and on
``queue_items`` (every change of an item, which the handling time and an undone audit
read) marks that hour in ``metric_rollup_marks``, in the transaction of the write. The
invariant, at every snapshot: an hour with a stored rollup and no mark has a rollup that
counts every committed event of its tasks.

A refresh runs in one transaction: it deletes the marks of the hours it recomputes (and
the stored rollups of the marked ones, for every deadline), computes them over the log,
and stores them. On PostgreSQL it holds
an advisory lock (one refresher at a time), its ``DELETE`` of a mark waits for a writer
that is about to mark the same hour (the trigger's ``ON CONFLICT DO UPDATE`` locks the
mark's row), and each statement reads every transaction committed before it; a write
that commits later leaves a new mark, so the hour is recomputed on the next read.

An hour that ended less than a minute ago (or has not ended) is not marked at all, on
either backend (schema 6 on PostgreSQL, 8 on SQLite): a refresh stores only hours that
ended :data:`SETTLE_S` ago, so no rollup of it can exist yet, and such hours are where
every new decision is written. This is safe as long as a write transaction lasts less
than four minutes and the database's clock is within four minutes of the service's. On
SQLite the refresh runs through the store's writer, under the database's write lock, so
no write interleaves with it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from failwise.exceptions import InputError
from failwise.store._backend import Backend, Row, Tx

__all__ = [
    "ROLLUP_MARK_FUNCTION",
    "ROLLUP_S",
    "ROLLUP_TABLES",
    "ROLLUP_TRIGGERS",
    "ROLLUP_TRIGGERS_SETTLED",
    "SETTLE_S",
    "HourCompute",
    "MetricRollups",
    "TaskViewQuery",
]

#: Width of a stored rollup, in seconds: hours (wider buckets are sums of hours).
ROLLUP_S = 3600.0

#: An hour is settled, and may be stored, once it ended this many seconds ago.
SETTLE_S = 300.0

#: Most hours one refresh transaction recomputes (the write lock is held meanwhile).
CHUNK_HOURS = 24

#: PostgreSQL advisory lock of the refreshers ("fwrollup").
_REFRESH_LOCK = 0x6677726F6C6C7570

ROLLUP_TABLES: tuple[str, ...] = (
    """
    CREATE TABLE metric_rollups (
        deadline_s {float} NOT NULL,
        hour_start {float} NOT NULL,
        n_tasks INTEGER NOT NULL,
        payload TEXT NOT NULL,
        computed_at {float} NOT NULL,
        PRIMARY KEY (deadline_s, hour_start)
    )
    """,
    "CREATE INDEX metric_rollups_hour ON metric_rollups (hour_start)",
    "CREATE TABLE metric_rollup_marks (hour_start {float} PRIMARY KEY)",
)

_SQLITE_MARK = """
BEGIN
    INSERT OR IGNORE INTO metric_rollup_marks (hour_start)
    SELECT FLOOR(tasks.created_at / 3600.0) * 3600.0 FROM tasks
    WHERE tasks.task_id = NEW.task_id;
END
"""

#: The marking triggers, per backend (the hour is FLOOR(created_at / 3600) * 3600 on
#: both, as :data:`ROLLUP_S` says).
ROLLUP_TRIGGERS: Mapping[str, tuple[str, ...]] = {
    "sqlite": (
        f"CREATE TRIGGER events_mark_rollup AFTER INSERT ON events {_SQLITE_MARK}",
        f"CREATE TRIGGER queue_items_mark_rollup AFTER UPDATE ON queue_items {_SQLITE_MARK}",
    ),
    "postgresql": (
        """
        CREATE FUNCTION failwise_mark_rollup() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            mark_hour DOUBLE PRECISION;
        BEGIN
            SELECT FLOOR(tasks.created_at / 3600.0) * 3600.0 INTO mark_hour
            FROM tasks WHERE tasks.task_id = NEW.task_id;
            IF mark_hour IS NULL THEN
                RETURN NULL;
            END IF;
            IF mark_hour + 3600.0 > EXTRACT(EPOCH FROM clock_timestamp()) - 60.0 THEN
                INSERT INTO metric_rollup_marks (hour_start) VALUES (mark_hour)
                ON CONFLICT DO NOTHING;
            ELSE
                INSERT INTO metric_rollup_marks (hour_start) VALUES (mark_hour)
                ON CONFLICT (hour_start) DO UPDATE SET hour_start = EXCLUDED.hour_start;
            END IF;
            RETURN NULL;
        END
        $$
        """,
        "CREATE TRIGGER events_mark_rollup AFTER INSERT ON events "
        "FOR EACH ROW EXECUTE FUNCTION failwise_mark_rollup()",
        "CREATE TRIGGER queue_items_mark_rollup AFTER UPDATE ON queue_items "
        "FOR EACH ROW EXECUTE FUNCTION failwise_mark_rollup()",
    ),
}

#: Schema 6 (PostgreSQL): the marking function without work for the hours a refresh
#: cannot have stored yet (ended less than a minute ago, or not at all), where a decision
#: is written every moment; a decision's hour is its own time (no look-up of the task).
ROLLUP_MARK_FUNCTION = """
CREATE OR REPLACE FUNCTION failwise_mark_rollup() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    mark_hour DOUBLE PRECISION;
BEGIN
    IF TG_TABLE_NAME = 'events' THEN
        IF NEW.kind = 'decision' THEN
            mark_hour := FLOOR(NEW.at / 3600.0) * 3600.0;
        END IF;
    END IF;
    IF mark_hour IS NULL THEN
        SELECT FLOOR(tasks.created_at / 3600.0) * 3600.0 INTO mark_hour
        FROM tasks WHERE tasks.task_id = NEW.task_id;
    END IF;
    IF mark_hour IS NULL
       OR mark_hour + 3600.0 > EXTRACT(EPOCH FROM clock_timestamp()) - 60.0 THEN
        RETURN NULL;
    END IF;
    INSERT INTO metric_rollup_marks (hour_start) VALUES (mark_hour)
    ON CONFLICT (hour_start) DO UPDATE SET hour_start = EXCLUDED.hour_start;
    RETURN NULL;
END
$$
"""

#: SQLite's clock in Unix seconds (``unixepoch('subsec')`` needs SQLite 3.42).
_SQLITE_NOW = "(julianday('now') - 2440587.5) * 86400.0"

#: An hour whose rollup a refresh may have stored: it ended a minute ago or more.
_SQLITE_SETTLED = f"FLOOR({{hour}} / 3600.0) * 3600.0 + 3600.0 <= {_SQLITE_NOW} - 60.0"

_SQLITE_MARK_SETTLED = f"""
BEGIN
    INSERT OR IGNORE INTO metric_rollup_marks (hour_start)
    SELECT FLOOR(tasks.created_at / 3600.0) * 3600.0 FROM tasks
    WHERE tasks.task_id = NEW.task_id AND {_SQLITE_SETTLED.format(hour="tasks.created_at")};
END
"""

#: Schema 8 (SQLite): the marking triggers without work for the hours not settled yet, as
#: :data:`ROLLUP_MARK_FUNCTION` does on PostgreSQL; a decision event's hour is its own
#: time, so in the open hour the trigger stops at its ``WHEN`` (no look-up of the task).
ROLLUP_TRIGGERS_SETTLED: tuple[str, ...] = (
    "DROP TRIGGER IF EXISTS events_mark_rollup",
    "DROP TRIGGER IF EXISTS queue_items_mark_rollup",
    "CREATE TRIGGER events_mark_rollup AFTER INSERT ON events "
    f"WHEN NEW.kind <> 'decision' OR {_SQLITE_SETTLED.format(hour='NEW.at')} "
    f"{_SQLITE_MARK_SETTLED}",
    f"CREATE TRIGGER queue_items_mark_rollup AFTER UPDATE ON queue_items {_SQLITE_MARK_SETTLED}",
)

#: Runs ``select`` (standard SQL over ``task_view``) with its parameters over the tasks
#: decided in ``[since, until)``: ``query(select, params, since, until)``.
TaskViewQuery = Callable[[str, Sequence[Any], float, float], list[Row]]

#: Computes the payload of every hour of the given ``[start, end)`` runs (each a multiple
#: of :data:`ROLLUP_S`), with the query it is handed: ``compute(query, runs)``.
HourCompute = Callable[[TaskViewQuery, Sequence[tuple[float, float]]], Mapping[float, str]]

_STORED = """
SELECT r.hour_start, r.payload, CASE WHEN m.hour_start IS NULL THEN 0 ELSE 1 END
FROM metric_rollups r LEFT JOIN metric_rollup_marks m ON m.hour_start = r.hour_start
WHERE r.deadline_s = ? AND r.hour_start >= ? AND r.hour_start < ?
"""

_INSERT = """
INSERT INTO metric_rollups (deadline_s, hour_start, n_tasks, payload, computed_at)
VALUES (?, ?, ?, ?, ?)
"""


def _runs(hours: Sequence[float]) -> list[list[tuple[float, float]]]:
    """Sorted hour starts as chunks of at most :data:`CHUNK_HOURS` hours, each a list of
    contiguous ``[start, end)`` runs."""
    chunks: list[list[tuple[float, float]]] = []
    for offset in range(0, len(hours), CHUNK_HOURS):
        runs: list[tuple[float, float]] = []
        for hour in hours[offset : offset + CHUNK_HOURS]:
            if runs and runs[-1][1] == hour:
                runs[-1] = (runs[-1][0], hour + ROLLUP_S)
            else:
                runs.append((hour, hour + ROLLUP_S))
        chunks.append(runs)
    return chunks


class _Refresh:
    """Write operation: recompute and store the hours of ``runs``; returns their payloads."""

    def __init__(
        self,
        deadline_s: float,
        runs: Sequence[tuple[float, float]],
        compute: HourCompute,
        n_tasks: Callable[[str], int],
    ) -> None:
        self.deadline_s = deadline_s
        self.runs = runs
        self.compute = compute
        self.n_tasks = n_tasks

    def __call__(self, tx: Tx) -> Mapping[float, str]:
        from failwise.store._reads import task_view_sql

        if tx.backend == "postgresql":
            tx.execute("SELECT pg_advisory_xact_lock(?)", (_REFRESH_LOCK,))
        for start, end in self.runs:
            where = "WHERE hour_start >= ? AND hour_start < ?"
            marked = tx.execute(
                f"DELETE FROM metric_rollup_marks {where} RETURNING hour_start", (start, end)
            )
            # a marked hour is stale for every deadline; this deadline's rows are redone
            tx.executemany(
                "DELETE FROM metric_rollups WHERE hour_start = ?", [(row[0],) for row in marked]
            )
            tx.execute(
                f"DELETE FROM metric_rollups {where} AND deadline_s = ?",
                (start, end, self.deadline_s),
            )

        def query(select: str, params: Sequence[Any], since: float, until: float) -> list[Row]:
            return tx.execute(task_view_sql(select), (since, until, *params))

        payloads = self.compute(query, self.runs)
        now = time.time()
        tx.executemany(
            _INSERT,
            [
                (self.deadline_s, hour, self.n_tasks(payload), payload, now)
                for hour, payload in sorted(payloads.items())
            ],
        )
        return payloads


class MetricRollups:
    """The stored rollups of a :class:`~failwise.store.Store` (a mixin: it uses the
    store's reads, its writer and its backend)."""

    backend: str
    _backend: Backend

    def _read(self, template: str, params: Sequence[Any] = ()) -> list[Row]:
        raise NotImplementedError  # pragma: no cover - the Store's

    def _write(self, op: Any) -> Any:
        raise NotImplementedError  # pragma: no cover - the Store's

    def metric_rollups(
        self,
        deadline_s: float,
        first_hour: float,
        end_hour: float,
        compute: HourCompute,
        *,
        n_tasks: Callable[[str], int] = len,
    ) -> dict[float, str]:
        """The payload of every settled hour in ``[first_hour, end_hour)``, fresh.

        Hours with a stored rollup and no mark are read; the others are recomputed with
        ``compute`` (in chunks of at most :data:`CHUNK_HOURS` hours, each in one
        transaction that also stores them, see the module's notes).

        Parameters
        ----------
        deadline_s : float
            The outcome model's deadline the payloads depend on (part of the key).
        first_hour, end_hour : float
            Multiples of :data:`ROLLUP_S`; ``end_hour`` at most now − :data:`SETTLE_S`.
        compute : callable
            ``compute(query, runs)``: the payload (text) of every hour of ``runs``.
        n_tasks : callable, default=len
            The number of tasks a payload counts (stored beside it for inspection).

        Returns
        -------
        dict of float to str
            Hour start → payload, for every hour of the range.
        """
        for name, value in (("first_hour", first_hour), ("end_hour", end_hour)):
            if not math.isfinite(value) or value % ROLLUP_S:
                raise InputError(
                    f"`{name}` must be a whole hour in Unix seconds (a multiple of 3600); "
                    f"got {value!r}."
                )
        settled = time.time() - SETTLE_S
        if end_hour > settled or first_hour > end_hour:
            raise InputError(
                f"Rollups cover settled hours only: need first_hour <= end_hour <= now - "
                f"{SETTLE_S:g} s ({settled!r}); got [{first_hour!r}, {end_hour!r}). Compute "
                "later hours from the log."
            )
        deadline = float(deadline_s)
        payloads: dict[float, str] = {}
        for hour, payload, marked in self._read(_STORED, (deadline, first_hour, end_hour)):
            if not marked:
                payloads[float(hour)] = str(payload)
        n_hours = round((end_hour - first_hour) / ROLLUP_S)
        needed = [
            hour
            for hour in (first_hour + k * ROLLUP_S for k in range(n_hours))
            if hour not in payloads
        ]
        for runs in _runs(needed):
            op = _Refresh(deadline, runs, compute, n_tasks)
            # PostgreSQL: on a pooled connection of its own, beside the writer; SQLite:
            # through the writer, which holds the file's only write lock.
            done = self._backend.transact(op) if self.backend == "postgresql" else self._write(op)
            payloads.update(done)
        return payloads

    def stale_hours(self) -> list[float]:
        """The hours marked stale (their stored rollups are recomputed on the next read)."""
        rows = self._read("SELECT hour_start FROM metric_rollup_marks ORDER BY hour_start")
        return [float(row[0]) for row in rows]
