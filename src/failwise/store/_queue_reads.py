"""Reading the review queue: :class:`QueueItem`, one item, a task's items, counts.

The people-facing reads (filtered pages, item detail, stats) are in
:mod:`failwise.store._queue_views`.

:class:`QueueReads` holds the read methods of :class:`~failwise.store.Queue`; they see a
claimed item whose lease has run out as ``expired`` even before a claim sweeps it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from failwise._validation import describe
from failwise.exceptions import InputError
from failwise.store._backend import Row
from failwise.store._checks import check_at, check_task_id
from failwise.store._errors import UnknownItemError
from failwise.store._queue_items import check_kind

__all__ = [
    "ITEM_COLUMNS",
    "QUEUE_STATES",
    "QueueItem",
    "QueueReads",
    "check_item_id",
    "item_from_row",
]

#: The states of a queue item.
QUEUE_STATES: tuple[str, ...] = ("pending", "claimed", "expired", "resolved")

ITEM_COLUMNS = (
    "id, task_id, kind, reason, priority, created_at, state, claimed_by, lease_expires_at, "
    "claimed_at, resolved_at, resolved_by, label, note"
)


@dataclass(frozen=True)
class QueueItem:
    """One escalation or audit sample in the review queue.

    Attributes
    ----------
    id : int
    task_id : str
    kind : {"escalation", "audit"}
    reason : str
        Why it was queued (shown to the reviewer).
    priority : float
        Higher first (e.g. the expected cost of a wrong answer); ties oldest first.
    created_at : float
        Unix seconds.
    state : {"pending", "claimed", "expired", "resolved"}
    claimed_by : str or None
        The reviewer holding it (claimed) or who last held it (expired, resolved).
    lease_expires_at : float or None
        When the current (or last) lease ends.
    claimed_at, resolved_at : float or None
    resolved_by : str or None
    label : int or None
        The resolution's label.
    note : str or None
        The reviewer's note.
    """

    id: int
    task_id: str
    kind: str
    reason: str
    priority: float
    created_at: float
    state: str
    claimed_by: str | None
    lease_expires_at: float | None
    claimed_at: float | None = None
    resolved_at: float | None = None
    resolved_by: str | None = None
    label: int | None = None
    note: str | None = None


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def item_from_row(row: Row, *, now: float | None = None) -> QueueItem:
    state = str(row[6])
    lease = _opt_float(row[8])
    if now is not None and state == "claimed" and lease is not None and lease <= now:
        state = "expired"
    return QueueItem(
        id=int(row[0]),
        task_id=str(row[1]),
        kind=str(row[2]),
        reason=str(row[3]),
        priority=float(row[4]),
        created_at=float(row[5]),
        state=state,
        claimed_by=None if row[7] is None else str(row[7]),
        lease_expires_at=lease,
        claimed_at=_opt_float(row[9]),
        resolved_at=_opt_float(row[10]),
        resolved_by=None if row[11] is None else str(row[11]),
        label=None if row[12] is None else int(row[12]),
        note=None if row[13] is None else str(row[13]),
    )


def check_item_id(item_id: Any) -> int:
    if isinstance(item_id, bool) or not isinstance(item_id, int) or item_id < 1:
        raise InputError(
            f"`item_id` must be a positive int (QueueItem.id); got {describe(item_id)}."
        )
    return item_id


class QueueReads:
    """The read methods of :class:`~failwise.store.Queue`."""

    _read: Callable[[str, Sequence[Any]], list[Row]]
    _backend_name: str

    def get(self, item_id: int, *, at: float | None = None) -> QueueItem:
        """The item ``item_id`` as of ``at`` (now by default).

        Raises
        ------
        UnknownItemError
            When there is no such item.
        """
        item_id = check_item_id(item_id)
        now = check_at(at)
        rows = self._read(f"SELECT {ITEM_COLUMNS} FROM queue_items WHERE id = ?", (item_id,))
        if not rows:
            raise UnknownItemError(
                f"No queue item {item_id} in the {self._backend_name} store. Use the id of a "
                "QueueItem returned by enqueue or claim."
            )
        return item_from_row(rows[0], now=now)

    def pending(self, kind: str | None = None, *, at: float | None = None) -> int:
        """How many items wait for a reviewer (pending, or with a lease that ran out)."""
        kind_ = check_kind(kind, optional=True)
        now = check_at(at)
        query = (
            "SELECT COUNT(*) FROM queue_items WHERE (state IN ('pending', 'expired') OR "
            "(state = 'claimed' AND lease_expires_at <= ?))"
        )
        params: tuple[Any, ...] = (now,)
        if kind_ is not None:
            query += " AND kind = ?"
            params = (now, kind_)
        return int(self._read(query, params)[0][0])

    def items(
        self,
        state: str | None = None,
        *,
        kind: str | None = None,
        limit: int = 100,
        at: float | None = None,
    ) -> list[QueueItem]:
        """Items in claim order (priority, then age), optionally of one state and kind."""
        if state is not None and state not in QUEUE_STATES:
            raise InputError(f"`state` must be one of {list(QUEUE_STATES)} or None; got {state!r}.")
        kind_ = check_kind(kind, optional=True)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InputError(f"`limit` must be an int >= 1; got {limit!r}.")
        now = check_at(at)
        where: list[str] = []
        params: list[Any] = []
        if state in ("pending", "resolved"):
            where.append("state = ?")
            params.append(state)
        elif state == "claimed":
            where.append("state = 'claimed' AND lease_expires_at > ?")
            params.append(now)
        elif state == "expired":
            where.append("(state = 'expired' OR (state = 'claimed' AND lease_expires_at <= ?))")
            params.append(now)
        if kind_ is not None:
            where.append("kind = ?")
            params.append(kind_)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = self._read(
            f"SELECT {ITEM_COLUMNS} FROM queue_items{clause} "
            "ORDER BY priority DESC, created_at, id LIMIT ?",
            (*params, limit),
        )
        return [item_from_row(row, now=now) for row in rows]

    def of_task(self, task_id: str, *, at: float | None = None) -> list[QueueItem]:
        """Every queue item of task ``task_id`` (resolved ones too), oldest first."""
        checked = check_task_id(task_id)
        now = check_at(at)
        rows = self._read(
            f"SELECT {ITEM_COLUMNS} FROM queue_items WHERE task_id = ? ORDER BY created_at, id",
            (checked,),
        )
        return [item_from_row(row, now=now) for row in rows]
