"""``/v1/decisions``, ``/v1/decisions:batch`` and ``/v1/tasks``: parse, call the Guard or the
store, serialise.

A decision is made and recorded by :class:`~failwise.runtime.Guard` (its batch path
records a whole batch, with the queue items, in one transaction) and answered only once
it is durable; a store that does not record it gives 503, never a 2xx. Single decisions
that arrive together share a transaction (:class:`~failwise.runtime.GroupCommit`, from
the event loop): each request is still answered only after the commit that holds its
decision.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from failwise.runtime import Guard
from failwise.service._auth import Principal, require
from failwise.service._errors import ApiError, responses, strict_query
from failwise.service._models import (
    BatchRequest,
    BatchResponse,
    DecisionOut,
    DecisionRequest,
    FastJSONResponse,
    FeedbackRequest,
    FeedbackResponse,
    TaskId,
    TaskResponse,
    clean_json,
    event_out,
)
from failwise.service._prometheus import count_decisions
from failwise.service._queue_api import item_out
from failwise.service._state import ServiceState, state_dependency
from failwise.store import Task

__all__ = ["decisions_router"]

decisions_router = APIRouter(prefix="/v1", tags=["decisions"], dependencies=[Depends(strict_query)])

State = Annotated[ServiceState, Depends(state_dependency)]
TaskPath = Annotated[TaskId, Path(description="The task id.")]


def _guard_for(state: ServiceState, request: DecisionRequest, where: str) -> Guard:
    """The guard for a request: the scores guard, or the model guard for ``input``."""
    sent_scores = request.scores is not None
    sent_input = "input" in request.model_fields_set
    if state.scores_guard is None:
        raise ApiError(
            503,
            "no_policy",
            "This service has no policy, so it decides nothing: start it with `failwise "
            "serve --policy DIR`.",
        )
    if sent_scores == sent_input:
        raise ApiError(
            422,
            "scores_or_input",
            "Send exactly one of `scores` (the model's score vector) and `input` (the raw "
            "input, when the service has a model).",
            field=f"{where}scores",
            received="both" if sent_scores else "neither",
            expected="exactly one of `scores` and `input`",
        )
    if state.uses_ood and request.ood_score is None:
        raise ApiError(
            422,
            "ood_score_required",
            "This policy was fitted with out-of-scope scores, so every input needs its "
            "`ood_score` (from the same scorer, e.g. KNN distance to the training set).",
            field=f"{where}ood_score",
            expected="a finite number",
        )
    if sent_input:
        if state.model_guard is None:
            raise ApiError(
                422,
                "no_model",
                "This service has no model, so it decides from `scores`: send the model's "
                "score vector, or start the service with `--model module:attribute`.",
                field=f"{where}input",
                expected="`scores` (no model is configured)",
            )
        return state.model_guard
    n = state.n_classes
    assert request.scores is not None
    if len(request.scores) != n:
        raise ApiError(
            422,
            "scores_length",
            f"`scores` must hold one score per class: {n} for this policy; got "
            f"{len(request.scores)}.",
            field=f"{where}scores",
            received=f"{len(request.scores)} scores",
            expected=f"{n} scores",
        )
    return state.scores_guard


def _input(request: DecisionRequest) -> tuple[Any, float | None]:
    """What the guards take: the scores (or the input) with the out-of-scope score."""
    value = request.scores if request.scores is not None else request.input
    return value, request.ood_score


@decisions_router.post(
    "/decisions",
    response_model=DecisionOut,
    responses=responses(401, 403, 409, 413, 422, 503),
)
async def decide(
    body: DecisionRequest,
    state: State,
    principal: Annotated[Principal, Depends(require("service"))],
) -> FastJSONResponse:
    """Decide for one input; answered once the decision (and its queue item) is durable.

    The request waits on the event loop while its group is recorded in a worker thread.
    """
    guard = _guard_for(state, body, "")
    commits = state.group_commit(guard)
    decision = await commits.adecide(_input(body), body.context, task_id=body.task_id)
    count_decisions([decision.action._value_])
    return FastJSONResponse(decision.to_dict())


@decisions_router.post(
    "/decisions:batch",
    response_model=BatchResponse,
    responses=responses(401, 403, 409, 413, 422, 503),
)
def decide_batch(
    body: BatchRequest,
    state: State,
    principal: Annotated[Principal, Depends(require("service"))],
) -> FastJSONResponse:
    """Decide for many inputs; all are recorded in one transaction, or none."""
    limit = state.settings.max_batch_size
    if len(body.items) > limit:
        raise ApiError(
            422,
            "batch_too_large",
            f"A batch holds at most {limit} items; got {len(body.items)}. Split it.",
            field="items",
            received=f"{len(body.items)} items",
            expected=f"at most {limit} items",
        )
    guards = {id(_guard_for(state, item, f"items[{i}].")) for i, item in enumerate(body.items)}
    if len(guards) > 1:
        raise ApiError(
            422,
            "mixed_batch",
            "A batch sends either `scores` for every item or `input` for every item.",
            field="items",
            expected="the same of `scores` / `input` in every item",
        )
    guard = _guard_for(state, body.items[0], "items[0].")
    task_ids = [item.task_id for item in body.items]
    decisions = guard.decide_batch(
        [_input(item) for item in body.items],
        [item.context for item in body.items],
        task_ids=task_ids,
    )
    count_decisions(d.action._value_ for d in decisions)
    return FastJSONResponse({"decisions": [d.to_dict() for d in decisions]})


@decisions_router.post(
    "/tasks/{task_id}/feedback",
    response_model=FeedbackResponse,
    responses=responses(401, 403, 404, 413, 422, 503),
)
def feedback(
    task_id: TaskPath,
    body: FeedbackRequest,
    state: State,
    principal: Annotated[Principal, Depends(require("service"))],
) -> FeedbackResponse:
    """Record what the user did with the task's output (accepted, corrected, abandoned)."""
    event_id = state.store.feedback(task_id, body.outcome, label=body.label)
    return FeedbackResponse(event_id=event_id)


def _task(task: Task) -> dict[str, Any]:
    return {
        "task_id": task.task_id,
        "created_at": task.created_at,
        "action": task.action,
        "label": task.label,
        "confidence": task.confidence,
        "predicted": task.predicted,
        "band": task.band,
        "ood_score": task.ood_score,
        "policy_version": task.policy_version,
        "decision": task.decision,
    }


def read_task(state: ServiceState, task_id: str) -> dict[str, Any]:
    """The task, its events and its queue items, as the API serialises them."""
    task = state.store.task(task_id)
    events = state.store.events(task_id)
    items = state.store.queue.of_task(task_id)
    return clean_json(
        {
            "task": _task(task),
            "events": [event_out(e) for e in events],
            "queue_items": [item_out(state, item) for item in items],
        }
    )


@decisions_router.get(
    "/tasks/{task_id}",
    response_model=TaskResponse,
    responses=responses(401, 403, 404, 422, 503),
)
async def get_task(
    task_id: TaskPath,
    state: State,
    principal: Annotated[Principal, Depends(require("reviewer", "viewer"))],
) -> JSONResponse:
    """The task as its decision opened it, every event of it, and its queue items."""
    return JSONResponse(await run_in_threadpool(read_task, state, task_id))
