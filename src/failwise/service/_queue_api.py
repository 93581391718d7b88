"""``/v1/queue``: list with filters, claim, renew, release, resolve and undo.

The reviewer is the caller's key name: a reviewer acts on the items they hold; an admin
may act on any item (as its holder). Every change is the store's
:class:`~failwise.store.Queue` call, so a notebook and the service change the queue the
same way.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query
from fastapi.concurrency import run_in_threadpool

from failwise import OUT_OF_SCOPE
from failwise.service._auth import Principal, require
from failwise.service._errors import ApiError, responses
from failwise.service._models import (
    ClaimRequest,
    LeaseRequest,
    QueueItemOut,
    QueuePage,
    ResolveRequest,
    TaskId,
    Text,
    clean_json,
)
from failwise.service._state import ServiceState, get_state
from failwise.store import QueueItem

__all__ = ["item_out", "queue_router"]

queue_router = APIRouter(prefix="/v1/queue", tags=["queue"])

State = Annotated[ServiceState, Depends(get_state)]
Reviewer = Annotated[Principal, Depends(require("reviewer"))]
ItemId = Annotated[int, Path(ge=1, le=2**62, description="The queue item id.")]
_ERRORS = responses(401, 403, 404, 409, 413, 422, 503)


def item_out(state: ServiceState, item: QueueItem) -> dict[str, Any]:
    """A queue item as the API serialises it, with its due time from the SLA."""
    return {
        "id": item.id,
        "task_id": item.task_id,
        "kind": item.kind,
        "reason": item.reason,
        "priority": item.priority,
        "created_at": item.created_at,
        "state": item.state,
        "claimed_by": item.claimed_by,
        "lease_expires_at": item.lease_expires_at,
        "claimed_at": item.claimed_at,
        "resolved_at": item.resolved_at,
        "resolved_by": item.resolved_by,
        "label": item.label,
        "note": item.note,
        "due_at": item.created_at + state.settings.due_s(item.priority),
    }


def _acting(principal: Principal) -> str | None:
    """The reviewer name the queue checks: None lets an admin act on any item."""
    return None if principal.role == "admin" else principal.name


@queue_router.get("", response_model=QueuePage, responses=responses(401, 403, 422, 503))
async def list_items(
    state: State,
    principal: Annotated[Principal, Depends(require("reviewer", "viewer"))],
    kind: Annotated[Literal["escalation", "audit"] | None, Query()] = None,
    item_state: Annotated[
        Literal["pending", "claimed", "expired", "resolved"] | None, Query(alias="state")
    ] = None,
    reason: Annotated[Text | None, Query(max_length=1000)] = None,
    predicted: Annotated[int | None, Query(ge=-1, le=2**31 - 1)] = None,
    assignee: Annotated[Text | None, Query(max_length=256)] = None,
    task_id: Annotated[TaskId | None, Query()] = None,
    q: Annotated[Text | None, Query(max_length=1000, description="Text in the context")] = None,
    min_age_s: Annotated[float | None, Query(ge=0, le=1e12, allow_inf_nan=False)] = None,
    max_age_s: Annotated[float | None, Query(ge=0, le=1e12, allow_inf_nan=False)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> dict[str, Any]:
    """Items in claim order (priority, then age) matching every filter, and their count."""
    filters: dict[str, Any] = {
        "state": item_state,
        "kind": kind,
        "reason": reason,
        "predicted": predicted,
        "assignee": assignee,
        "task_id": task_id,
        "text": q,
        "min_age_s": min_age_s,
        "max_age_s": max_age_s,
    }

    def read() -> dict[str, Any]:
        queue = state.store.queue
        items = queue.search(**filters, limit=limit, offset=offset)
        return {
            "items": [item_out(state, item) for item in items],
            "total": queue.count(**filters),
            "limit": limit,
            "offset": offset,
        }

    return clean_json(await run_in_threadpool(read))


@queue_router.post("/claim", response_model=QueueItemOut | None, responses=_ERRORS)
def claim(
    state: State,
    principal: Reviewer,
    body: Annotated[ClaimRequest | None, Body()] = None,
) -> dict[str, Any] | None:
    """Lease the next item (highest priority, then oldest) to the caller; null when none."""
    request = body if body is not None else ClaimRequest()
    lease = request.lease_s if request.lease_s is not None else state.settings.lease_s
    item = state.store.queue.claim(principal.name, lease, kind=request.kind)
    return None if item is None else clean_json(item_out(state, item))


@queue_router.get("/{item_id}", response_model=QueueItemOut, responses=_ERRORS)
async def get_item(
    item_id: ItemId,
    state: State,
    principal: Annotated[Principal, Depends(require("reviewer", "viewer"))],
) -> dict[str, Any]:
    """One queue item."""
    item = await run_in_threadpool(state.store.queue.get, item_id)
    return clean_json(item_out(state, item))


@queue_router.post("/{item_id}/renew", response_model=QueueItemOut, responses=_ERRORS)
def renew(
    item_id: ItemId,
    state: State,
    principal: Reviewer,
    body: Annotated[LeaseRequest | None, Body()] = None,
) -> dict[str, Any]:
    """Extend the caller's lease on the item."""
    lease = body.lease_s if body is not None and body.lease_s is not None else None
    item = state.store.queue.renew(
        item_id,
        lease if lease is not None else state.settings.lease_s,
        reviewer=_acting(principal),
    )
    return clean_json(item_out(state, item))


@queue_router.post("/{item_id}/release", response_model=QueueItemOut, responses=_ERRORS)
def release(item_id: ItemId, state: State, principal: Reviewer) -> dict[str, Any]:
    """Hand the item back to the queue unresolved."""
    item = state.store.queue.release(item_id, reviewer=_acting(principal))
    return clean_json(item_out(state, item))


@queue_router.post("/{item_id}/resolve", response_model=QueueItemOut, responses=_ERRORS)
def resolve(
    item_id: ItemId, body: ResolveRequest, state: State, principal: Reviewer
) -> dict[str, Any]:
    """Give the item's label (or mark the input out of scope) and close it."""
    if (body.label is None) == (not body.out_of_scope):
        raise ApiError(
            422,
            "label_or_out_of_scope",
            "Send either `label` (the correct class) or `out_of_scope: true`, not both or neither.",
            field="label",
            received=body.label,
            expected="a label, or out_of_scope: true",
        )
    label = OUT_OF_SCOPE if body.out_of_scope else body.label
    assert label is not None
    item = state.store.queue.resolve(item_id, label, body.note, reviewer=_acting(principal))
    return clean_json(item_out(state, item))


@queue_router.post("/{item_id}/undo", response_model=QueueItemOut, responses=_ERRORS)
def undo(item_id: ItemId, state: State, principal: Reviewer) -> dict[str, Any]:
    """Undo the caller's recent resolution of the item: it is theirs, claimed, again."""
    settings = state.settings
    item = state.store.queue.reopen(
        item_id,
        reviewer=_acting(principal),
        window_s=settings.undo_window_s,
        lease_s=settings.lease_s,
    )
    return clean_json(item_out(state, item))
