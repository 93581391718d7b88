"""``/v1/queue``: list with filters, claim, renew, release, resolve and undo.

The reviewer is the caller's key name: a reviewer acts on the items they hold; an admin
may act on any item (as its holder). Every change is the store's
:class:`~failwise.store.Queue` call, so a notebook and the service change the queue the
same way.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query
from fastapi.concurrency import run_in_threadpool

from failwise import OUT_OF_SCOPE
from failwise.service._auth import Principal, require
from failwise.service._errors import ApiError, responses, strict_query
from failwise.service._models import (
    ClaimRequest,
    FilterState,
    ItemDetailOut,
    LeaseRequest,
    QueueItemOut,
    QueuePageOut,
    ResolveRequest,
    Text,
    clean_json,
    event_out,
)
from failwise.service._state import ServiceState, state_dependency
from failwise.store import ItemDetail, QueueFilter, QueueItem, QueueRow

__all__ = ["item_out", "queue_router"]

queue_router = APIRouter(prefix="/v1/queue", tags=["queue"], dependencies=[Depends(strict_query)])

State = Annotated[ServiceState, Depends(state_dependency)]
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
        "due_at": item.created_at + state.levels.due_s(item.kind, item.priority),
    }


def _row_out(state: ServiceState, row: QueueRow) -> dict[str, Any]:
    return {
        **item_out(state, row.item),
        "due_at": row.due_at,
        "breached": row.breached,
        "action": row.action,
        "predicted": row.predicted,
        "confidence": row.confidence,
        "preview": row.preview,
    }


def _detail_out(state: ServiceState, detail: ItemDetail) -> dict[str, Any]:
    return {
        "item": {**item_out(state, detail.item), "due_at": detail.due_at},
        "breached": detail.breached,
        "decision": detail.decision,
        "context": detail.context,
        "input_text": detail.input_text,
        "top_labels": [[label, p] for label, p in detail.top_labels],
        "prediction_set": detail.prediction_set,
        "reason": detail.reason,
        "events": [event_out(e) for e in detail.events],
    }


def _acting(principal: Principal) -> str | None:
    """The reviewer name the queue checks: None lets an admin act on any item."""
    return None if principal.role == "admin" else principal.name


@queue_router.get("", response_model=QueuePageOut, responses=responses(401, 403, 422, 503))
async def list_items(
    state: State,
    principal: Annotated[Principal, Depends(require("reviewer", "viewer"))],
    item_state: Annotated[FilterState, Query(alias="state")] = "open",
    kind: Annotated[Literal["escalation", "audit"] | None, Query()] = None,
    reason: Annotated[Text | None, Query(max_length=500)] = None,
    predicted: Annotated[int | None, Query(ge=-1, le=2**31 - 1)] = None,
    assignee: Annotated[Text | None, Query(max_length=256)] = None,
    q: Annotated[
        Text | None, Query(max_length=500, description="Text in the input or the task id")
    ] = None,
    min_age_s: Annotated[float | None, Query(ge=0, le=1e12, allow_inf_nan=False)] = None,
    max_age_s: Annotated[float | None, Query(ge=0, le=1e12, allow_inf_nan=False)] = None,
    breached: Annotated[bool | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> dict[str, Any]:
    """Items by priority then age, with due times, matching every filter; and their count."""
    if min_age_s is not None and max_age_s is not None and min_age_s > max_age_s:
        raise ApiError(
            422,
            "bad_ages",
            f"`min_age_s` ({min_age_s:g}) is above `max_age_s` ({max_age_s:g}); no item can "
            "match. Swap them.",
            field="query.min_age_s",
            received=min_age_s,
            expected="min_age_s <= max_age_s",
        )
    selection = QueueFilter(
        state=item_state,
        kind=kind,
        reason=reason,
        predicted=predicted,
        min_age_s=min_age_s,
        max_age_s=max_age_s,
        assignee=assignee,
        text=q,
        breached=breached,
    )

    def read() -> dict[str, Any]:
        page = state.store.queue.view(selection, levels=state.levels, limit=limit, offset=offset)
        return {
            "items": [_row_out(state, row) for row in page.rows],
            "total": page.total,
            "limit": limit,
            "offset": page.offset,
            "at": page.at,
        }

    return clean_json(await run_in_threadpool(read))


@queue_router.post(":claim", response_model=QueueItemOut | None, responses=_ERRORS)
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


@queue_router.get("/{item_id}", response_model=ItemDetailOut, responses=_ERRORS)
async def get_item(
    item_id: ItemId,
    state: State,
    principal: Annotated[Principal, Depends(require("reviewer", "viewer"))],
) -> dict[str, Any]:
    """One item with its input, the model's top labels, why it was queued and its history."""
    detail = await run_in_threadpool(
        functools.partial(state.store.queue.detail, item_id, levels=state.levels)
    )
    return clean_json(_detail_out(state, detail))


@queue_router.post("/{item_id}/claim", response_model=QueueItemOut, responses=_ERRORS)
def claim_item(
    item_id: ItemId,
    state: State,
    principal: Reviewer,
    body: Annotated[LeaseRequest | None, Body()] = None,
) -> dict[str, Any]:
    """Lease this item (not the next one) to the caller."""
    lease = body.lease_s if body is not None and body.lease_s is not None else None
    item = state.store.queue.claim_item(
        item_id, principal.name, lease if lease is not None else state.settings.lease_s
    )
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
