"""`InMemoryEventSink`: the guard's event sink, in memory, for unit tests.

It keeps what a :class:`~failwise.runtime.Guard` records — each task's decision payload
and the review-queue requests written with it — in plain dictionaries and lists, with the
semantics of the store's ``record_decisions(items, *, at=None, enqueue=None)``: a call
records all of its decisions and queue requests, or (on a duplicate task id, a malformed
request or a simulated failure) none of them.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from failwise._validation import describe
from failwise.exceptions import FailwiseError, InputError

__all__ = ["InMemoryEventSink", "RecordedDecision", "SinkUnavailableError"]

_KINDS = ("escalation", "audit")


class SinkUnavailableError(FailwiseError):
    """The failure an :class:`InMemoryEventSink` raises when told to fail."""


@dataclass(frozen=True)
class RecordedDecision:
    """One recorded task: its id, decision time and decision payload."""

    task_id: str
    at: float
    payload: Mapping[str, Any]


def _payload(decision: Any, task_id: str) -> dict[str, Any]:
    if isinstance(decision, Mapping):
        return dict(decision)
    to_dict = getattr(decision, "to_dict", None)
    if callable(to_dict):
        result = to_dict()
        if isinstance(result, Mapping):
            return dict(result)
    raise InputError(
        f"Task {task_id!r}: the decision must be a Decision or a mapping; got {describe(decision)}."
    )


def _check_request(request: Any, task_ids: set[str]) -> Any:
    task_id = getattr(request, "task_id", None)
    kind = getattr(request, "kind", None)
    reason = getattr(request, "reason", None)
    priority = getattr(request, "priority", 0.0)
    if not isinstance(task_id, str) or kind not in _KINDS or not isinstance(reason, str):
        raise InputError(
            f"Each `enqueue` request must be a failwise.store.QueueRequest(task_id, kind, "
            f"reason, priority) with kind in {_KINDS}; got {describe(request)}."
        )
    if isinstance(priority, bool) or not isinstance(priority, (int, float)):
        raise InputError(f"Queue request priority must be a number; got {describe(priority)}.")
    if not math.isfinite(float(priority)):
        raise InputError(f"Queue request priority must be finite; got {priority!r}.")
    if task_id not in task_ids:
        raise InputError(
            f"Queue request for task {task_id!r}, which is not among the decisions of this "
            "call; enqueue a task together with its decision."
        )
    return request


class InMemoryEventSink:
    """An event sink that keeps decisions and queue requests in memory.

    Pass it as a guard's ``store=`` in unit tests to see exactly what the guard records,
    without a database. Like the real store, one call is all or nothing; ``fail_next``
    makes the next calls fail, to test how your code handles a store outage.

    Attributes
    ----------
    decisions : dict of str to RecordedDecision
        Every recorded task, by task id, in recording order.
    queued : list of QueueRequest
        Every queue request recorded, in order.
    calls : int
        Number of successful record calls (a batch is one call).

    Examples
    --------
    >>> from failwise.store import QueueRequest
    >>> from failwise.testing import InMemoryEventSink, SinkUnavailableError
    >>> sink = InMemoryEventSink()
    >>> sink.record_decisions(
    ...     [("t1", {"action": "answer"}), ("t2", {"action": "escalate"})],
    ...     enqueue=[QueueRequest("t2", "escalation", "low confidence")],
    ... )
    [0]
    >>> list(sink.decisions), [r.task_id for r in sink.queued], sink.calls
    (['t1', 't2'], ['t2'], 1)
    >>> sink.fail_next()
    >>> try:
    ...     sink.record_decision("t3", {"action": "answer"})
    ... except SinkUnavailableError as error:
    ...     print(error)
    InMemoryEventSink told to fail (fail_next); nothing of this call was recorded.
    >>> "t3" in sink.decisions
    False
    """

    def __init__(self) -> None:
        self.decisions: dict[str, RecordedDecision] = {}
        self.queued: list[Any] = []
        self.features: dict[str, Any] = {}
        self.calls = 0
        self._failures: list[BaseException | None] = []
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"InMemoryEventSink(decisions={len(self.decisions)}, queued={len(self.queued)}, "
            f"calls={self.calls})"
        )

    def fail_next(self, times: int = 1, error: BaseException | None = None) -> None:
        """Make the next ``times`` record calls raise ``error`` (default: SinkUnavailableError)."""
        if isinstance(times, bool) or not isinstance(times, int) or times < 1:
            raise InputError(f"`times` must be an int ≥ 1; got {describe(times)}.")
        if error is not None and not isinstance(error, BaseException):
            raise InputError(f"`error` must be an exception or None; got {describe(error)}.")
        with self._lock:
            self._failures.extend([error] * times)

    def record_decision(
        self,
        task_id: str,
        decision: Any,
        *,
        at: float | None = None,
        enqueue: Any = None,
    ) -> list[int]:
        """Record one decision (and its queue requests); see :meth:`record_decisions`."""
        return self.record_decisions([(task_id, decision)], at=at, enqueue=enqueue)

    def record_decisions(
        self,
        items: Sequence[tuple[str, Any] | tuple[str, Any, float]],
        *,
        at: float | None = None,
        enqueue: Any = None,
        features: Sequence[Any] | None = None,
    ) -> list[int]:
        """Record decisions and their queue requests: all of them, or none.

        Parameters
        ----------
        items : sequence of (task_id, decision) or (task_id, decision, at)
            ``decision`` is a :class:`~failwise.Decision` or its ``to_dict()`` mapping.
        at : float, optional
            Unix seconds of the decisions without their own time; now by default.
        enqueue : QueueRequest or sequence of QueueRequest, optional
            Queue requests for tasks among ``items``.
        features : sequence, optional
            One feature vector (or None) per item, kept in :attr:`features` by task id.

        Returns
        -------
        list of int
            Positions of the requests in :attr:`queued`, in the order of ``enqueue``.
        """
        now = time.time() if at is None else float(at)
        rows: list[RecordedDecision] = []
        seen: set[str] = set()
        for entry in items:
            if not isinstance(entry, tuple) or len(entry) not in (2, 3):
                raise InputError(
                    f"Each item must be (task_id, decision) or (task_id, decision, at); got "
                    f"{describe(entry)}."
                )
            task_id = entry[0]
            if not isinstance(task_id, str) or not task_id:
                raise InputError(f"A task id must be a non-empty str; got {describe(task_id)}.")
            when = float(entry[2]) if len(entry) == 3 else now
            rows.append(RecordedDecision(task_id, when, _payload(entry[1], task_id)))
            if task_id in seen:
                raise InputError(f"Task {task_id!r} appears twice in one call.")
            seen.add(task_id)
        if enqueue is None:
            requests: list[Any] = []
        elif isinstance(enqueue, Sequence) and not isinstance(enqueue, (str, bytes)):
            requests = list(enqueue)
        else:
            requests = [enqueue]
        checked = [_check_request(r, seen) for r in requests]
        if features is not None and len(features) != len(rows):
            raise InputError(
                f"`features` has {len(features)} entries for {len(rows)} items; pass one "
                "vector (or None) per item."
            )
        with self._lock:
            if self._failures:
                error = self._failures.pop(0)
                raise (
                    error
                    if error is not None
                    else SinkUnavailableError(
                        "InMemoryEventSink told to fail (fail_next); nothing of this call was "
                        "recorded."
                    )
                )
            duplicate = [t for t in seen if t in self.decisions]
            if duplicate:
                raise InputError(f"Task {duplicate[0]!r} was recorded already.")
            for row in rows:
                self.decisions[row.task_id] = row
            if features is not None:
                for row, vector in zip(rows, features, strict=True):
                    if vector is not None:
                        self.features[row.task_id] = vector
            first = len(self.queued)
            self.queued.extend(checked)
            self.calls += 1
        return list(range(first, first + len(checked)))

    def queued_for(self, task_id: str) -> list[Any]:
        """The queue requests recorded for one task."""
        return [r for r in self.queued if r.task_id == task_id]
