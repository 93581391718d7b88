"""The :class:`Store`: tasks and their append-only events, plus the review queue.

Writes go through the store's group-commit writer (see :mod:`failwise.store._writer`)
and return once committed; reads run on their own connections and never wait for it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from numbers import Integral
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeAlias

from failwise._validation import describe
from failwise.exceptions import InputError
from failwise.store._backend import Backend, Row, Tx
from failwise.store._checks import (
    check_at,
    check_decision,
    check_label,
    check_payload,
    check_task_id,
    dump_json,
)
from failwise.store._errors import DuplicateTaskError, StoreError, format_time, unknown_task
from failwise.store._events import (
    FEEDBACK_OUTCOMES,
    OWNING_CALL,
    RECORDABLE_KINDS,
    Event,
    EventKind,
    Task,
)
from failwise.store._queue import Queue
from failwise.store._writer import GroupCommitWriter

if TYPE_CHECKING:
    from failwise.policy import Decision

__all__ = ["DecisionLike", "RecordDecisions", "Store"]

#: What ``record_decision`` takes: a :class:`~failwise.Decision` or its ``to_dict()``.
DecisionLike: TypeAlias = "Mapping[str, Any] | Decision"

_EVENT_COLUMNS = "id, task_id, kind, at, label, payload"

_INSERT_TASK = (
    "INSERT INTO tasks (task_id, created_at, action, label, confidence, predicted, band, "
    "ood_score, policy_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_DECISION_EVENT = (
    "INSERT INTO events (task_id, kind, at, label, payload) VALUES (?, 'decision', ?, ?, ?)"
)
# PostgreSQL: many tasks and their decision events in one statement (one round trip),
# from one array per column. Task ids that exist already are skipped and not returned.
_INSERT_TASKS_AND_EVENTS = """
WITH input AS (
    SELECT * FROM unnest(
        CAST(? AS TEXT[]), CAST(? AS DOUBLE PRECISION[]), CAST(? AS TEXT[]),
        CAST(? AS INTEGER[]), CAST(? AS DOUBLE PRECISION[]), CAST(? AS INTEGER[]),
        CAST(? AS TEXT[]), CAST(? AS DOUBLE PRECISION[]), CAST(? AS TEXT[]), CAST(? AS TEXT[])
    ) AS input (task_id, created_at, action, label, confidence, predicted, band, ood_score,
                policy_version, payload)
), task AS (
    INSERT INTO tasks (task_id, created_at, action, label, confidence, predicted, band,
                       ood_score, policy_version)
    SELECT task_id, created_at, action, label, confidence, predicted, band, ood_score,
           policy_version
    FROM input ORDER BY task_id
    ON CONFLICT (task_id) DO NOTHING
    RETURNING task_id, created_at, label
)
INSERT INTO events (task_id, kind, at, label, payload)
SELECT task.task_id, 'decision', task.created_at, task.label, input.payload
FROM task JOIN input ON input.task_id = task.task_id
RETURNING task_id
"""
_APPEND_EVENT = """
INSERT INTO events (task_id, kind, at, label, payload)
SELECT task_id, CAST(? AS TEXT), CAST(? AS {float}), CAST(? AS INTEGER), CAST(? AS TEXT)
FROM tasks WHERE task_id = ?
RETURNING id
"""

#: Most task ids in one ``IN (...)`` list.
_IN_CHUNK = 500


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


# ------------------------------------------------------------------------------ operations
class RecordDecisions:
    """Write operation: open tasks with their decision events; all or nothing."""

    __slots__ = ("rows",)

    def __init__(self, rows: Sequence[tuple[Any, ...]]) -> None:
        # Each row: (task_id, at, action, label, confidence, predicted, band, ood_score,
        # policy_version, payload_json).
        self.rows = rows

    @property
    def is_single(self) -> bool:
        return len(self.rows) == 1

    def __call__(self, tx: Tx) -> None:
        if tx.backend == "postgresql":
            self._run_postgres(tx)
        else:
            self._run_sqlite(tx)

    def _run_sqlite(self, tx: Tx) -> None:
        if self.is_single:
            row = self.rows[0]
            if not tx.execute(
                _INSERT_TASK + " ON CONFLICT (task_id) DO NOTHING RETURNING 1", row[:9]
            ):
                raise _duplicate(tx, [row[0]])
            tx.execute(_INSERT_DECISION_EVENT, (row[0], row[1], row[3], row[9]))
            return
        ids = [row[0] for row in self.rows]
        existing: list[str] = []
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = ids[start : start + _IN_CHUNK]
            marks = ", ".join("?" * len(chunk))
            found = tx.execute(f"SELECT task_id FROM tasks WHERE task_id IN ({marks})", chunk)
            existing.extend(str(r[0]) for r in found)
        if existing:
            raise _duplicate(tx, existing)
        tx.executemany(_INSERT_TASK, [row[:9] for row in self.rows])
        tx.executemany(
            _INSERT_DECISION_EVENT, [(row[0], row[1], row[3], row[9]) for row in self.rows]
        )

    def _run_postgres(self, tx: Tx) -> None:
        if self.is_single:
            if not insert_postgres(tx, self.rows):
                raise _duplicate(tx, [self.rows[0][0]])
            return
        tx.execute("SAVEPOINT failwise_decisions")
        inserted = insert_postgres(tx, self.rows)
        if len(inserted) < len(self.rows):
            tx.execute("ROLLBACK TO SAVEPOINT failwise_decisions")
            raise _duplicate(tx, [row[0] for row in self.rows if row[0] not in inserted])
        tx.execute("RELEASE SAVEPOINT failwise_decisions")

    @staticmethod
    def run_singles_postgres(tx: Tx, ops: Sequence[RecordDecisions]) -> list[tuple[bool, Any]]:
        """Run many callers' single decisions as one statement; one outcome per operation.

        Each operation stands alone: a duplicate id refuses only its own call.
        """
        unique: dict[str, tuple[Any, ...]] = {}
        for op in ops:
            unique.setdefault(op.rows[0][0], op.rows[0])
        inserted = insert_postgres(tx, list(unique.values())) if unique else set()
        outcomes: list[tuple[bool, Any]] = []
        for op in ops:
            row = op.rows[0]
            if row[0] in inserted and unique.get(row[0]) is row:
                outcomes.append((True, None))
            else:
                outcomes.append((False, _duplicate(tx, [row[0]])))
        return outcomes


def insert_postgres(tx: Tx, rows: Sequence[tuple[Any, ...]]) -> set[str]:
    """Insert tasks and decision events (PostgreSQL); return the task ids written."""
    columns = [list(column) for column in zip(*rows, strict=True)]
    return {str(row[0]) for row in tx.execute(_INSERT_TASKS_AND_EVENTS, columns)}


def _duplicate(tx: Tx, task_ids: Sequence[str]) -> DuplicateTaskError:
    first = task_ids[0]
    found = tx.execute("SELECT created_at FROM tasks WHERE task_id = ?", (first,))
    when = f" (its decision was recorded at {format_time(float(found[0][0]))})" if found else ""
    others = f" and {len(task_ids) - 1} other id(s)" if len(task_ids) > 1 else ""
    return DuplicateTaskError(
        f"Task {first!r}{others} already exists{when}; a task id opens exactly one task, so "
        "nothing was written. Give every request a fresh id (e.g. `uuid.uuid4().hex`); to "
        "add what happened next, use store.feedback or store.record_event."
    )


class _AppendEvent:
    """Write operation: one event for an existing task; returns the event id."""

    __slots__ = ("params", "task_id")

    def __init__(self, task_id: str, kind: str, at: float, label: int | None, payload: str):
        self.task_id = task_id
        self.params = (kind, at, label, payload, task_id)

    def __call__(self, tx: Tx) -> int:
        rows = tx.execute(_APPEND_EVENT, self.params)
        if not rows:
            raise unknown_task(self.task_id, tx.backend)
        return int(rows[0][0])


# ------------------------------------------------------------------------------ the store
class Store:
    """The event log and review queue of one database.

    Open it with :func:`failwise.store.open`; close it with :meth:`close` or a ``with``
    block. One store may be shared by every thread of a process; each process opens its
    own (after ``fork``, open a new one in the child).

    Attributes
    ----------
    url : str
        The database URL without its password.
    backend : {"sqlite", "postgresql"}
    schema_version : int
        The schema version the database is at.
    queue : Queue
        The review queue (escalations and audit samples).
    """

    def __init__(self, backend: Backend, *, max_batch: int = 512) -> None:
        self._backend = backend
        self._closed = False
        self.url = backend.redacted_url
        self.backend = backend.name
        self.schema_version = int(getattr(backend, "schema_version", 0))
        self._writer = GroupCommitWriter(backend, max_batch=max_batch)
        self.queue = Queue(self)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<failwise Store {self.url} ({state})>"

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Wait for the writes already submitted, then close every connection."""
        if self._closed:
            return
        self._closed = True
        self._writer.close()
        self._backend.close()

    # ---------------------------------------------------------------- plumbing
    def _write(self, op: Any) -> Any:
        return self._writer.submit(op)

    def _read(self, template: str, params: Sequence[Any] = ()) -> list[Row]:
        if self._closed:
            raise StoreError(
                f"The store for {self.url} is closed; open a new one with failwise.store.open(url)."
            )
        return self._backend.read(template, params)

    # ---------------------------------------------------------------- writes
    def record_decision(
        self, task_id: str, decision: DecisionLike, *, at: float | None = None
    ) -> None:
        """Open task ``task_id`` with its decision; return once it is durable.

        Parameters
        ----------
        task_id : str
            A new, unique id (at most 256 characters).
        decision : mapping or Decision
            What the ladder decided: ``Decision.to_dict()`` or any mapping with at least
            ``action`` (answer, clarify, fallback, escalate or abstain). ``label``,
            ``confidence``, ``predicted``, ``band``, ``ood_score`` and
            ``policy_version`` are checked and stored as columns; the whole mapping is
            stored as the event's JSON payload.
        at : float, optional
            Unix seconds of the decision; now by default.

        Raises
        ------
        DuplicateTaskError
            When ``task_id`` exists already; nothing is written.
        InputError
            When the decision is malformed (unknown action, confidence outside [0, 1],
            NaN, values JSON cannot hold).
        """
        self.record_decisions([(task_id, decision)], at=at)

    def record_decisions(
        self,
        items: Sequence[tuple[str, DecisionLike] | tuple[str, DecisionLike, float]],
        *,
        at: float | None = None,
    ) -> None:
        """Open many tasks in one transaction: all are written, or none.

        Parameters
        ----------
        items : sequence of (task_id, decision) or (task_id, decision, at)
            As for :meth:`record_decision`; a per-item time overrides ``at``.
        at : float, optional
            Unix seconds of the decisions without their own time; now by default.

        Raises
        ------
        DuplicateTaskError
            When any task id exists already or appears twice in ``items``.
        """
        if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Sequence):
            raise InputError(
                f"`items` must be a sequence of (task_id, decision) pairs; got {describe(items)}."
            )
        default_at = check_at(at)
        rows: list[tuple[Any, ...]] = []
        seen: set[str] = set()
        for position, item in enumerate(items):
            if not isinstance(item, tuple) or len(item) not in (2, 3):
                raise InputError(
                    f"`items[{position}]` must be a (task_id, decision) or (task_id, decision, "
                    f"at) tuple; got {describe(item)}."
                )
            task_id = check_task_id(
                item[0], f"items[{position}][0]" if len(items) > 1 else "task_id"
            )
            if task_id in seen:
                raise DuplicateTaskError(
                    f"Task id {task_id!r} appears twice in `items`; a task id opens exactly "
                    "one task, so nothing was written."
                )
            seen.add(task_id)
            item_at = check_at(item[2], f"items[{position}][2]") if len(item) == 3 else default_at
            record, columns = check_decision(item[1], task_id)
            payload = dump_json(record, "decision")
            rows.append((task_id, item_at, *columns, payload))
        if rows:
            self._write(RecordDecisions(rows))

    def feedback(
        self,
        task_id: str,
        outcome: str,
        label: int | None = None,
        at: float | None = None,
    ) -> int:
        """Record what the user did with the output of task ``task_id``.

        Parameters
        ----------
        task_id : str
        outcome : {"accepted", "corrected", "abandoned"}
            ``accepted``: the user took the output. ``corrected``: the user supplied the
            right label. ``abandoned``: the user gave up.
        label : int, optional
            The user's correct label; required for ``corrected``, refused otherwise.
            ``-1`` marks an out-of-scope request.
        at : float, optional
            Unix seconds; now by default.

        Returns
        -------
        int
            The event id.

        Raises
        ------
        UnknownTaskError
            When no decision opened ``task_id``; nothing is written.
        """
        task_id = check_task_id(task_id)
        if outcome not in FEEDBACK_OUTCOMES:
            raise InputError(
                f"`outcome` must be one of {list(FEEDBACK_OUTCOMES)}; got {outcome!r}."
            )
        if outcome == "corrected":
            if label is None:
                raise InputError(
                    "A `corrected` outcome needs the user's label: pass "
                    "feedback(task_id, 'corrected', label=...)."
                )
            checked = check_label(label)
        else:
            if label is not None:
                raise InputError(
                    f"An {outcome!r} outcome takes no label; got label={label!r}. Only "
                    "'corrected' carries one (the user's correct label)."
                )
            checked = None
        event_at = check_at(at)
        return int(
            self._write(_AppendEvent(task_id, f"feedback_{outcome}", event_at, checked, "{}"))
        )

    def record_event(
        self,
        task_id: str,
        kind: str,
        payload: Mapping[str, Any] | None = None,
        *,
        label: int | None = None,
        at: float | None = None,
    ) -> int:
        """Append another event to task ``task_id``.

        Parameters
        ----------
        task_id : str
        kind : {"clarification_choice", "fallback_result", "audit_label"}
            ``clarification_choice``: the label the user picked (None: none of them).
            ``fallback_result``: the fallback's label (None: it gave none).
            ``audit_label``: the true label found by an audit outside the queue
            (required).
        payload : mapping, optional
            Anything JSON can hold.
        label : int, optional
        at : float, optional
            Unix seconds; now by default.

        Returns
        -------
        int
            The event id.
        """
        task_id = check_task_id(task_id)
        if kind not in RECORDABLE_KINDS:
            owner = OWNING_CALL.get(str(kind))
            if owner is not None:
                raise InputError(
                    f"Events of kind {kind!r} are written by {owner}, which keeps the task "
                    "and queue tables consistent; record_event takes "
                    f"{sorted(RECORDABLE_KINDS)}."
                )
            raise InputError(
                f"`kind` must be one of {sorted(RECORDABLE_KINDS)}; got {kind!r}. (Every "
                f"event kind: {[k.value for k in EventKind]}.)"
            )
        checked = check_label(label, required=RECORDABLE_KINDS[kind])
        text = dump_json(check_payload(payload))
        return int(self._write(_AppendEvent(task_id, kind, check_at(at), checked, text)))

    # ---------------------------------------------------------------- reads
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

    def iter_events(
        self,
        since: float | None = None,
        until: float | None = None,
        batch_size: int = 10_000,
    ) -> Iterator[Event]:
        """Every event with ``since <= at < until``, by time, read ``batch_size`` at a time.

        Each batch is a separate query (keyset pagination on ``(at, id)``), so a long
        iteration holds no connection or snapshot between batches; events appended
        meanwhile at later times are included.

        Parameters
        ----------
        since, until : float, optional
            Unix seconds; unbounded by default.
        batch_size : int, default=10_000
        """
        low = None if since is None else check_at(since, "since")
        high = None if until is None else check_at(until, "until")
        if low is not None and high is not None and low > high:
            raise InputError(f"`since` ({low!r}) is after `until` ({high!r}); pass since <= until.")
        if isinstance(batch_size, bool) or not isinstance(batch_size, Integral) or batch_size < 1:
            raise InputError(f"`batch_size` must be an int >= 1; got {batch_size!r}.")
        return self._iter_events(low, high, int(batch_size))

    def _iter_events(self, low: float | None, high: float | None, size: int) -> Iterator[Event]:
        upper = "" if high is None else " AND at < ?"
        upper_params: tuple[float, ...] = () if high is None else (high,)
        if low is None:
            query = (
                f"SELECT {_EVENT_COLUMNS} FROM events WHERE 1 = 1{upper} ORDER BY at, id LIMIT ?"
            )
            rows = self._read(query, (*upper_params, size))
        else:
            query = (
                f"SELECT {_EVENT_COLUMNS} FROM events WHERE at >= ?{upper} ORDER BY at, id LIMIT ?"
            )
            rows = self._read(query, (low, *upper_params, size))
        after = (
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE (at, id) > (?, ?){upper} "
            "ORDER BY at, id LIMIT ?"
        )
        while rows:
            for row in rows:
                yield event_from_row(row)
            if len(rows) < size:
                return
            last = rows[-1]
            rows = self._read(after, (last[3], last[0], *upper_params, size))
