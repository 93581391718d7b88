"""Queue changes for open pages: ``GET /v1/queue:changes?after=CURSOR``.

Open reviewer pages poll this route every :data:`POLL_MS` with the cursor of their last
answer, and refresh their list (or flag their item) when something changed — whichever
worker or host made the change, since every change is read back from the store's log
(:meth:`~failwise.store.Queue.changes`). It is cheap however many pages are open: each
worker keeps one :class:`ChangeFeed` that answers from memory and reads the log at
most once per :data:`MIN_READ_S`. On PostgreSQL the feed also listens for the store's
``NOTIFY`` (:func:`~failwise.store.listen_queue`) and reads the log only after a
notification (then as soon as :data:`MIN_NOTIFIED_S` after its last read), or every
:data:`RECHECK_S` in case one was lost; on SQLite it reads ``MAX(id)`` and what follows.

A page with a cursor older than the feed's memory gets ``reset: true``: reload the whole
list. A change whose PostgreSQL transaction commits after a later one's can be missed by
a page that already read past its id; the page's next list refresh still shows it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, BeforeValidator, Field

from failwise.service._auth import Principal, require
from failwise.service._errors import responses, strict_query
from failwise.service._state import ServiceState, get_state
from failwise.store import Queue, QueueChange, QueueListener, listen_queue

__all__ = ["POLL_MS", "ChangeFeed", "FeedAnswer", "changes_router", "feed_of"]

#: How often an open page asks for changes (milliseconds).
POLL_MS = 1500
#: Least time between two reads of the log by one worker's feed (seconds).
MIN_READ_S = 0.25
#: The same after a PostgreSQL notification (a queue change is known to be waiting).
MIN_NOTIFIED_S = 0.05
#: With PostgreSQL notifications: read the log anyway after this long (seconds).
RECHECK_S = 5.0
#: Changes a feed keeps in memory.
KEEP = 2000
#: Most changes in one answer.
MOST = 500
#: A cursor further behind the feed's memory than this many event ids gets a reset.
MAX_BEHIND = 200_000


@dataclass(frozen=True)
class FeedAnswer:
    """What changed after a page's cursor."""

    cursor: int
    reset: bool
    changes: list[QueueChange]


