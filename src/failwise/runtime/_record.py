"""Recording decisions: one event-sink call per batch, decisions and queue items together.

Every decision and the queue items it asks for (an ``escalation`` for each escalate
decision, an ``audit`` for each decision the audit draw selected) go to the store in ONE
``record_decisions(items, enqueue=[...])`` call, which commits them in one transaction
(contract C1 of :class:`~failwise._protocols.EventSink`): a crash never leaves an escalated
task without its queue item, nor a queue item without its decision. The recorded payload
is ``decision.to_dict()`` of the returned decision, exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from failwise._validation import describe
from failwise.exceptions import InputError
from failwise.policy import Action, Decision
from failwise.runtime._attempt import short
from failwise.runtime._audit import audit_reason
from failwise.store import QueueRequest, StoreError

__all__ = ["DecisionNotRecordedError", "Recorder", "check_sink", "check_task_ids"]


class DecisionNotRecordedError(StoreError):
    """The ladder decided, but the store did not record the decisions (nor their queue items).

    The product rule is that no accepted event is ever lost silently, so the guard raises
    this instead of returning. Decisions and queue items are written in one transaction, so
    none of them was written. The decisions are attached: serve them to the user if you
    must, and record them again once the store is back (``store.record_decisions(
    [(d.task_id, d.to_dict()) for d in err.decisions], enqueue=err.queue_requests)``).

    Attributes
    ----------
    decisions : list of Decision
        What the ladder decided, in input order.
    queue_requests : list of QueueRequest
        The escalation and audit items they asked for.
    decision_recorded : bool
        Always False (kept for code written against the two-step recording).
    """

    def __init__(
        self,
        message: str,
        decisions: list[Decision],
        decision_recorded: bool = False,
        queue_requests: Sequence[QueueRequest] = (),
    ) -> None:
        super().__init__(message)
        self.decisions = decisions
        self.decision_recorded = decision_recorded
        self.queue_requests = list(queue_requests)

    @property
    def decision(self) -> Decision:
        """The first (for ``decide``, the only) decision."""
        return self.decisions[0]


def check_sink(store: Any) -> None:
    """Raise unless ``store`` can record decisions with their queue items."""
    if store is not None and not callable(getattr(store, "record_decisions", None)):
        raise InputError(
            f"`store` must be an event store from `failwise.store.open(url)` (anything with "
            f"`record_decisions(items, enqueue=...)`); got {describe(store)}."
        )


def check_task_ids(task_ids: Any, n: int) -> list[str | None]:
    """One task id (a non-empty str of at most 256 characters, or None for a fresh one) per
    input. A repeated or taken id is the store's to refuse (``DuplicateTaskError``)."""
    if task_ids is None:
        return [None] * n
    if isinstance(task_ids, (str, bytes, Mapping)) or not isinstance(task_ids, Sequence):
        raise InputError(
            f"`task_ids` must be a sequence with one task id (or None) per input; got "
            f"{describe(task_ids)}."
        )
    if len(task_ids) != n:
        raise InputError(
            f"`task_ids` has {len(task_ids)} entries for {n} inputs; pass one per input."
        )
    for position, task_id in enumerate(task_ids):
        if task_id is not None and (
            not isinstance(task_id, str) or not task_id.strip() or len(task_id) > 256
        ):
            raise InputError(
                f"`task_ids[{position}]` must be None or a non-empty str of at most 256 "
                f"characters; got {describe(task_id)}."
            )
    return list(task_ids)


class Recorder:
    """Writes a guard's decisions and their queue items to an event sink."""

    def __init__(self, store: Any) -> None:
        check_sink(store)
        self.store = store

    @staticmethod
    def requests(decisions: Sequence[Decision]) -> list[QueueRequest]:
        """The escalation and audit items ``decisions`` ask for, in decision order."""
        out: list[QueueRequest] = []
        for d in decisions:
            task_id = str(d.task_id)
            if d.review == "escalation":
                priority = 1.0 if "failure" in d.extra else 1.0 - d.confidence
                out.append(QueueRequest(task_id, "escalation", d.reason, priority))
            elif d.review == "audit":
                reason = audit_reason(d.review_probability, d.confidence, d.action.value)
                out.append(QueueRequest(task_id, "audit", reason, 1.0 - d.confidence))
        return out

    def record(self, decisions: list[Decision], features: Sequence[Any] | None = None) -> None:
        """Record ``decisions``, their queue items and (when given) each one's feature
        vector or None, in one call; raise if it fails."""
        requests = self.requests(decisions)
        items = [(str(d.task_id), d.to_dict()) for d in decisions]
        try:
            if features is None:
                self.store.record_decisions(items, enqueue=requests)
            else:
                self.store.record_decisions(items, enqueue=requests, features=features)
        except Exception as exc:
            escalated = sum(d.action is Action.ESCALATE for d in decisions)
            raise DecisionNotRecordedError(
                f"The store did not record {len(decisions)} decision(s) and their "
                f"{len(requests)} queue item(s) ({escalated} escalation(s)) ({short(exc)}); "
                "none of them was written. The decisions are attached as `.decisions` and "
                "the queue items as `.queue_requests`: record them again once the store is "
                "back.",
                decisions,
                decision_recorded=False,
                queue_requests=requests,
            ) from exc
