"""The event log and the review queue: every decision and what followed it, stored durably.

Open a store from a URL: ``sqlite:///events.db`` (a file, the embedded default) or
``postgresql://user:password@host:5432/db`` (production; needs the ``postgres`` extra).
Both hold the same schema, created and migrated on first open.

A *task* is one user request. :meth:`Store.record_decision` opens it (with its
escalation or audit item, when it has one, in the same transaction); every later fact —
user feedback, a clarification pick, a fallback result, the life of an escalation or an
audit sample in :attr:`Store.queue` — is an append-only :class:`Event` of that task.
Every write returns only once it is durable: it survives ``kill -9`` of the process.
Concurrent writers are grouped into shared transactions (group commit), so durability
costs one disk flush per batch rather than per call.

Examples
--------
>>> import tempfile
>>> from failwise import store
>>> folder = tempfile.mkdtemp()
>>> with store.open(f"sqlite:///{folder}/events.db") as events:
...     escalate = store.QueueRequest("t1", "escalation", reason="low confidence")
...     decision = {"action": "escalate", "confidence": 0.41, "predicted": 3}
...     _ = events.record_decision("t1", decision, enqueue=[escalate])
...     item = events.queue.claim("alice")
...     _ = events.queue.resolve(item.id, label=7, reviewer="alice")
...     [(e.kind, e.label) for e in events.events("t1")]
[('decision', None), ('escalation_created', None), ('escalation_claimed', None),
 ('escalation_resolved', 7)]
"""

from __future__ import annotations

from numbers import Integral

import numpy as np

from failwise._params import Interval, Seconds, check_param
from failwise.exceptions import InputError
from failwise.store._backend import Backend
from failwise.store._errors import (
    DuplicateTaskError,
    QueueStateError,
    StoreError,
    UnknownItemError,
    UnknownTaskError,
)
from failwise.store._events import (
    FEEDBACK_OUTCOMES,
    QUEUE_KINDS,
    RECORDABLE_KINDS,
    Event,
    EventKind,
    Task,
)
from failwise.store._keys import ROLES, ApiKey, ApiKeys, NewApiKey, UnknownKeyError
from failwise.store._labels import LABEL_SOURCES, LabelledPrediction, LabelledTask
from failwise.store._monitor_log import (
    FINDING_SEVERITIES,
    MONITOR_ROW_COLUMNS,
    FeatureRows,
    QuarantineZone,
    StoredFinding,
    StoredWindow,
    WindowConflictError,
    decode_vectors,
    encode_features,
)
from failwise.store._queue import QUEUE_STATES, Queue, QueueItem
from failwise.store._queue_changes import (
    CHANGE_KINDS,
    QUEUE_CHANNEL,
    QueueChange,
    QueueListener,
    listen_queue,
)
from failwise.store._queue_filter import FILTER_STATES, QueueFilter
from failwise.store._queue_items import QueueRequest
from failwise.store._queue_levels import ServiceLevels
from failwise.store._queue_stats import QueueHealth, ReviewerStats
from failwise.store._queue_views import (
    BulkResult,
    ItemDetail,
    QueuePage,
    QueueRow,
    context_preview,
)
from failwise.store._reads import (
    TASK_VIEW_COLUMNS,
    EventCursor,
    EventPage,
    task_view_sql,
)
from failwise.store._rollups import ROLLUP_S, SETTLE_S, TaskViewQuery
from failwise.store._schema import SCHEMA_VERSION, TABLES, Column, Table
from failwise.store._store import Store
from failwise.store._url import parse_url, redact

#: Pool and batch sizes; time-outs.
_COUNT = [Interval(Integral, 1, None)]
_SECONDS = [Seconds()]

