"""The :class:`Store`: tasks and their append-only events, plus the review queue.

Writes go through the store's group-commit writer (see :mod:`failwise.store._writer`)
and return once committed; reads run on their own connections and never wait for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

from failwise.exceptions import InputError
from failwise.store._backend import Backend, Row, Tx
from failwise.store._checks import check_at, check_label, check_payload, check_task_id, dump_json
from failwise.store._decisions import DecisionLike, build_record
from failwise.store._errors import StoreError, unknown_task
from failwise.store._events import (
    FEEDBACK_OUTCOMES,
    OWNING_CALL,
    RECORDABLE_KINDS,
    EventKind,
)
from failwise.store._keys import ApiKeys
from failwise.store._labels import StoreLabels
from failwise.store._monitor_log import MonitorLog
from failwise.store._monitor_reads import MonitorReads
from failwise.store._queue import Queue
from failwise.store._queue_items import QueueRequest
from failwise.store._reads import StoreReads
from failwise.store._rollups import MetricRollups
from failwise.store._writer import GroupCommitWriter

__all__ = ["DecisionLike", "Store"]

_APPEND_EVENT = """
INSERT INTO events (task_id, kind, at, label, payload)
SELECT task_id, CAST(? AS TEXT), CAST(? AS {float}), CAST(? AS INTEGER), CAST(? AS TEXT)
FROM tasks WHERE task_id = ?
RETURNING id
"""


# ------------------------------------------------------------------------------ operations
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
class Store(StoreReads, StoreLabels, MonitorLog, MonitorReads, MetricRollups):
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
    keys : ApiKeys
        The HTTP service's API keys and shared secrets.
    """

    def __init__(self, backend: Backend, *, max_batch: int = 512) -> None:
        self._backend = backend
        self._closed = False
        self.url = backend.redacted_url
        self.backend = backend.name
        self.schema_version = int(getattr(backend, "schema_version", 0))
        self._writer = GroupCommitWriter(backend, max_batch=max_batch)
        self.queue = Queue(write=self._write, read=self._read, url=self.url, backend=self.backend)
        self.keys = ApiKeys(write=self._write, read=self._read, backend=self.backend)

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

    def migrated_version(self) -> int:
        """The schema version the database is at now (a read; raises StoreError when the
        database cannot be reached). Equal to :data:`~failwise.store.SCHEMA_VERSION` once
        every migration is applied."""
        rows = self._read("SELECT COALESCE(MAX(version), 0) FROM schema_version")
        return int(rows[0][0])

    # ---------------------------------------------------------------- writes
    def record_decision(
        self,
        task_id: str,
        decision: DecisionLike,
        *,
        at: float | None = None,
        enqueue: QueueRequest | Sequence[QueueRequest] | None = None,
    ) -> list[int]:
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
        enqueue : list of QueueRequest, optional
            Review-queue items for this task (an escalation, an audit sample), written in
            the decision's transaction together with their ``<kind>_created`` events:
            the decision and its items are committed together or not at all.

        Returns
        -------
        list of int
            The ids of the queue items written, in the order of ``enqueue`` (empty
            without it).

        Raises
        ------
        DuplicateTaskError
            When ``task_id`` exists already; nothing is written.
        InputError
            When the decision is malformed (unknown action, confidence outside [0, 1],
            NaN, values JSON cannot hold), or a queue request names another task or
            asks twice for the same kind; nothing is written.
        """
        return self.record_decisions([(task_id, decision)], at=at, enqueue=enqueue)

    def record_decisions(
        self,
        items: Sequence[tuple[str, DecisionLike] | tuple[str, DecisionLike, float]],
        *,
        at: float | None = None,
        enqueue: QueueRequest | Sequence[QueueRequest] | None = None,
        features: Sequence[Any] | None = None,
    ) -> list[int]:
        """Open many tasks in one transaction: all are written, or none.

        Parameters
        ----------
        items : sequence of (task_id, decision) or (task_id, decision, at)
            As for :meth:`record_decision`; a per-item time overrides ``at``.
        at : float, optional
            Unix seconds of the decisions without their own time; now by default.
        enqueue : list of QueueRequest, optional
            Review-queue items for tasks among ``items``, at most one of each kind per
            task; written (with their ``<kind>_created`` events, at their task's
            decision time) in the same transaction as the decisions.
        features : sequence, optional
            One 1-D feature vector (or None) per item: the input's compact features, kept
            in ``task_features`` as float16 for the monitor (same transaction).

        Returns
        -------
        list of int
            The ids of the queue items written, in the order of ``enqueue``.

        Raises
        ------
        DuplicateTaskError
            When any task id exists already or appears twice in ``items``.
        InputError
            When a decision or a queue request is malformed; every one is checked
            before anything is written.

        Examples
        --------
        >>> import tempfile
        >>> from failwise import store
        >>> folder = tempfile.mkdtemp()
        >>> with store.open(f"sqlite:///{folder}/events.db") as events:
        ...     ids = events.record_decisions(
        ...         [("t1", {"action": "answer", "label": 2}), ("t2", {"action": "escalate"})],
        ...         enqueue=[store.QueueRequest("t2", "escalation", "low confidence")],
        ...     )
        ...     [e.kind for e in events.events("t2")]
        ['decision', 'escalation_created']
        """
        op = build_record(items, at, enqueue, features)
        if op is None:
            return []
        ids: list[int] = self._write(op)
        return ids

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
