"""`replay`: scripted users and reviewers that act out an :class:`OutcomeModel` on a store.

Given decisions a :class:`~failwise.runtime.Guard` recorded and the true labels of their
inputs, :func:`replay` draws what each user and reviewer does with the same probabilities
and latencies as the offline projection (``_projection._simulate``) and writes it to the
store as the events a real application would write, on a simulated clock: every event of
a task is at its decision time plus the simulated delay. :func:`measure` on the store then
measures what :func:`project` projected — the consistency check between the two.

What the scripted people do
---------------------------
- **Users** accept a right output (``feedback_accepted`` after ``answer_latency_s``); a
  wrong one they notice with ``user_notices_wrong_answer`` — then, after
  ``time_to_notice_s``, they ask for a human with ``user_escalates_after_noticing`` (an
  escalation queued by the application) or give up (``feedback_abandoned``); one they do not
  notice they accept, which makes it a silent failure. Asked to clarify, they pick the right
  label, say "none of these" (and are escalated) or pick a wrong one, with the model's
  probabilities. After an abstention, a user whose request was out of scope accepts it and
  the others give up. A user who gets a wrong human resolution says so
  (``feedback_corrected`` with the right label).
- **Reviewers** absorb the share of escalations the outcome model's capacity allows, take
  ``human_handling_s`` of work each (claim → resolution), resolve right with
  ``human_accuracy`` after a log-normal response time, and audit every sampled answer with
  the true label.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from failwise._validation import check_consistent_length, check_labels, describe
from failwise.exceptions import InputError
from failwise.outcomes._model import OutcomeModel
from failwise.policy._decision import Action, Decision

__all__ = ["ReplaySummary", "replay"]

_Z90 = 1.2815515655446004
#: Lease long enough that no scripted claim expires on the simulated clock.
_LEASE_S = 1.0e9
_REVIEWER = "scripted-reviewer"
_AUDITOR = "scripted-auditor"


@dataclass(frozen=True)
class ReplaySummary:
    """What the scripted people did (counts of tasks)."""

    n_tasks: int
    accepted: int
    abandoned: int
    user_escalations: int
    clarifications: int
    escalations_resolved: int
    escalations_left: int
    audits_resolved: int


def _wrong_label(truth: int, options: Sequence[int], n_classes: int) -> int:
    """A label other than ``truth``: an offered one if any, else the next class."""
    for label in options:
        if label != truth:
            return int(label)
    return int((max(truth, 0) + 1) % max(n_classes, 2))


def replay(
    store: Any,
    decisions: Sequence[Decision],
    y_true: ArrayLike,
    outcome_model: OutcomeModel | None = None,
    *,
    n_classes: int | None = None,
    clarification_audit_rate: float = 0.2,
    random_state: int | np.random.Generator | None = 0,
) -> ReplaySummary:
    """Act out users and reviewers for recorded decisions; write their events to ``store``.

    Parameters
    ----------
    store : Store
        The store the decisions were recorded in (by a :class:`~failwise.runtime.Guard`
        with that store); escalations and audits the guard queued are worked here.
    decisions : sequence of Decision
        As the guard returned them (with their ``task_id``).
    y_true : array-like of shape (n_decisions,)
        True labels, ``-1`` for out-of-scope inputs.
    outcome_model : OutcomeModel, optional
        The behaviour to act out; the documented defaults when None.
    n_classes : int, optional
        Number of classes (for the wrong labels people pick); default: largest label + 1.
    clarification_audit_rate : float in [0, 1], default=0.2
        Share of picked clarifications the application also queues for audit (a guard
        audits answers only), so that :func:`measure` can estimate unnoticed wrong picks.
    random_state : int, Generator or None, default=0

    Returns
    -------
    ReplaySummary
    """
    from failwise.store import Store

    if not isinstance(store, Store):
        raise InputError(
            f"`store` must be a Store from failwise.store.open; got {describe(store)}."
        )
    items = list(decisions)
    if not all(isinstance(d, Decision) and isinstance(d.task_id, str) for d in items):
        raise InputError(
            "`decisions` must be the Decisions a Guard with a store returned (each with its "
            "task_id)."
        )
    y = check_labels(y_true, "y_true", allow_out_of_scope=True)
    check_consistent_length(decisions=items, y_true=y)
    model = outcome_model if outcome_model is not None else OutcomeModel()
    if not isinstance(model, OutcomeModel):
        raise InputError(f"`outcome_model` must be an OutcomeModel; got {describe(model)}.")
    if (
        isinstance(clarification_audit_rate, bool)
        or not isinstance(clarification_audit_rate, (int, float))
        or not 0.0 <= clarification_audit_rate <= 1.0
    ):
        raise InputError(
            "`clarification_audit_rate` must be a share in [0, 1]; got "
            f"{describe(clarification_audit_rate)}."
        )
    k = int(n_classes) if n_classes is not None else int(max(int(y.max()), 0) + 1)
    rng = np.random.default_rng(random_state)
    n = len(items)

    action = np.array([d.action.code for d in items], dtype=np.int8)
    label = np.array([-2 if d.label is None else int(d.label) for d in items])
    answer = action == Action.ANSWER.code
    clarify = action == Action.CLARIFY.code
    fallback = action == Action.FALLBACK.code
    escalate = action == Action.ESCALATE.code
    abstain = action == Action.ABSTAIN.code
    oos = y < 0
    output_correct = (label == y) | (fallback & oos)
    has_truth = np.array(
        [bool(yi >= 0 and yi in d.prediction_set) for d, yi in zip(items, y, strict=True)]
    )

    # The draws of `_simulate`, in the same order.
    u = rng.random((4, n))
    sigma = (
        np.log(max(model.human_response_p90_s, 1e-9) / max(model.human_response_median_s, 1e-9))
        / _Z90
    )
    human_time = model.human_response_median_s * np.exp(sigma * rng.standard_normal(n))
    human_right = rng.random(n) < model.human_accuracy
    picks_right = clarify & has_truth & (u[0] < model.user_picks_right_label)
    none_of_these = clarify & ~has_truth & (u[0] < model.user_flags_none_of_these)
    picks_wrong = clarify & ~picks_right & ~none_of_these
    delivered = answer | fallback | picks_right | picks_wrong
    first_right = ((answer | fallback) & output_correct) | picks_right
    first_wrong = delivered & ~first_right
    base = np.select(
        [answer, clarify, fallback, abstain],
        [
            np.full(n, model.answer_latency_s),
            np.full(n, model.answer_latency_s + model.clarify_latency_s),
            np.full(n, model.fallback_latency_s),
            np.full(n, model.abstain_latency_s),
        ],
        default=0.0,
    )
    noticed = first_wrong & (u[1] < model.user_notices_wrong_answer)
    user_escalates = noticed & (u[2] < model.user_escalates_after_noticing)
    gives_up = noticed & ~user_escalates
    escalated = escalate | none_of_these | user_escalates
    share = model.human_capacity_share(float(escalated.mean()) if n else 0.0)
    absorbed = escalated & (u[3] < share)
    wait = np.where(user_escalates, model.time_to_notice_s, 0.0)
    audit_pick = (picks_right | picks_wrong) & (rng.random(n) < clarification_audit_rate)

    ids = [str(d.task_id) for d in items]
    t0 = {task: store.task(task).created_at for task in ids}
    plan: dict[str, int] = {task: i for i, task in enumerate(ids)}
    counts = {"accepted": 0, "abandoned": 0}

    for i, d in enumerate(items):
        task_id = ids[i]
        start = t0[task_id]
        if clarify[i]:
            picked: int | None = None
            if picks_right[i]:
                picked = int(y[i])
            elif picks_wrong[i]:
                picked = _wrong_label(int(y[i]), d.prediction_set, k)
            store.record_event(task_id, "clarification_choice", label=picked, at=start + base[i])
            if audit_pick[i] and d.review != "audit":  # not already audited by the guard
                store.queue.enqueue(
                    task_id, "audit", "sampled clarification", 0.0, at=start + base[i]
                )
            if none_of_these[i]:
                store.queue.enqueue(
                    task_id, "escalation", "none of the offered labels", 1.0, at=start + base[i]
                )
        if delivered[i]:
            if user_escalates[i]:
                store.queue.enqueue(
                    task_id,
                    "escalation",
                    "the user reported a wrong answer",
                    1.0,
                    at=start + base[i] + wait[i],
                )
            elif gives_up[i]:
                store.feedback(task_id, "abandoned", at=start + base[i] + model.time_to_notice_s)
                counts["abandoned"] += 1
            elif answer[i] or fallback[i]:
                store.feedback(task_id, "accepted", at=start + base[i])
                counts["accepted"] += 1
        elif abstain[i]:
            outcome = "accepted" if oos[i] else "abandoned"
            store.feedback(task_id, outcome, at=start + base[i])
            counts[outcome] += 1

    # Reviewers work the queue in its claim order; each claim is stamped so that claim →
    # resolution is the handling time. Escalations beyond capacity stay claimed, unresolved.
    resolved = left = audits = 0
    for kind in ("escalation", "audit"):
        while waiting := store.queue.items("pending", kind=kind, limit=1):
            item = waiting[0]
            i = plan.get(item.task_id, -1)
            start = t0.get(item.task_id, item.created_at)
            if kind == "audit":
                done_at = start + base[i] + model.human_handling_s
            else:
                done_at = start + base[i] + wait[i] + human_time[i]
            reviewer = _AUDITOR if kind == "audit" else _REVIEWER
            claimed = store.queue.claim(
                reviewer, _LEASE_S, kind=kind, at=max(done_at - model.human_handling_s, 0.0)
            )
            if claimed is None or claimed.id != item.id:  # pragma: no cover - single writer
                raise RuntimeError(f"the scripted {reviewer} did not get queue item {item.id}")
            if i < 0 or (kind == "escalation" and not absorbed[i]):
                left += 1
                continue
            truth = int(y[i])
            if kind == "audit":
                store.queue.resolve(item.id, truth, reviewer=reviewer, at=done_at)
                audits += 1
                continue
            given = truth if human_right[i] else _wrong_label(truth, items[i].prediction_set, k)
            store.queue.resolve(item.id, given, reviewer=reviewer, at=done_at)
            resolved += 1
            if not human_right[i]:
                store.feedback(item.task_id, "corrected", label=truth, at=done_at + 1.0)
    return ReplaySummary(
        n_tasks=n,
        accepted=counts["accepted"],
        abandoned=counts["abandoned"],
        user_escalations=int(user_escalates.sum()),
        clarifications=int(clarify.sum()),
        escalations_resolved=resolved,
        escalations_left=left,
        audits_resolved=audits,
    )
