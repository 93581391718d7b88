"""What the event log holds: event kinds, :class:`Event` and :class:`Task`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "FEEDBACK_OUTCOMES",
    "QUEUE_KINDS",
    "RECORDABLE_KINDS",
    "Event",
    "EventKind",
    "Task",
]


class EventKind(StrEnum):
    """Every kind of event a task can have, as stored in ``events.kind``."""

    DECISION = "decision"
    FEEDBACK_ACCEPTED = "feedback_accepted"
    FEEDBACK_CORRECTED = "feedback_corrected"
    FEEDBACK_ABANDONED = "feedback_abandoned"
    CLARIFICATION_CHOICE = "clarification_choice"
    FALLBACK_RESULT = "fallback_result"
    AUDIT_LABEL = "audit_label"
    ESCALATION_CREATED = "escalation_created"
    ESCALATION_CLAIMED = "escalation_claimed"
    ESCALATION_RESOLVED = "escalation_resolved"
    ESCALATION_EXPIRED = "escalation_expired"
    ESCALATION_RELEASED = "escalation_released"
    ESCALATION_RENEWED = "escalation_renewed"
    ESCALATION_REOPENED = "escalation_reopened"
    AUDIT_CREATED = "audit_created"
    AUDIT_CLAIMED = "audit_claimed"
    AUDIT_RESOLVED = "audit_resolved"
    AUDIT_EXPIRED = "audit_expired"
    AUDIT_RELEASED = "audit_released"
    AUDIT_RENEWED = "audit_renewed"
    AUDIT_REOPENED = "audit_reopened"


#: User feedback outcomes accepted by :meth:`Store.feedback`.
FEEDBACK_OUTCOMES: tuple[str, ...] = ("accepted", "corrected", "abandoned")

#: The two kinds of queue item: a blocking escalation or a non-blocking audit sample.
QUEUE_KINDS: tuple[str, ...] = ("escalation", "audit")

#: Kinds written through :meth:`Store.record_event`, and whether each needs a label.
#: The others are written by the call that owns them (``record_decision``, ``feedback``,
#: the queue), which keeps the task and queue tables consistent with the log.
RECORDABLE_KINDS: Mapping[str, bool] = {
    EventKind.CLARIFICATION_CHOICE.value: False,
    EventKind.FALLBACK_RESULT.value: False,
    EventKind.AUDIT_LABEL.value: True,
}

#: Which call writes each kind that ``record_event`` refuses.
OWNING_CALL: Mapping[str, str] = {
    EventKind.DECISION.value: "store.record_decision(task_id, decision)",
    **{
        f"feedback_{outcome}": f'store.feedback(task_id, "{outcome}")'
        for outcome in FEEDBACK_OUTCOMES
    },
    **{
        f"{kind}_{change}": f"store.queue.{call}(...)"
        for kind in QUEUE_KINDS
        for change, call in (
            ("created", "enqueue"),
            ("claimed", "claim"),
            ("resolved", "resolve"),
            ("expired", "claim"),
            ("released", "release"),
            ("renewed", "renew"),
            ("reopened", "reopen"),
        )
    },
}


@dataclass(frozen=True)
class Event:
    """One row of the append-only event log.

    Attributes
    ----------
    id : int
        Position in the log (increasing in the order events were appended).
    task_id : str
        The task the event belongs to.
    kind : str
        One of :class:`EventKind`'s values, e.g. ``"decision"`` or ``"feedback_corrected"``.
    at : float
        When it happened, in Unix seconds.
    label : int or None
        The label the event carries: the decision's returned label, a correction, a
        clarification pick, a fallback's answer, a human resolution or an audit label.
        ``-1`` (:data:`failwise.OUT_OF_SCOPE`) marks an input that fits no class.
    payload : dict
        Everything else, as stored (the full decision for ``decision`` events; the queue
        item id, reviewer and note for queue events).
    """

    id: int
    task_id: str
    kind: str
    at: float
    label: int | None
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Task:
    """A task as its decision opened it.

    Attributes
    ----------
    task_id : str
    created_at : float
        Unix seconds of the decision.
    action : str
        The ladder rung that handled the input (``"answer"`` … ``"abstain"``).
    label : int or None
        The label returned to the user, if any.
    confidence : float or None
        Calibrated confidence of the model's top label.
    predicted : int or None
        The model's top label.
    band : str or None
    ood_score : float or None
    policy_version : str or None
        Content hash of the policy that decided.
    decision : dict
        The full decision as recorded.
    """

    task_id: str
    created_at: float
    action: str
    label: int | None
    confidence: float | None
    predicted: int | None
    band: str | None
    ood_score: float | None
    policy_version: str | None
    decision: dict[str, Any] = field(default_factory=dict)
