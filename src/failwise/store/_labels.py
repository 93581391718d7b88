"""Labelled tasks: the label humans gave a task, the most trusted source winning.

:meth:`~failwise.store.Store.labelled_tasks` yields each labelled task with its decision;
:meth:`~failwise.store.Store.labelled_predictions` only the columns a reliability diagram
needs (the recorded top label and confidence), read without parsing any decision.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from failwise.store._backend import Row
from failwise.store._reads import check_size, check_window

__all__ = ["LABEL_SOURCES", "LabelledPrediction", "LabelledTask", "StoreLabels"]

#: Where a human label comes from, most trusted first: a reviewer who resolved the
#: task's escalation, a reviewer who audited it (queue or ``audit_label``), the user's
#: correction, the user's acceptance of the delivered output.
LABEL_SOURCES: tuple[str, ...] = ("escalation", "audit", "correction", "accepted")

_LABEL_KINDS = {
    "escalation_resolved": "escalation",
    "audit_resolved": "audit",
    "audit_label": "audit",
    "feedback_corrected": "correction",
    "feedback_accepted": "accepted",
    "clarification_choice": "choice",
}
#: A ``<kind>_reopened`` event undoes the task's earlier ``<kind>_resolved`` labels.
_UNDO_KINDS = {"escalation_reopened": "escalation_resolved", "audit_reopened": "audit_resolved"}

_KINDS = ", ".join(f"'{kind}'" for kind in (*_LABEL_KINDS, *_UNDO_KINDS))
_Read = TypeVar("_Read", "LabelledTask", "LabelledPrediction")
_JOIN_DECISION = "JOIN events d ON d.task_id = t.task_id AND d.kind = 'decision' "


@dataclass(frozen=True)
class LabelledTask:
    """A task with the label a human gave it.

    Attributes
    ----------
    task_id : str
    decided_at : float
        Unix seconds of the decision.
    decision : dict
        The decision as recorded (``Decision.to_dict()``).
    label : int
        The human label; ``-1`` marks an out-of-scope request.
    source : {"escalation", "audit", "correction", "accepted"}
        Where the label comes from (see :data:`LABEL_SOURCES`; the most trusted one
        wins, and within a source the latest).
    labelled_at : float
        Unix seconds of the event that gave the label.
    review_probability : float or None
        The probability, fixed at decision time, that the task was sent to a human
        (the decision's ``review_probability``); None for decisions recorded without it.
    """

    task_id: str
    decided_at: float
    decision: dict[str, Any]
    label: int
    source: str
    labelled_at: float
    review_probability: float | None


@dataclass(frozen=True)
class LabelledPrediction:
    """A labelled task's recorded top label and confidence, and the human label.

    Attributes
    ----------
    task_id : str
    decided_at : float
    confidence : float or None
        The decision's ``confidence`` (None when it recorded none).
    predicted : int or None
        The decision's ``predicted`` top label (None when it recorded none).
    label : int
        The winning human label (as :attr:`LabelledTask.label`).
    """

    task_id: str
    decided_at: float
    confidence: float | None
    predicted: int | None
    label: int


def _winner(action: str, label: Any, events: list[Row]) -> tuple[int, float, int, int] | None:
    """The winning ``(rank, at, id, label)`` of a task's label events ``(kind, at, label, id)``."""
    choice = None
    candidates: list[tuple[tuple[int, float, int, int], str]] = []  # (rank, at, id, label)
    for kind, at, event_label, event_id in events:
        if str(kind) in _UNDO_KINDS:
            undone = _UNDO_KINDS[str(kind)]
            candidates = [c for c in candidates if c[1] != undone]
            continue
        source = _LABEL_KINDS[str(kind)]
        if source == "choice":
            choice = event_label
            continue
        if source == "accepted":
            event_label = choice if action == "clarify" else label
            if action not in ("answer", "fallback", "clarify"):
                event_label = None
        if event_label is None:
            continue
        rank = -LABEL_SOURCES.index(source)
        candidates.append(((rank, float(at), int(event_id), int(event_label)), str(kind)))
    if not candidates:
        return None
    return max(candidates, key=lambda c: c[0][:3])[0]


def _labelled(task: Row, events: list[Row]) -> LabelledTask | None:
    """``task`` is ``(task_id, created_at, action, label, payload)``."""
    best = _winner(str(task[2]), task[3], events)
    if best is None:
        return None
    decision = json.loads(str(task[4]))
    probability = decision.get("review_probability")
    return LabelledTask(
        task_id=str(task[0]),
        decided_at=float(task[1]),
        decision=decision,
        label=best[3],
        source=LABEL_SOURCES[-best[0]],
        labelled_at=best[1],
        review_probability=None if probability is None else float(probability),
    )


def _prediction(task: Row, events: list[Row]) -> LabelledPrediction | None:
    """``task`` is ``(task_id, created_at, action, label, confidence, predicted)``."""
    best = _winner(str(task[2]), task[3], events)
    if best is None:
        return None
    confidence = None if task[4] is None else float(task[4])
    predicted = None if task[5] is None else int(task[5])
    return LabelledPrediction(str(task[0]), float(task[1]), confidence, predicted, best[3])


def _detail_sql(columns: str, join: str) -> str:
    """The tasks from one key ``(created_at, task_id)`` to another, with their label events
    (read through the ``events_labels`` index)."""
    return (
        f"SELECT t.task_id, t.created_at, t.action, t.label, {columns}, "
        f"e.kind, e.at, e.label, e.id FROM tasks t {join}"
        f"JOIN events e ON e.task_id = t.task_id AND e.kind IN ({_KINDS}) "
        "WHERE (t.created_at, t.task_id) >= (?, ?) AND (t.created_at, t.task_id) <= (?, ?) "
        "ORDER BY t.created_at, t.task_id, e.at, e.id"
    )


class StoreLabels:
    """The label reads of :class:`~failwise.store.Store`."""

    def _read(self, template: str, params: Sequence[Any] = ()) -> list[Row]:
        raise NotImplementedError  # pragma: no cover  (Store implements it)

    def labelled_tasks(
        self,
        since: float | None = None,
        until: float | None = None,
        *,
        batch_size: int = 1_000,
    ) -> Iterator[LabelledTask]:
        """Every task decided in ``[since, until)`` that a human labelled, by decision time.

        Parameters
        ----------
        since, until : float, optional
            Unix seconds of the decision; unbounded by default.
        batch_size : int, default=1_000
            Tasks read per query.

        Yields
        ------
        LabelledTask
            One per labelled task: the decision, the label, its source and the decision's
            ``review_probability`` (the inverse-probability weight of an escalation or
            audit label is ``1 / review_probability``).

        Examples
        --------
        >>> import tempfile
        >>> from failwise import store
        >>> folder = tempfile.mkdtemp()
        >>> with store.open(f"sqlite:///{folder}/events.db") as events:
        ...     decision = {"action": "answer", "label": 3, "review_probability": 0.1}
        ...     audit = store.QueueRequest("t1", "audit", "sampled")
        ...     ids = events.record_decision("t1", decision, at=1.0, enqueue=[audit])
        ...     _ = events.queue.claim("ann", at=2.0)
        ...     _ = events.queue.resolve(ids[0], label=4, at=3.0)
        ...     _ = events.record_decision("t2", {"action": "answer", "label": 5}, at=4.0)
        ...     _ = events.feedback("t2", "accepted", at=5.0)
        ...     labelled = list(events.labelled_tasks())
        >>> [(t.task_id, t.label, t.source, t.review_probability) for t in labelled]
        [('t1', 4, 'audit', 0.1), ('t2', 5, 'accepted', None)]
        """
        return self._labels(since, until, batch_size, "d.payload", _JOIN_DECISION, _labelled)

    def labelled_predictions(
        self,
        since: float | None = None,
        until: float | None = None,
        *,
        batch_size: int = 5_000,
    ) -> Iterator[LabelledPrediction]:
        """The labelled tasks of :meth:`labelled_tasks`, with only their top label and confidence.

        The same tasks and labels, read from the task's columns (no decision is parsed):
        what a reliability diagram needs.

        Parameters
        ----------
        since, until : float, optional
            Unix seconds of the decision; unbounded by default.
        batch_size : int, default=5_000
            Tasks read per query.

        Examples
        --------
        >>> import tempfile
        >>> from failwise import store
        >>> folder = tempfile.mkdtemp()
        >>> with store.open(f"sqlite:///{folder}/events.db") as events:
        ...     decision = {"action": "answer", "label": 2, "predicted": 2, "confidence": 0.8}
        ...     _ = events.record_decision("t1", decision, at=1.0)
        ...     _ = events.feedback("t1", "corrected", label=4, at=2.0)
        ...     found = list(events.labelled_predictions())
        >>> [(p.task_id, p.confidence, p.predicted, p.label) for p in found]
        [('t1', 0.8, 2, 4)]
        """
        return self._labels(since, until, batch_size, "t.confidence, t.predicted", "", _prediction)

    def _labels(
        self,
        since: Any,
        until: Any,
        batch_size: Any,
        columns: str,
        join: str,
        build: Callable[[Row, list[Row]], _Read | None],
    ) -> Iterator[_Read]:
        """``build(task, events)`` of each labelled task in ``[since, until)`` (checked now,
        read lazily), skipping the tasks it returns None for."""
        low, high = check_window(since, until)
        size = check_size(batch_size, "batch_size")
        rows = self._labelled_rows(low, high, size, columns, join)
        return (found for row in rows if (found := build(*row)) is not None)

    def _labelled_rows(
        self, low: float | None, high: float | None, size: int, columns: str, join: str
    ) -> Iterator[tuple[Row, list[Row]]]:
        """Each task with label events: ``(task_id, created_at, action, label, *columns)``
        and its events ``(kind, at, label, id)``, by decision time, ``size`` tasks a query."""
        window = "created_at >= ? AND created_at < ?"
        bounds = (-1.0e300 if low is None else low, 1.0e300 if high is None else high)
        keys_sql = f"SELECT created_at, task_id FROM tasks WHERE {window}{{after}} "
        keys_sql += "ORDER BY created_at, task_id LIMIT ?"
        width = 4 + len(columns.split(","))
        detail_sql = _detail_sql(columns, join)
        after: tuple[Any, ...] = ()
        while True:
            clause = " AND (created_at, task_id) > (?, ?)" if after else ""
            keys = self._read(keys_sql.replace("{after}", clause), (*bounds, *after, size))
            if not keys:
                return
            first, last = keys[0], keys[-1]
            rows = self._read(detail_sql, (first[0], first[1], last[0], last[1]))
            current: list[Row] = []
            for position, row in enumerate(rows):
                current.append(row[width:])
                if position + 1 == len(rows) or rows[position + 1][0] != row[0]:
                    yield row[:width], current
                    current = []
            if len(keys) < size:
                return
            after = (last[0], last[1])
