"""The review queue: escalations and audit samples waiting for a human.

States
------
``pending``
    Waiting for a reviewer.
``claimed``
    Leased to one reviewer until ``lease_expires_at``.
``expired``
    The lease ran out before a resolution: the item is back in the queue (claimable, in
    its original place: priority, then age). ``claimed_by`` still names the last
    reviewer, who may still resolve it until someone else claims it — so a reviewer who
    took a little longer than the lease loses nothing, and no item is ever resolved by
    two people.
``resolved``
    A reviewer gave the label. Final.

A lease that has run out is swept back to ``expired`` (writing ``<kind>_expired`` at the
moment the lease ended) by the next :meth:`Queue.claim` or by :meth:`Queue.expire`;
until then :meth:`Queue.get` already reports it as ``expired`` and :meth:`Queue.pending`
counts it.

Every change is also an event of the item's task: ``<kind>_created``, ``_claimed``,
``_expired``, ``_released`` and ``_resolved`` (the resolution carries the label).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from failwise._params import Seconds, check_param
from failwise._validation import describe
from failwise.exceptions import InputError
from failwise.store._backend import Op, Row, Tx
from failwise.store._checks import check_at, check_label, check_task_id, check_text, dump_json
from failwise.store._errors import QueueStateError, UnknownItemError, format_time, unknown_task
from failwise.store._queue_items import (
    MAX_TEXT,
    ItemRow,
    check_kind,
    check_priority,
    write_created_event,
)
from failwise.store._queue_views import QueueViews

__all__ = ["QUEUE_STATES", "Queue", "QueueItem"]

#: The states of a queue item.
QUEUE_STATES: tuple[str, ...] = ("pending", "claimed", "expired", "resolved")

_ITEM_COLUMNS = (
    "id, task_id, kind, reason, priority, created_at, state, claimed_by, lease_expires_at, "
    "claimed_at, resolved_at, resolved_by, label, note"
)

_ENQUEUE = """
INSERT INTO queue_items (task_id, kind, reason, priority, created_at, state)
SELECT task_id, CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS {float}), CAST(? AS {float}),
       'pending'
