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
    A reviewer gave the label. Final, except that its reviewer may undo a recent
    resolution (:meth:`Queue.reopen`): the item is then claimed again by that reviewer,
    and the log keeps both the resolution and its ``<kind>_reopened`` event.

A lease that has run out is swept back to ``expired`` (writing ``<kind>_expired`` at the
moment the lease ended) by the next :meth:`Queue.claim` or by :meth:`Queue.expire`;
until then :meth:`Queue.get` already reports it as ``expired`` and :meth:`Queue.pending`
counts it.

Every change is also an event of the item's task: ``<kind>_created``, ``_claimed``,
``_renewed``, ``_expired``, ``_released``, ``_resolved`` (the resolution carries the
label) and ``_reopened``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from failwise._params import Seconds, check_param
from failwise.exceptions import InputError
from failwise.store._backend import Op, Row, Tx
from failwise.store._checks import check_at, check_label, check_task_id, check_text, dump_json
from failwise.store._errors import QueueStateError, UnknownItemError, format_time, unknown_task
from failwise.store._queue_changes import QueueChanges
from failwise.store._queue_items import (
    MAX_TEXT,
    ItemRow,
    check_kind,
    check_priority,
    write_created_event,
)
from failwise.store._queue_reads import ITEM_COLUMNS, QUEUE_STATES, QueueItem, QueueReads
from failwise.store._queue_reads import check_item_id as _check_item_id
from failwise.store._queue_reads import item_from_row as _item
from failwise.store._queue_views import QueueViews

__all__ = ["QUEUE_STATES", "Queue", "QueueItem"]

_ENQUEUE = """
INSERT INTO queue_items (task_id, kind, reason, priority, created_at, state)
SELECT task_id, CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS {float}), CAST(? AS {float}),
       'pending'
FROM tasks WHERE task_id = ?
ON CONFLICT (task_id, kind) WHERE state <> 'resolved' DO NOTHING
RETURNING id
"""
_EVENT = "INSERT INTO events (task_id, kind, at, label, payload) VALUES (?, ?, ?, ?, ?)"
# Ordered by the lease index (`queue_leases`): ordered by id alone, SQLite scans the
# whole table in rowid order on every claim instead of reading the few expired leases.
_SWEEP = f"""
UPDATE queue_items SET state = 'expired'
WHERE state = 'claimed' AND id IN (
    SELECT id FROM queue_items WHERE state = 'claimed' AND lease_expires_at <= ?
    ORDER BY lease_expires_at, id {{skip_locked}}
)
RETURNING {ITEM_COLUMNS}
"""
_CLAIM = f"""
UPDATE queue_items SET state = 'claimed', claimed_by = ?, claimed_at = ?, lease_expires_at = ?
WHERE state IN ('pending', 'expired') AND id = (
    SELECT id FROM queue_items WHERE state IN ('pending', 'expired'){{kind}}
    ORDER BY priority DESC, created_at, id LIMIT 1 {{skip_locked}}
)
RETURNING {ITEM_COLUMNS}
"""
_LOCK_ITEM = f"SELECT {ITEM_COLUMNS} FROM queue_items WHERE id = ? {{lock}}"


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


