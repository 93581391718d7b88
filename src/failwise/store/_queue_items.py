"""Writing review-queue items: :class:`QueueRequest` and the SQL that creates items.

A queue item is created either on its own (:meth:`Queue.enqueue`, for a task recorded
earlier) or together with its task's decision (``record_decision(..., enqueue=...)``), in
the decision's transaction. Both go through :func:`insert_items`, which writes each item
and its ``<kind>_created`` event.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np

from failwise._validation import describe
from failwise.exceptions import InputError
from failwise.store._backend import Tx
from failwise.store._checks import check_task_id, check_text, dump_json
from failwise.store._events import QUEUE_KINDS

__all__ = [
    "MAX_TEXT",
    "ItemRow",
    "QueueRequest",
    "check_kind",
    "check_priority",
    "check_requests",
    "insert_items",
    "write_created_event",
]

#: Longest accepted reason or note (characters).
MAX_TEXT = 10_000

#: One item to write: ``(task_id, kind, reason, priority, created_at)``.
ItemRow = tuple[str, str, str, float, float]

_INSERT_ITEM = """
INSERT INTO queue_items (task_id, kind, reason, priority, created_at, state)
VALUES (?, ?, ?, ?, ?, 'pending')
RETURNING id
"""
_INSERT_EVENT = "INSERT INTO events (task_id, kind, at, label, payload) VALUES (?, ?, ?, ?, ?)"
# PostgreSQL: many items and their created events in one statement, from one array per
# column. The event payload is the JSON the single-row path writes: the item id spliced
# in front of a tail built in Python. The arrays go in binary, as in record_decisions.
_INSERT_ITEMS_POSTGRES = """
WITH input AS (
    SELECT * FROM unnest(
        CAST(%b AS TEXT[]), CAST(%b AS TEXT[]), CAST(%b AS TEXT[]),
        CAST(%b AS DOUBLE PRECISION[]), CAST(%b AS DOUBLE PRECISION[]), CAST(%b AS TEXT[]),
        CAST(%b AS INTEGER[])
    ) AS input (task_id, kind, reason, priority, created_at, tail, position)
), item AS (
    INSERT INTO queue_items (task_id, kind, reason, priority, created_at, state)
    SELECT task_id, kind, reason, priority, created_at, 'pending'
    FROM input ORDER BY position
    RETURNING id, task_id, kind
), created AS (
    INSERT INTO events (task_id, kind, at, label, payload)
    SELECT item.task_id, item.kind || '_created', input.created_at, NULL,
           '{"item_id":' || item.id || input.tail
    FROM item JOIN input ON input.task_id = item.task_id AND input.kind = item.kind
    ORDER BY input.position
)
SELECT input.position, item.id
FROM item JOIN input ON input.task_id = item.task_id AND input.kind = item.kind
"""
_ID_PREFIX = '{"item_id":0'


@dataclass(frozen=True)
class QueueRequest:
    """A review-queue item to write together with its task's decision.

    Pass a list of them as ``enqueue`` to :meth:`Store.record_decision` or
    :meth:`Store.record_decisions`: the decisions, their items and the items'
    ``<kind>_created`` events then commit in one transaction, so no escalated task is
    ever recorded without its item (or the other way round).

    Parameters
    ----------
    task_id : str
        The task to queue; it must be among the decisions recorded by the same call.
    kind : {"escalation", "audit"}
        ``escalation``: the user waits for a human. ``audit``: an automated outcome
        sampled for review, to estimate silent failures.
    reason : str
        Shown to the reviewer (at most 10,000 characters).
    priority : float, default=0.0
        Higher is claimed first (e.g. the expected cost of leaving it wrong).

    Raises
    ------
    InputError
        When a field is malformed (unknown kind, empty reason, NaN priority…).

    Examples
    --------
    >>> import tempfile
    >>> from failwise import store
    >>> folder = tempfile.mkdtemp()
    >>> with store.open(f"sqlite:///{folder}/events.db") as events:
    ...     request = store.QueueRequest("t1", "escalation", "low confidence", priority=0.6)
    ...     ids = events.record_decision("t1", {"action": "escalate"}, enqueue=[request])
    ...     events.queue.get(ids[0]).state
    'pending'
    """

    task_id: str
    kind: str
    reason: str
    priority: float = 0.0

    def __post_init__(self) -> None:
        check_task_id(self.task_id, "QueueRequest.task_id")
        check_kind(self.kind, "QueueRequest.kind")
        check_text(self.reason, "QueueRequest.reason", max_length=MAX_TEXT)
        object.__setattr__(self, "priority", check_priority(self.priority, "QueueRequest.priority"))


def check_kind(kind: Any, name: str = "kind", *, optional: bool = False) -> str | None:
    """A queue kind (or None when ``optional``)."""
    if optional and kind is None:
        return None
    if kind not in QUEUE_KINDS:
        extra = " or None for both" if optional else ""
        raise InputError(
            f"`{name}` must be one of {list(QUEUE_KINDS)}{extra}; got {kind!r}. Use "
            "'escalation' when the user waits for a human, 'audit' for a sampled review."
        )
    return str(kind)


def check_priority(value: Any, name: str = "priority") -> float:
    """A finite number."""
    if (
        isinstance(value, (bool, np.bool_))
        or not isinstance(value, Real)
        or not math.isfinite(value)
    ):
        raise InputError(
            f"`{name}` must be a finite number; got {value!r}. Higher is claimed first: pass "
            "e.g. 1 - confidence, or 0.0."
        )
    return float(value)


def check_requests(enqueue: Any, at_by_task: Mapping[str, float]) -> list[ItemRow]:
    """Validate ``enqueue`` against the tasks of the same call; return the rows in order.

    ``at_by_task`` maps each task id the call records to its decision time, which
    becomes its items' creation time. Nothing is written when any request is refused.
    """
    if enqueue is None:
        return []
    if isinstance(enqueue, QueueRequest):
        enqueue = [enqueue]
    if isinstance(enqueue, (str, bytes, Mapping)) or not isinstance(enqueue, Sequence):
        raise InputError(
            "`enqueue` must be a list of failwise.store.QueueRequest (or None); got "
            f"{describe(enqueue)}. Pass e.g. enqueue=[QueueRequest(task_id, 'escalation', "
            "reason)]."
        )
    rows: list[ItemRow] = []
    seen: dict[tuple[str, str], int] = {}
    for position, request in enumerate(enqueue):
        if not isinstance(request, QueueRequest):
            raise InputError(
                f"`enqueue[{position}]` must be a failwise.store.QueueRequest; got "
                f"{describe(request)}. Build it with QueueRequest(task_id, kind, reason, "
                "priority)."
            )
        at = at_by_task.get(request.task_id)
        if at is None:
            raise InputError(
                f"`enqueue[{position}].task_id` is {request.task_id!r}, which is not among the "
                "tasks this call records; an item passed with `enqueue` is written with its "
                "task's decision, so nothing was written. Add the task's decision to the same "
                "call, or queue a task recorded earlier with store.queue.enqueue(...)."
            )
        key = (request.task_id, request.kind)
        if key in seen:
            raise InputError(
                f"`enqueue` asks twice for a {request.kind} item of task {request.task_id!r} "
                f"(positions {seen[key]} and {position}); a task has at most one open item "
                "of each kind, so nothing was written. Drop the duplicate request."
            )
        seen[key] = position
        rows.append((request.task_id, request.kind, request.reason, request.priority, at))
    return rows


def _created_payload(item_id: int, reason: str, priority: float) -> str:
    return dump_json({"item_id": item_id, "reason": reason, "priority": priority})


def write_created_event(tx: Tx, item_id: int, row: ItemRow) -> None:
    """Append the ``<kind>_created`` event of the new item ``item_id``."""
    task_id, kind, reason, priority, created = row
    tx.execute(
        _INSERT_EVENT,
        (task_id, f"{kind}_created", created, None, _created_payload(item_id, reason, priority)),
    )


def insert_items(tx: Tx, rows: Sequence[ItemRow]) -> list[int]:
    """Write queue items and their created events in ``tx``; return the ids in order.

    The tasks must exist and have no open item of the same kind (the unique index
    ``queue_open_task`` refuses a second one).
    """
    if not rows:
        return []
    if tx.backend == "postgresql" and len(rows) > 1:
        tails = [_created_payload(0, row[2], row[3])[len(_ID_PREFIX) :] for row in rows]
        columns: list[list[Any]] = [list(column) for column in zip(*rows, strict=True)]
        found = tx.execute(_INSERT_ITEMS_POSTGRES, [*columns, tails, list(range(len(rows)))])
        ids = [0] * len(rows)
        for position, item_id in found:
            ids[int(position)] = int(item_id)
        return ids
    ids = []
    for row in rows:
        item_id = int(tx.execute(_INSERT_ITEM, row)[0][0])
        write_created_event(tx, item_id, row)
        ids.append(item_id)
    return ids
