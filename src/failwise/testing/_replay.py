"""`replay`: scripted users and reviewers acting on a real Guard and event store.

:func:`replay` runs inputs through a :class:`~failwise.runtime.Guard` that records into a
store, draws what each user and reviewer does with
:func:`~failwise.outcomes.draw_behaviour` — the same draws :func:`~failwise.project` makes,
so a seed fixes the same person doing the same thing on the same task — and writes it to
the store as the events a real application would write, on a simulated clock: every event
of a task is at its decision time plus the simulated delay. :func:`~failwise.measure` on
the store then measures what ``project`` projects.

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
- **Reviewers** claim every queue item in the queue's order. They absorb the share of
  escalations the outcome model's capacity allows (the rest stay claimed, unresolved), take
  ``human_handling_s`` of work each (claim → resolution), and resolve after the log-normal
  response time, with the right label with ``human_accuracy`` (the per-task draw of
  ``draw_behaviour``). Auditors resolve every audit item after ``human_handling_s``, right
  with ``audit_accuracy`` (default ``human_accuracy``; drawn after the shared draws).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from failwise._validation import check_consistent_length, check_labels, describe
from failwise.exceptions import InputError
from failwise.outcomes import Behaviour, OutcomeModel, TaskPaths, draw_behaviour
from failwise.policy import Action, Decision

__all__ = ["ReplayResult", "act_out", "replay"]

#: Lease long enough that no scripted claim expires on the simulated clock.
_LEASE_S = 1.0e9
REVIEWER = "scripted-reviewer"
AUDITOR = "scripted-auditor"


@dataclass(frozen=True)
class ReplayResult:
    """What the guard decided and what the scripted people did.

    Attributes
    ----------
    decisions : list of Decision
        As the guard returned (and recorded) them, one per input.
    behaviour : Behaviour
        The per-task draws that were acted out (:func:`~failwise.outcomes.draw_behaviour`).
    n_tasks, accepted, abandoned, user_escalations, clarifications : int
        Counts of tasks: all, accepted by their user, abandoned, escalated by their user
        after a wrong output, clarified.
    escalations_resolved, escalations_left, audits_resolved : int
        Queue items resolved by reviewers, left claimed beyond human capacity, audit items
        resolved.
    """

    decisions: list[Decision]
    behaviour: Behaviour
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


def decision_paths(decisions: Sequence[Decision], y: np.ndarray[Any, Any]) -> TaskPaths:
    """The :class:`TaskPaths` of decisions a guard returned (as ``task_paths`` for batches)."""
    action = np.array([d.action.code for d in decisions], dtype=np.int8)
    label = np.array([-2 if d.label is None else int(d.label) for d in decisions])
    oos = y < 0
    output_correct = (label == y) | ((action == Action.FALLBACK.code) & oos)
    has_truth = np.array(
        [bool(yi >= 0 and yi in d.prediction_set) for d, yi in zip(decisions, y, strict=True)],
        dtype=bool,
    )
    return TaskPaths(action, output_correct, has_truth.reshape(-1), oos)


def _audited_by_guard(decision: Decision) -> bool:
    return getattr(decision, "review", None) == "audit" or bool(decision.extra.get("audit"))


def _check_share(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not 0.0 <= float(value) <= 1.0:
        raise InputError(f"`{name}` must be a share in [0, 1]; got {describe(value)}.")
    return float(value)


def act_out(
    store: Any,
    decisions: Sequence[Decision],
    y: np.ndarray[Any, Any],
    model: OutcomeModel,
    *,
    n_classes: int,
    clarification_audit_rate: float,
    audit_accuracy: float | None = None,
    rng: np.random.Generator,
) -> ReplayResult:
    """Draw behaviour for recorded decisions and write it to ``store`` (inputs checked)."""
    items = list(decisions)
    n = len(items)
    k = n_classes
    b = draw_behaviour(decision_paths(items, y), model, rng)
    # After the shared draws, so that they stay those of `project`.
    audit_pick = (b.picks_right | b.picks_wrong) & (rng.random(n) < clarification_audit_rate)
    accuracy = model.human_accuracy if audit_accuracy is None else audit_accuracy
    audit_right = rng.random(n) < accuracy
    answer = np.array([d.action is Action.ANSWER for d in items], dtype=bool)
    clarify = np.array([d.action is Action.CLARIFY for d in items], dtype=bool)
    fallback = np.array([d.action is Action.FALLBACK for d in items], dtype=bool)
    abstain = np.array([d.action is Action.ABSTAIN for d in items], dtype=bool)
    delivered = answer | fallback | b.picks_right | b.picks_wrong
    base, wait = b.first_output_s, b.wait_s

    ids = [str(d.task_id) for d in items]
    t0 = {task: store.task(task).created_at for task in ids}
    plan: dict[str, int] = {task: i for i, task in enumerate(ids)}
    counts = {"accepted": 0, "abandoned": 0}

    for i, d in enumerate(items):
        task_id = ids[i]
        start = t0[task_id]
        if clarify[i]:
            picked: int | None = None
            if b.picks_right[i]:
                picked = int(y[i])
            elif b.picks_wrong[i]:
                picked = _wrong_label(int(y[i]), d.prediction_set, k)
            store.record_event(task_id, "clarification_choice", label=picked, at=start + base[i])
            if audit_pick[i] and not _audited_by_guard(d):
                store.queue.enqueue(
                    task_id, "audit", "sampled clarification", 0.0, at=start + base[i]
                )
            if b.none_of_these[i]:
                store.queue.enqueue(
                    task_id, "escalation", "none of the offered labels", 1.0, at=start + base[i]
                )
        if delivered[i]:
            if b.user_escalates[i]:
                store.queue.enqueue(
                    task_id,
                    "escalation",
                    "the user reported a wrong answer",
                    1.0,
                    at=start + base[i] + wait[i],
                )
            elif b.gives_up[i]:
                store.feedback(task_id, "abandoned", at=start + base[i] + model.time_to_notice_s)
                counts["abandoned"] += 1
            elif answer[i] or fallback[i]:
                store.feedback(task_id, "accepted", at=start + base[i])
                counts["accepted"] += 1
        elif abstain[i]:
            outcome = "accepted" if y[i] < 0 else "abandoned"
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
                done_at = start + base[i] + wait[i] + b.human_response_s[i]
            reviewer = AUDITOR if kind == "audit" else REVIEWER
            claimed = store.queue.claim(
                reviewer, _LEASE_S, kind=kind, at=max(done_at - model.human_handling_s, 0.0)
            )
            if claimed is None or claimed.id != item.id:  # pragma: no cover - single writer
                raise RuntimeError(f"the scripted {reviewer} did not get queue item {item.id}")
            if i < 0 or (kind == "escalation" and not b.absorbed[i]):
                left += 1
                continue
            truth = int(y[i])
            right = audit_right[i] if kind == "audit" else b.human_right[i]
            given = truth if right else _wrong_label(truth, items[i].prediction_set, k)
            store.queue.resolve(item.id, given, reviewer=reviewer, at=done_at)
            if kind == "audit":
                audits += 1
                continue
            resolved += 1
            if not b.human_right[i]:
                store.feedback(item.task_id, "corrected", label=truth, at=done_at + 1.0)
    return ReplayResult(
        decisions=items,
        behaviour=b,
        n_tasks=n,
        accepted=counts["accepted"],
        abandoned=counts["abandoned"],
        user_escalations=int(b.user_escalates.sum()),
        clarifications=int(clarify.sum()),
        escalations_resolved=resolved,
        escalations_left=left,
        audits_resolved=audits,
    )


def check_model(outcome_model: Any) -> OutcomeModel:
    model = outcome_model if outcome_model is not None else OutcomeModel()
    if not isinstance(model, OutcomeModel):
        raise InputError(
            f"`outcome_model` must be an OutcomeModel; got {describe(model)}. Use "
            "`OutcomeModel()` for the documented defaults."
        )
    return model


def replay(
    guard: Any,
    X: Sequence[Any] | ArrayLike,
    y: ArrayLike,
    outcome_model: OutcomeModel | None = None,
    *,
    clarification_audit_rate: float = 0.2,
    audit_accuracy: float | None = None,
    random_state: int | np.random.Generator | None = 0,
) -> ReplayResult:
    """Run inputs through a guard, then act out its users and reviewers on its store.

    Every input goes through ``guard.decide_batch`` (so the guard records the decisions
    and queues their escalations and audits); then scripted users give feedback, pick
    clarification labels and ask for humans, and scripted reviewers claim and resolve the
    queue items, all as :func:`~failwise.outcomes.draw_behaviour` draws them with
    ``random_state`` — the draws :func:`~failwise.project` makes with the same seed. Use it
    to test a ladder end to end: ``measure(guard.store)`` afterwards measures what
    ``project`` projects, and the labels the reviewers gave feed
    :mod:`failwise.loop`.

    Parameters
    ----------
    guard : Guard
        A :class:`~failwise.runtime.Guard` built with ``store=`` a store from
        :func:`failwise.store.open` (the scripted reviewers work its queue).
    X : sequence of shape (n_samples, ...)
        The inputs, as the guard's model takes them one by one.
    y : array-like of int of shape (n_samples,)
        Their true labels, ``-1`` for out-of-scope inputs.
    outcome_model : OutcomeModel, optional
        The behaviour to act out; the documented defaults when None.
    clarification_audit_rate : float in [0, 1], default=0.2
        Share of picked clarifications the application also queues for audit (unless the
        guard already queued one), so that :func:`~failwise.measure` can estimate wrong
        picks nobody reported.
    audit_accuracy : float in [0, 1], optional
        Probability that an auditor gives an audit item its right label; default the outcome
        model's ``human_accuracy``. :func:`~failwise.measure` takes audit labels as the
        truth, so imperfect auditors bias its estimates: on the digits system (10 seeds),
        3 % auditor errors read as selective accuracy 96.3 % instead of 99.1 % and silent
        failures 1.9 % instead of 0.25 %. Pass 1.0 to check measure against project.
    random_state : int, Generator or None, default=0
        Seed of the behaviour draws (not of the guard's audit draws: that is the guard's
        own ``random_state``).

    Returns
    -------
    ReplayResult

    Examples
    --------
    >>> import tempfile
    >>> from failwise import store
    >>> from failwise.outcomes import measure
    >>> from failwise.testing import digits_system, replay
    >>> system = digits_system()
    >>> folder = tempfile.mkdtemp()
    >>> with store.open(f"sqlite:///{folder}/events.db") as events:
    ...     guard = system.guard(store=events, audit_rate=0.3, random_state=0)
    ...     result = replay(guard, system.X_test[:200], system.y_test[:200])
    ...     metrics = measure(events)
    >>> result.n_tasks, metrics.n_tasks
    (200, 200)
    >>> result.audits_resolved > 0
    True
    """
    from failwise.runtime import Guard
    from failwise.store import Store

    if not isinstance(guard, Guard):
        raise InputError(
            f"`guard` must be a failwise.runtime.Guard; got {describe(guard)}. Build one with "
            "`Guard(model, calibrator, policy, store=failwise.store.open(url))`."
        )
    store = guard.store
    if not isinstance(store, Store):
        raise InputError(
            f"The guard records into {describe(store)}, but the scripted reviewers need a "
            "store with a review queue: build the guard with "
            "`store=failwise.store.open(url)`."
        )
    if isinstance(X, (str, bytes)):
        raise InputError(f"`X` must be a sequence of inputs; got {describe(X)}.")
    try:
        inputs = list(X)  # type: ignore[arg-type]
    except TypeError:
        raise InputError(f"`X` must be a sequence of inputs; got {describe(X)}.") from None
    labels = check_labels(y, "y", allow_out_of_scope=True)
    check_consistent_length(X=inputs, y=labels)
    if labels.size and int(labels.max()) >= guard.n_classes:
        raise InputError(
            f"`y` holds label {int(labels.max())} but the guard's policy has "
            f"{guard.n_classes} classes (0 … {guard.n_classes - 1}; -1 = out of scope)."
        )
    model = check_model(outcome_model)
    share = _check_share(clarification_audit_rate, "clarification_audit_rate")
    accuracy = None if audit_accuracy is None else _check_share(audit_accuracy, "audit_accuracy")
    rng = np.random.default_rng(random_state)
    decisions = guard.decide_batch(inputs) if inputs else []
    return act_out(
        store,
        decisions,
        labels,
        model,
        n_classes=guard.n_classes,
        clarification_audit_rate=share,
        audit_accuracy=accuracy,
        rng=rng,
    )
