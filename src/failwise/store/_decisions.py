"""Recording decisions: the checks of ``record_decisions`` and its write operation.

A :class:`RecordDecisions` operation opens tasks with their decision events and, in the
same transaction, writes the queue items requested with them (``enqueue=``) and the
items' ``<kind>_created`` events. All of an operation is written, or none of it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

from failwise._validation import describe
from failwise.exceptions import InputError
from failwise.store._backend import Tx
from failwise.store._checks import check_at, check_decision, check_task_id
from failwise.store._errors import DuplicateTaskError, format_time
from failwise.store._json_rows import dump_json_rows
from failwise.store._monitor_log import encode_features, insert_features
from failwise.store._queue_items import ItemRow, check_requests, insert_items

if TYPE_CHECKING:
    from failwise.policy import Decision

__all__ = ["DecisionLike", "RecordDecisions", "build_record"]

#: What ``record_decision`` takes: a :class:`~failwise.Decision` or its ``to_dict()``.
DecisionLike: TypeAlias = "Mapping[str, Any] | Decision"

#: One task row: (task_id, at, action, label, confidence, predicted, band, ood_score,
#: policy_version, payload_json).
TaskRow = tuple[Any, ...]

_INSERT_TASK = (
    "INSERT INTO tasks (task_id, created_at, action, label, confidence, predicted, band, "
    "ood_score, policy_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_DECISION_EVENT = (
    "INSERT INTO events (task_id, kind, at, label, payload) VALUES (?, 'decision', ?, ?, ?)"
)
# PostgreSQL: many tasks and their decision events in one statement (one round trip),
# from one array per column. Task ids that exist already are skipped and not returned.
# The arrays go in binary (``%b``): the text form quotes every element of the JSON payloads
# in Python, character by character, which cost more than the whole insert.
_INSERT_TASKS_AND_EVENTS = """
WITH input AS (
    SELECT * FROM unnest(
        CAST(%b AS TEXT[]), CAST(%b AS DOUBLE PRECISION[]), CAST(%b AS TEXT[]),
        CAST(%b AS INTEGER[]), CAST(%b AS DOUBLE PRECISION[]), CAST(%b AS INTEGER[]),
        CAST(%b AS TEXT[]), CAST(%b AS DOUBLE PRECISION[]), CAST(%b AS TEXT[]), CAST(%b AS TEXT[])
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

#: Most task ids in one ``IN (...)`` list.
_IN_CHUNK = 500


def build_record(items: Any, at: Any, enqueue: Any, features: Any = None) -> RecordDecisions | None:
    """Check ``record_decisions``' arguments; the operation to run (None: nothing to do).

    Every decision, every queue request and every feature vector is checked before
    anything is written.
    """
    if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Sequence):
        raise InputError(
            f"`items` must be a sequence of (task_id, decision) pairs; got {describe(items)}."
        )
    default_at = check_at(at)
    rows: list[TaskRow] = []
    records: list[dict[str, Any]] = []
    times: dict[str, float] = {}
    for position, item in enumerate(items):
        if not isinstance(item, tuple) or len(item) not in (2, 3):
            raise InputError(
                f"`items[{position}]` must be a (task_id, decision) or (task_id, decision, "
                f"at) tuple; got {describe(item)}."
            )
        task_id = check_task_id(item[0], f"items[{position}][0]" if len(items) > 1 else "task_id")
        if task_id in times:
            raise DuplicateTaskError(
                f"Task id {task_id!r} appears twice in `items`; a task id opens exactly "
                "one task, so nothing was written."
            )
        item_at = check_at(item[2], f"items[{position}][2]") if len(item) == 3 else default_at
        times[task_id] = item_at
        record, columns = check_decision(item[1], task_id)
        rows.append((task_id, item_at, *columns))
        records.append(record)
    payloads = dump_json_rows(records, "decision")
    rows = [(*row, payload) for row, payload in zip(rows, payloads, strict=True)]
    requests = check_requests(enqueue, times)
    vectors = _check_features(features, [row[0] for row in rows])
    return RecordDecisions(rows, requests, vectors) if rows else None


def _check_features(features: Any, task_ids: Sequence[str]) -> list[tuple[str, int, str]]:
    """``(task_id, dims, vector)`` rows of the features given (None: that task has none)."""
    if features is None:
        return []
    if isinstance(features, (str, bytes, Mapping)) or not hasattr(features, "__len__"):
        raise InputError(
            f"`features` must hold one feature vector (or None) per item; got {describe(features)}."
        )
    if len(features) != len(task_ids):
        raise InputError(
            f"`features` has {len(features)} entries for {len(task_ids)} items; pass one "
            "vector (or None) per item."
        )
    out = []
    for position, (task_id, vector) in enumerate(zip(task_ids, features, strict=True)):
        if vector is not None:
            out.append((task_id, *encode_features(vector, f"features[{position}]")))
    return out


class RecordDecisions:
    """Write operation: open tasks with their decision events and queue items.

    Its result is the ids of the queue items written, in request order.
    """

    __slots__ = ("features", "requests", "rows")

    def __init__(
        self,
        rows: Sequence[TaskRow],
        requests: Sequence[ItemRow] = (),
        features: Sequence[tuple[str, int, str]] = (),
    ) -> None:
        self.rows = rows
        self.requests = requests
        self.features = features

    @property
    def is_single(self) -> bool:
        """One decision without features: PostgreSQL groups such calls into one statement."""
        return len(self.rows) == 1 and not self.features

    def __call__(self, tx: Tx) -> list[int]:
        if tx.backend == "postgresql":
            self._run_postgres(tx)
        else:
            self._run_sqlite(tx)
        insert_features(tx, self.features)
        return insert_items(tx, self.requests)

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

        Each operation stands alone: a duplicate id refuses only its own call. The queue
        items of the operations written follow in one more statement, so ``tx`` must be
        a transaction whenever any operation requests items.
        """
        unique: dict[str, TaskRow] = {}
        for op in ops:
            unique.setdefault(op.rows[0][0], op.rows[0])
        inserted = insert_postgres(tx, list(unique.values())) if unique else set()
        written = [
            op.rows[0][0] in inserted and unique.get(op.rows[0][0]) is op.rows[0] for op in ops
        ]
        requests = [row for op, ok in zip(ops, written, strict=True) if ok for row in op.requests]
        ids = iter(insert_items(tx, requests))
        outcomes: list[tuple[bool, Any]] = []
        for op, ok in zip(ops, written, strict=True):
            if ok:
                outcomes.append((True, [next(ids) for _ in op.requests]))
            else:
                outcomes.append((False, _duplicate(tx, [op.rows[0][0]])))
        return outcomes


def insert_postgres(tx: Tx, rows: Sequence[TaskRow]) -> set[str]:
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