FROM tasks WHERE task_id = ?
ON CONFLICT (task_id, kind) WHERE state <> 'resolved' DO NOTHING
RETURNING id
"""
_EVENT = "INSERT INTO events (task_id, kind, at, label, payload) VALUES (?, ?, ?, ?, ?)"
_SWEEP = f"""
UPDATE queue_items SET state = 'expired'
WHERE state = 'claimed' AND id IN (
    SELECT id FROM queue_items WHERE state = 'claimed' AND lease_expires_at <= ?
    ORDER BY id {{skip_locked}}
)
RETURNING {_ITEM_COLUMNS}
"""
_CLAIM = f"""
UPDATE queue_items SET state = 'claimed', claimed_by = ?, claimed_at = ?, lease_expires_at = ?
WHERE state IN ('pending', 'expired') AND id = (
    SELECT id FROM queue_items WHERE state IN ('pending', 'expired'){{kind}}
    ORDER BY priority DESC, created_at, id LIMIT 1 {{skip_locked}}
)
RETURNING {_ITEM_COLUMNS}
"""
_LOCK_ITEM = f"SELECT {_ITEM_COLUMNS} FROM queue_items WHERE id = ? {{lock}}"


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


def _item(row: Row, *, now: float | None = None) -> QueueItem:
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


def _check_item_id(item_id: Any) -> int:
    if isinstance(item_id, bool) or not isinstance(item_id, int) or item_id < 1:
        raise InputError(
            f"`item_id` must be a positive int (QueueItem.id); got {describe(item_id)}."
        )
    return item_id


def _event(tx: Tx, item: QueueItem, change: str, at: float, **payload: Any) -> None:
    label = payload.pop("label", None)
    tx.execute(
        _EVENT,
        (
            item.task_id,
            f"{item.kind}_{change}",
            at,
            label,
            dump_json({"item_id": item.id, **payload}),
        ),
    )


def _sweep(tx: Tx, now: float) -> list[QueueItem]:
    expired = [_item(row) for row in tx.execute(_SWEEP, (now,))]
    for item in expired:
        at = item.lease_expires_at if item.lease_expires_at is not None else now
        _event(tx, item, "expired", at, reviewer=item.claimed_by)
    return expired


def _locked_item(tx: Tx, item_id: int) -> QueueItem:
    rows = tx.execute(_LOCK_ITEM, (item_id,))
    if not rows:
        raise UnknownItemError(
            f"No queue item {item_id} in the {tx.backend} store; nothing was written. Use the "
            "id of a QueueItem returned by enqueue or claim."
        )
    return _item(rows[0])


def _holder_mismatch(item: QueueItem, reviewer: str | None, call: str) -> QueueStateError | None:
    if reviewer is None or reviewer == item.claimed_by:
        return None
    return QueueStateError(
        f"Queue item {item.id} is held by {item.claimed_by!r} (state {item.state}), not by "
        f"{reviewer!r}; only the reviewer holding it may {call} it. Nothing was written."
    )


class Queue(QueueViews):
    """The review queue of a :class:`~failwise.store.Store` (``store.queue``).

    It reaches the database only through the two callables its store hands it: ``write``
    runs a write operation in the store's group-commit writer (returning once durable),
    ``read`` runs a read-only query.
    """

    def __init__(
        self,
        *,
        write: Callable[[Op], Any],
        read: Callable[[str, Sequence[Any]], list[Row]],
        url: str,
        backend: str,
    ) -> None:
        self._write = write
        self._read = read
        self._url = url
        self._backend_name = backend

    def __repr__(self) -> str:
        return f"<failwise Queue of {self._url}>"

    # ---------------------------------------------------------------- writes
    def enqueue(
        self,
        task_id: str,
        kind: str,
        reason: str,
        priority: float = 0.0,
        *,
        at: float | None = None,
    ) -> int:
        """Queue task ``task_id`` for human review; return the item id.

        Parameters
        ----------
        task_id : str
            An existing task.
        kind : {"escalation", "audit"}
            ``escalation``: the user waits for a human. ``audit``: a confident answer
            sampled for review, to estimate silent failures.
        reason : str
            Shown to the reviewer.
        priority : float, default=0.0
            Higher is claimed first (e.g. the expected cost of leaving it wrong).
        at : float, optional
            Unix seconds; now by default.

        Raises
        ------
        UnknownTaskError
            When no decision opened ``task_id``.
        QueueStateError
            When the task already has an open (unresolved) item of this kind.
        """
        task_id = check_task_id(task_id)
        row: ItemRow = (
            task_id,
            str(check_kind(kind)),
            check_text(reason, "reason", max_length=MAX_TEXT),
            check_priority(priority),
            check_at(at),
        )

        def op(tx: Tx) -> int:
            rows = tx.execute(_ENQUEUE, (*row[1:], task_id))
            if not rows:
                raise _enqueue_refusal(tx, task_id, row[1])
            item_id = int(rows[0][0])
            write_created_event(tx, item_id, row)
            return item_id

        return int(self._write(op))

    def claim(
        self,
        reviewer: str,
        lease_s: float = 300.0,
        *,
        kind: str | None = None,
        at: float | None = None,
    ) -> QueueItem | None:
        """Lease the next item to ``reviewer``: highest priority first, then oldest.

        Atomic across threads, processes and machines: every item goes to exactly one
        reviewer. Leases that have run out are first swept back to the queue.

        Parameters
        ----------
        reviewer : str
        lease_s : float, default=300.0
            Seconds the reviewer has to resolve or release it.
        kind : {"escalation", "audit"}, optional
            Claim only this kind.
        at : float, optional
            Unix seconds; now by default.

        Returns
        -------
        QueueItem or None
            The claimed item, or None when nothing is waiting.
        """
        name = check_text(reviewer, "reviewer")
        lease = float(check_param("lease_s", lease_s, [Seconds()]))
        kind_ = check_kind(kind, optional=True)
        now = check_at(at)
        query = _CLAIM.replace("{kind}", "" if kind_ is None else " AND kind = ?")

        def op(tx: Tx) -> QueueItem | None:
            _sweep(tx, now)
            params: tuple[Any, ...] = (name, now, now + lease)
            if kind_ is not None:
                params = (*params, kind_)
            rows = tx.execute(query, params)
            if not rows:
                return None
            item = _item(rows[0])
            _event(tx, item, "claimed", now, reviewer=name, lease_expires_at=now + lease)
            return item

        result: QueueItem | None = self._write(op)
        return result

    def resolve(
        self,
        item_id: int,
        label: int,
        note: str | None = None,
        reviewer: str | None = None,
        *,
        at: float | None = None,
    ) -> QueueItem:
        """Give the item's label and close it.

        A reviewer whose lease ran out may still resolve the item as long as nobody else
        has claimed it since (its state is then ``expired``, or ``claimed`` with a past
        lease if no claim swept it yet).

        Parameters
        ----------
        item_id : int
        label : int
            The correct label; ``-1`` marks an out-of-scope request.
        note : str, optional
        reviewer : str, optional
            When given, must be the reviewer holding (or who last held) the item.
        at : float, optional
            Unix seconds; now by default.

        Raises
        ------
        UnknownItemError
            When there is no such item.
        QueueStateError
            When the item is resolved already, was never claimed, or is held by someone
            else. Nothing is written.
        """
        item_id = _check_item_id(item_id)
        checked = check_label(label, required=True)
        text = None if note is None else check_text(note, "note", max_length=MAX_TEXT)
        name = None if reviewer is None else check_text(reviewer, "reviewer")
        now = check_at(at)

        def op(tx: Tx) -> QueueItem:
            item = _locked_item(tx, item_id)
            if item.state == "resolved":
                raise QueueStateError(
                    f"Queue item {item_id} was already resolved by {item.resolved_by!r} with "
                    f"label {item.label} at {format_time(item.resolved_at)}; an item is resolved "
                    "once, so nothing was written."
                )
            if item.state == "pending":
                raise QueueStateError(
                    f"Queue item {item_id} is pending: nobody has claimed it. Claim it with "
                    "store.queue.claim(reviewer) before resolving; nothing was written."
                )
            mismatch = _holder_mismatch(item, name, "resolve")
            if mismatch is not None:
                raise mismatch
            by = name if name is not None else item.claimed_by
            rows = tx.execute(
                f"UPDATE queue_items SET state = 'resolved', resolved_at = ?, resolved_by = ?, "
                f"label = ?, note = ? WHERE id = ? RETURNING {_ITEM_COLUMNS}",
                (now, by, checked, text, item_id),
            )
            resolved = _item(rows[0])
            _event(tx, resolved, "resolved", now, label=checked, reviewer=by, note=text)
            return resolved

        result: QueueItem = self._write(op)
        return result

    def release(
        self, item_id: int, *, reviewer: str | None = None, at: float | None = None
    ) -> QueueItem:
        """Hand a claimed item back to the queue unresolved.

        Raises
        ------
        UnknownItemError
            When there is no such item.
        QueueStateError
            When the item is not claimed, or is held by another reviewer.
        """
        item_id = _check_item_id(item_id)
        name = None if reviewer is None else check_text(reviewer, "reviewer")
        now = check_at(at)

        def op(tx: Tx) -> QueueItem:
            item = _locked_item(tx, item_id)
            if item.state != "claimed":
                raise QueueStateError(
                    f"Queue item {item_id} is {item.state}, not claimed; only a claimed item "
                    "can be released. Nothing was written."
                )
            mismatch = _holder_mismatch(item, name, "release")
            if mismatch is not None:
                raise mismatch
            rows = tx.execute(
                "UPDATE queue_items SET state = 'pending', claimed_by = NULL, claimed_at = NULL, "
                f"lease_expires_at = NULL WHERE id = ? RETURNING {_ITEM_COLUMNS}",
                (item_id,),
            )
            _event(tx, item, "released", now, reviewer=item.claimed_by)
            return _item(rows[0])

        result: QueueItem = self._write(op)
        return result

    def expire(self, *, at: float | None = None) -> int:
        """Return every item whose lease has run out to the queue; return how many.

        :meth:`claim` does this first anyway; call it to keep states and events current
        when nobody is claiming (e.g. from a periodic job).
        """
        now = check_at(at)
        return int(self._write(lambda tx: len(_sweep(tx, now))))

    # ---------------------------------------------------------------- reads
    def get(self, item_id: int, *, at: float | None = None) -> QueueItem:
        """The item ``item_id`` as of ``at`` (now by default).

        Raises
        ------
        UnknownItemError
            When there is no such item.
        """
        item_id = _check_item_id(item_id)
        now = check_at(at)
        rows = self._read(f"SELECT {_ITEM_COLUMNS} FROM queue_items WHERE id = ?", (item_id,))
        if not rows:
            raise UnknownItemError(
                f"No queue item {item_id} in the {self._backend_name} store. Use the id of a "
                "QueueItem returned by enqueue or claim."
            )
        return _item(rows[0], now=now)

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
            f"SELECT {_ITEM_COLUMNS} FROM queue_items{clause} "
            "ORDER BY priority DESC, created_at, id LIMIT ?",
            (*params, limit),
        )
        return [_item(row, now=now) for row in rows]


def _enqueue_refusal(tx: Tx, task_id: str, kind: str) -> InputError:
    rows = tx.execute(
        "SELECT id, state FROM queue_items WHERE task_id = ? AND kind = ? AND state <> 'resolved'",
        (task_id, kind),
    )
    if not rows:
        return unknown_task(task_id, tx.backend)
    return QueueStateError(
        f"Task {task_id!r} already has an open {kind} item ({rows[0][0]}, {rows[0][1]}); a task "
        f"has at most one open item of each kind, so nothing was written. Resolve item "
        f"{rows[0][0]} first, or queue the other kind."
    )