__all__ = [
    "CHANGE_KINDS",
    "FEEDBACK_OUTCOMES",
    "FILTER_STATES",
    "FINDING_SEVERITIES",
    "LABEL_SOURCES",
    "MONITOR_ROW_COLUMNS",
    "QUEUE_CHANNEL",
    "QUEUE_KINDS",
    "QUEUE_STATES",
    "RECORDABLE_KINDS",
    "ROLES",
    "ROLLUP_S",
    "SCHEMA_VERSION",
    "SETTLE_S",
    "TABLES",
    "TASK_VIEW_COLUMNS",
    "ApiKey",
    "ApiKeys",
    "BulkResult",
    "Column",
    "DuplicateTaskError",
    "Event",
    "EventCursor",
    "EventKind",
    "EventPage",
    "FeatureRows",
    "ItemDetail",
    "LabelledPrediction",
    "LabelledTask",
    "NewApiKey",
    "QuarantineZone",
    "Queue",
    "QueueChange",
    "QueueFilter",
    "QueueHealth",
    "QueueItem",
    "QueueListener",
    "QueuePage",
    "QueueRequest",
    "QueueRow",
    "QueueStateError",
    "ReviewerStats",
    "ServiceLevels",
    "Store",
    "StoreError",
    "StoredFinding",
    "StoredWindow",
    "Table",
    "Task",
    "TaskViewQuery",
    "UnknownItemError",
    "UnknownKeyError",
    "UnknownTaskError",
    "WindowConflictError",
    "context_preview",
    "decode_vectors",
    "encode_features",
    "listen_queue",
    "open",
    "redact",
    "task_view_sql",
]


def open(
    url: str,
    *,
    pool_size: int = 4,
    connect_timeout_s: float = 10.0,
    busy_timeout_s: float = 60.0,
    max_batch: int = 512,
    create: bool = True,
) -> Store:
    """Open (and create or migrate, on first use) the store at ``url``.

    Parameters
    ----------
    url : str
        ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` (optionally
        ``?synchronous=normal``, see :mod:`failwise.store._sqlite`), or
        ``postgresql://user:password@host:port/database`` with any libpq options in the
        query string.
    pool_size : int, default=4
        Most connections kept for reads (PostgreSQL: the pool's size, writer included).
    connect_timeout_s : float, default=10.0
        PostgreSQL: how long to wait for the server.
    busy_timeout_s : float, default=60.0
        SQLite: how long a write waits while another process holds the write lock.
    max_batch : int, default=512
        Most calls committed together by the group-commit writer.
    create : bool, default=True
        Create the store when there is none at ``url``. Pass False to open only an
        existing store (what read-only tools such as ``export`` and ``measure`` do): a
        SQLite file that does not exist, or a database without failwise's tables, is then
        an error instead of a new, empty store.

    Returns
    -------
    Store

    Raises
    ------
    InputError
        When the URL or an option is malformed.
    StoreError
        When the database cannot be reached or opened (the message names the URL without
        its password), the ``postgres`` extra is missing, or ``create=False`` and there
        is no store at ``url``.

    Examples
    --------
    >>> import tempfile
    >>> from failwise import store
    >>> folder = tempfile.mkdtemp()
    >>> try:
    ...     store.open(f"sqlite:///{folder}/typo.db", create=False)
    ... except store.StoreError as error:
    ...     print(str(error)[:21], "typo.db" in str(error))
    No failwise store at  True
    """
    parsed = parse_url(url)
    size = int(check_param("pool_size", pool_size, _COUNT, where="open"))
    batch = int(check_param("max_batch", max_batch, _COUNT, where="open"))
    connect_s = float(check_param("connect_timeout_s", connect_timeout_s, _SECONDS, where="open"))
    busy_s = float(check_param("busy_timeout_s", busy_timeout_s, _SECONDS, where="open"))
    if not isinstance(create, (bool, np.bool_)):
        raise InputError(
            f"`create` must be True or False; got {create!r}. Pass create=False to open only "
            "an existing store."
        )
    backend: Backend
    if parsed.backend == "sqlite":
        from failwise.store._sqlite import SQLiteBackend

        backend = SQLiteBackend(parsed, pool_size=size, busy_timeout_s=busy_s, create=bool(create))
    else:
        from failwise.store._postgres import PostgresBackend

        backend = PostgresBackend(
            parsed, pool_size=size, connect_timeout_s=connect_s, create=bool(create)
        )
    return Store(backend, max_batch=batch)