class ChangeFeed:
    """One worker's memory of the queue's recent changes, shared by its open pages.

    Parameters
    ----------
    queue : Queue
        The store's queue (read with ``last_event_id`` and ``changes``).
    listener : QueueListener
        Says when the log may hold new changes.
    """

    def __init__(self, queue: Queue, listener: QueueListener) -> None:
        self._queue = queue
        self._listener = listener
        self._lock = threading.Lock()
        self._recent: deque[QueueChange] = deque(maxlen=KEEP)
        self._cursor = -1
        self._floor = 0
        self._read_at = -float("inf")
        self._notified = False

    def _due(self, now: float) -> bool:
        since = now - self._read_at
        if not self._listener.listening:
            if since < MIN_READ_S:
                return False
            self._listener.changed()  # connects, where there is something to listen to
            return True
        self._notified = self._listener.changed() or self._notified
        if self._notified:
            return since >= MIN_NOTIFIED_S
        return since >= RECHECK_S

    def _refresh(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if self._cursor >= 0 and not force and not self._due(now):
            return
        last = self._queue.last_event_id()
        if self._cursor < 0:
            self._listener.changed()
            self._cursor = self._floor = last
        elif last > self._cursor:
            found = self._queue.changes(self._cursor, limit=KEEP)
            if len(found) == KEEP:  # more than it keeps: older cursors read the log
                self._recent.clear()
                self._floor = self._cursor = found[-1].id
            else:
                self._recent.extend(found)
                self._cursor = max(last, found[-1].id) if found else last
                if len(self._recent) == KEEP:
                    self._floor = self._recent[0].id
        self._read_at = now
        self._notified = False

    def cursor(self) -> int:
        """The newest event id, read now (the cursor of a page about to read the queue)."""
        with self._lock:
            self._refresh(force=True)
            return self._cursor

    def since(self, after: int) -> FeedAnswer:
        """The changes after ``after`` (at most :data:`MOST`), or a reset.

        A cursor ahead of this feed (given by another worker) makes it read the log now;
        one behind its memory is answered from the log, unless it is more than
        :data:`MAX_BEHIND` ids behind (then a reset).
        """
        with self._lock:
            self._refresh(force=after > self._cursor)
            if after > self._cursor:
                return FeedAnswer(self._cursor, True, [])
            if after >= self._floor:
                changes = [change for change in self._recent if change.id > after][:MOST]
                cursor = changes[-1].id if len(changes) == MOST else self._cursor
                return FeedAnswer(cursor, False, changes)
            if self._floor - after > MAX_BEHIND:
                return FeedAnswer(self._cursor, True, [])
            changes = self._queue.changes(after, limit=MOST)
            if len(changes) == MOST:
                return FeedAnswer(changes[-1].id, False, changes)
            cursor = max(self._cursor, changes[-1].id) if changes else self._cursor
            return FeedAnswer(cursor, False, changes)

    def close(self) -> None:
        """Stop listening."""
        with self._lock:
            self._listener.close()


_feeds_lock = threading.Lock()


def feed_of(state: ServiceState) -> ChangeFeed:
    """The worker's :class:`ChangeFeed` (made on first use; closed with the state)."""
    feed = state.extra.get("queue_feed")
    if feed is None:
        with _feeds_lock:
            feed = state.extra.get("queue_feed")
            if feed is None:
                feed = ChangeFeed(state.store.queue, listen_queue(state.settings.store))
                state.extra["queue_feed"] = feed
                state.closers.append(feed.close)
    return cast(ChangeFeed, feed)


# ------------------------------------------------------------------------------ route
class QueueChangeOut(BaseModel):
    """One change of a queue item."""

    id: int
    at: float
    task_id: str
    item_id: int
    kind: str
    change: str
    reviewer: str | None
    label: int | None


class QueueChangesOut(BaseModel):
    """The queue's changes after a cursor."""

    cursor: int
    reset: bool
    poll_ms: int
    changes: list[QueueChangeOut]


def _whole_number(value: Any) -> Any:
    """A cursor is written in digits only (``0.0`` or ``1e3`` is refused, not rounded)."""
    digits = value.removeprefix("-") if isinstance(value, str) else "0"
    if not (digits.isascii() and digits.isdigit()):
        raise ValueError(f"a cursor is a whole number written in digits; got {value!r}")
    return value


_Cursor = Annotated[int, Field(ge=0, le=2**62), BeforeValidator(_whole_number)]

changes_router = APIRouter(tags=["queue"], dependencies=[Depends(strict_query)])


@changes_router.get(
    "/v1/queue:changes",
    response_model=QueueChangesOut,
    responses=responses(401, 403, 422, 503),
)
async def queue_changes(
    principal: Annotated[Principal, Depends(require("reviewer", "viewer"))],
    state: Annotated[ServiceState, Depends(get_state)],
    after: Annotated[
        _Cursor | None,
        Query(
            description="The `cursor` of the previous answer; without it, only the current "
            "cursor (no changes).",
        ),
    ] = None,
) -> dict[str, Any]:
    """What changed in the review queue since `after`, whichever worker changed it.

    Poll every `poll_ms` with the last `cursor`. `reset: true` means the cursor is too
    old (or unknown): reload the queue, then go on from the new cursor.
    """
    feed = feed_of(state)
    if after is None:
        cursor = await run_in_threadpool(feed.cursor)
        return {"cursor": cursor, "reset": False, "poll_ms": POLL_MS, "changes": []}
    answer = await run_in_threadpool(feed.since, after)
    return {
        "cursor": answer.cursor,
        "reset": answer.reset,
        "poll_ms": POLL_MS,
        "changes": [change.to_dict() for change in answer.changes],
    }
