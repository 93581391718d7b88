"""Changes of the review queue, read back from the log, and a wake-up when one is written.

Every change of a queue item is already an event of its task (``<kind>_created``,
``_claimed``, ``_released``, ``_expired``, ``_resolved``, ``_reopened``), with an id that
grows with every write. :meth:`QueueChanges.changes` reads the queue's events after an
id, so a reader that remembers the last id it saw (a cursor) learns what changed since,
whichever process or host wrote it. Lease renewals are left out: they change nothing a
reviewer sees.

On PostgreSQL, a trigger (schema version 5) also sends ``NOTIFY failwise_queue`` when a
queue event is written, naming the schema of the store's tables (a store in another
schema of the same database is ignored). :func:`listen_queue` opens a connection that
listens for it, so a reader can skip reading the log while nothing changed. The
notifications carry no changes: the log stays the one source, and a lost notification
only delays a reader until its next check. SQLite has no notifications: its listener
always answers "maybe changed".
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from numbers import Integral
from typing import Any

from failwise._params import Interval, check_param
from failwise.store._backend import Row
from failwise.store._events import QUEUE_KINDS
from failwise.store._url import parse_url

__all__ = [
    "CHANGE_KINDS",
    "QUEUE_CHANNEL",
    "QueueChange",
    "QueueChanges",
    "QueueListener",
    "listen_queue",
    "notify_statements",
]

#: The PostgreSQL channel the schema's trigger notifies on every queue change.
QUEUE_CHANNEL = "failwise_queue"

#: The queue changes :meth:`QueueChanges.changes` reports (renewals are left out).
CHANGES: tuple[str, ...] = ("created", "claimed", "released", "expired", "resolved", "reopened")

#: The event kinds of those changes.
CHANGE_KINDS: tuple[str, ...] = tuple(f"{k}_{c}" for k in QUEUE_KINDS for c in CHANGES)

_KIND_LIST = ", ".join(f"'{kind}'" for kind in CHANGE_KINDS)
_CHANGES = f"""
SELECT id, task_id, kind, at, label, payload FROM events
WHERE id > ? AND kind IN ({_KIND_LIST})
ORDER BY id LIMIT ?
"""
_LAST_ID = "SELECT COALESCE(MAX(id), 0) FROM events"
_LIMIT = [Interval(Integral, 1, 10_000)]
_AFTER = [Interval(Integral, 0, None)]


def notify_statements() -> tuple[str, ...]:
    """The PostgreSQL function and trigger that notify :data:`QUEUE_CHANNEL`.

    One notification per transaction at most (PostgreSQL folds identical ones), sent on
    commit, and only for the kinds of :data:`CHANGE_KINDS`. It carries the schema of the
    store's tables: stores in other schemas of the same database share the channel.
    """
    return (
        f"""
        CREATE OR REPLACE FUNCTION failwise_queue_notify() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{QUEUE_CHANNEL}', TG_TABLE_SCHEMA);
            RETURN NULL;
        END
        $$
        """,
        f"""
        CREATE TRIGGER events_queue_notify AFTER INSERT ON events
        FOR EACH ROW WHEN (NEW.kind IN ({_KIND_LIST}))
        EXECUTE FUNCTION failwise_queue_notify()
        """,
    )


@dataclass(frozen=True)
class QueueChange:
    """One change of a queue item, as its event recorded it.

    Attributes
    ----------
    id : int
        The event's id: changes come in increasing id order; pass the last one seen as
        ``after`` to read the next ones.
    at : float
        Unix seconds.
    task_id : str
    item_id : int
    kind : {"escalation", "audit"}
    change : {"created", "claimed", "released", "expired", "resolved", "reopened"}
    reviewer : str or None
        Who made the change (for ``expired``: who held the lease); None for ``created``.
    label : int or None
        The label of a resolution (-1: out of scope).
    """

    id: int
    at: float
    task_id: str
    item_id: int
    kind: str
    change: str
    reviewer: str | None
    label: int | None

    def to_dict(self) -> dict[str, Any]:
        """The change as JSON-ready values."""
        return {
            "id": self.id,
            "at": self.at,
            "task_id": self.task_id,
            "item_id": self.item_id,
            "kind": self.kind,
            "change": self.change,
            "reviewer": self.reviewer,
            "label": self.label,
        }


def _change(row: Row) -> QueueChange:
    event_id, task_id, kind, at, label, payload = row
    data = json.loads(payload) if isinstance(payload, str) and payload else {}
    queue_kind, _, change = str(kind).partition("_")
    reviewer = data.get("reviewer")
    return QueueChange(
        id=int(event_id),
        at=float(at),
        task_id=str(task_id),
        item_id=int(data.get("item_id", -1)),
        kind=queue_kind,
        change=change,
        reviewer=None if reviewer is None else str(reviewer),
        label=None if label is None else int(label),
    )


class QueueChanges:
    """The change-feed reads of :class:`~failwise.store.Queue`."""

    _read: Callable[[str, Sequence[Any]], list[Row]]

    def last_event_id(self) -> int:
        """The id of the newest event in the log (of any kind; 0 when it is empty).

        A cursor to start from: :meth:`changes` after it reports only what comes next.
        """
        return int(self._read(_LAST_ID, ())[0][0])

    def changes(self, after: int = 0, *, limit: int = 500) -> list[QueueChange]:
        """The queue's changes with an event id above ``after``, oldest first.

        Parameters
        ----------
        after : int, default=0
            The id of the last change (or :meth:`last_event_id`) already seen.
        limit : int, default=500
            Most changes returned; when exactly ``limit`` come back, read again after the
            last one.

        Returns
        -------
        list of QueueChange
        """
        start = int(check_param("after", after, _AFTER, where="Queue.changes"))
        most = int(check_param("limit", limit, _LIMIT, where="Queue.changes"))
        return [_change(row) for row in self._read(_CHANGES, (start, most))]


class QueueListener:
    """Tells whether the queue may have changed since the last call to :meth:`changed`.

    Made by :func:`listen_queue`. Not thread-safe: call it under a lock.
    """

    def __init__(self, url: str | None) -> None:
        self._url = url
        self._connection: Any = None
        self._schema = ""
        self.listening = False

    def _connect(self, url: str) -> bool:
        import psycopg

        try:
            self._connection = psycopg.connect(url, autocommit=True, connect_timeout=2)
            self._connection.execute(f"LISTEN {QUEUE_CHANNEL}")
            row = self._connection.execute("SELECT current_schema()").fetchone()
            self._schema = str(row[0]) if row and row[0] is not None else ""
        except psycopg.Error:
            self.close()
            return False
        self.listening = True
        return True

    def changed(self) -> bool:
        """False only when this listener is sure no queue change was committed since the
        last call (PostgreSQL, connected, no notification); True otherwise."""
        if self._url is None:
            return True
        if self._connection is None:
            self._connect(self._url)
            return True
        import psycopg

        try:
            payloads = [note.payload for note in self._connection.notifies(timeout=0.0)]
            notified = self._schema in payloads
        except psycopg.Error:
            self.close()
            return True
        return notified

    def close(self) -> None:
        """Stop listening (closes the connection, if any)."""
        connection, self._connection = self._connection, None
        self.listening = False
        if connection is not None:
            connection.close()


def listen_queue(url: str) -> QueueListener:
    """A :class:`QueueListener` for the store at ``url``.

    On PostgreSQL it holds one connection that ``LISTEN``\\ s to :data:`QUEUE_CHANNEL`
    (opened on the first :meth:`~QueueListener.changed`, and again after it breaks); on
    SQLite it holds nothing and always answers True, so the caller reads the log.

    Examples
    --------
    >>> listener = listen_queue("sqlite:///events.db")
    >>> listener.changed(), listener.listening
    (True, False)
    >>> listener.close()
    """
    parsed = parse_url(url)
    return QueueListener(parsed.url if parsed.backend == "postgresql" else None)