class Queue(QueueReads, QueueViews, QueueChanges):
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
                f"label = ?, note = ? WHERE id = ? RETURNING {ITEM_COLUMNS}",
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
                f"lease_expires_at = NULL WHERE id = ? RETURNING {ITEM_COLUMNS}",
                (item_id,),
            )
            _event(tx, item, "released", now, reviewer=item.claimed_by)
            return _item(rows[0])

        result: QueueItem = self._write(op)
        return result

    def renew(
        self,
        item_id: int,
        lease_s: float = 300.0,
        *,
        reviewer: str | None = None,
        at: float | None = None,
    ) -> QueueItem:
        """Extend the lease of a claimed item to ``lease_s`` seconds from now.

        A reviewer whose lease ran out may renew it as long as nobody else has claimed
        the item since (as for :meth:`resolve`).

        Raises
        ------
        UnknownItemError
            When there is no such item.
        QueueStateError
            When the item is not claimed (or expired after a claim), or is held by
            another reviewer.
        """
        item_id = _check_item_id(item_id)
        lease = float(check_param("lease_s", lease_s, [Seconds()]))
        name = None if reviewer is None else check_text(reviewer, "reviewer")
        now = check_at(at)

        def op(tx: Tx) -> QueueItem:
            item = _locked_item(tx, item_id)
            if item.state not in ("claimed", "expired") or item.claimed_by is None:
                raise QueueStateError(
                    f"Queue item {item_id} is {item.state}; only a claimed item's lease can be "
                    "renewed. Claim it first; nothing was written."
                )
            mismatch = _holder_mismatch(item, name, "renew")
            if mismatch is not None:
                raise mismatch
            rows = tx.execute(
                "UPDATE queue_items SET state = 'claimed', lease_expires_at = ? WHERE id = ? "
                f"RETURNING {ITEM_COLUMNS}",
                (now + lease, item_id),
            )
            renewed = _item(rows[0])
            _event(
                tx, renewed, "renewed", now, reviewer=item.claimed_by, lease_expires_at=now + lease
            )
            return renewed

        result: QueueItem = self._write(op)
        return result

    def reopen(
        self,
        item_id: int,
        *,
        reviewer: str | None = None,
        window_s: float = 300.0,
        lease_s: float = 300.0,
        at: float | None = None,
    ) -> QueueItem:
        """Undo a recent resolution: the item is claimed again by the reviewer who resolved it.

        The resolution stays in the log; a ``<kind>_reopened`` event records the undo
        (with the label it undid), and the metrics read the task as unresolved until it
        is resolved again.

        Parameters
        ----------
        item_id : int
        reviewer : str, optional
            When given, must be the reviewer who resolved the item.
        window_s : float, default=300.0
            How recent the resolution must be.
        lease_s : float, default=300.0
            The new lease.
        at : float, optional
            Unix seconds; now by default.

        Raises
        ------
        UnknownItemError
            When there is no such item.
        QueueStateError
            When the item is not resolved, was resolved by someone else or more than
            ``window_s`` ago, or its task has opened another item of the same kind since.
        """
        item_id = _check_item_id(item_id)
        window = float(check_param("window_s", window_s, [Seconds()]))
        lease = float(check_param("lease_s", lease_s, [Seconds()]))
        name = None if reviewer is None else check_text(reviewer, "reviewer")
        now = check_at(at)

        def op(tx: Tx) -> QueueItem:
            item = _locked_item(tx, item_id)
            if item.state != "resolved" or item.resolved_at is None:
                raise QueueStateError(
                    f"Queue item {item_id} is {item.state}, not resolved; only a resolution can "
                    "be undone. Nothing was written."
                )
            if name is not None and name != item.resolved_by:
                raise QueueStateError(
                    f"Queue item {item_id} was resolved by {item.resolved_by!r}, not {name!r}; "
                    "only the reviewer who resolved it may undo it. Nothing was written."
                )
            if now - item.resolved_at > window:
                raise QueueStateError(
                    f"Queue item {item_id} was resolved at {format_time(item.resolved_at)}, more "
                    f"than {window:g} s ago; a resolution can be undone for {window:g} s only. "
                    "Nothing was written."
                )
            other = tx.execute(
                "SELECT id FROM queue_items WHERE task_id = ? AND kind = ? AND state <> 'resolved'",
                (item.task_id, item.kind),
            )
            if other:
                raise QueueStateError(
                    f"Task {item.task_id!r} has opened another {item.kind} item "
                    f"({other[0][0]}) since item {item_id} was resolved; resolve that one "
                    "instead. Nothing was written."
                )
            rows = tx.execute(
                "UPDATE queue_items SET state = 'claimed', claimed_by = resolved_by, "
                "lease_expires_at = ?, resolved_at = NULL, resolved_by = NULL, label = NULL, "
                f"note = NULL WHERE id = ? RETURNING {ITEM_COLUMNS}",
                (now + lease, item_id),
            )
            reopened = _item(rows[0])
            _event(
                tx,
                reopened,
                "reopened",
                now,
                reviewer=item.resolved_by,
                undone_label=item.label,
                undone_at=item.resolved_at,
                lease_expires_at=now + lease,
            )
            return reopened

        result: QueueItem = self._write(op)
        return result

    def expire(self, *, at: float | None = None) -> int:
        """Return every item whose lease has run out to the queue; return how many.

        :meth:`claim` does this first anyway; call it to keep states and events current
        when nobody is claiming (e.g. from a periodic job).
        """
        now = check_at(at)
        return int(self._write(lambda tx: len(_sweep(tx, now))))


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
