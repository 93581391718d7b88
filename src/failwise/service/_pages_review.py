"""The reviewer page: sign-in, the queue, one item, resolve / release / undo, bulk actions.

Server-rendered forms that work without JavaScript (each state change is a ``POST`` with
the session's CSRF token, answered by a redirect); ``/static/app.js`` adds the keyboard.
Handlers parse the form, call the store's queue (:meth:`~failwise.store.Queue.view`,
``detail``, ``claim``, ``resolve``, ``reopen``, ``bulk_resolve``…) and render; the rules
(order, due times, who may resolve what, exactly-once) live in the library.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials

from failwise.exceptions import InputError
from failwise.service._auth import Principal, authenticate, bearer, require
from failwise.service._queue_push import feed_of
from failwise.service._render import page, static_file
from failwise.service._state import ServiceState, get_state
from failwise.store import (
    FILTER_STATES,
    ItemDetail,
    QueueFilter,
    QueueStateError,
    ServiceLevels,
    UnknownItemError,
)

__all__ = ["label_names", "levels_of", "page_principal", "review_router"]

review_router = APIRouter(include_in_schema=False)

Reviewer = Annotated[Principal, Depends(require("reviewer"))]
State = Annotated[ServiceState, Depends(get_state)]

#: Items per page of the queue.
_PAGE = 50
#: Most labels offered as numbered choices (keys 1–9).
_CHOICES = 9


# ------------------------------------------------------------------------------ helpers
def levels_of(state: ServiceState) -> ServiceLevels:
    """The service's due times (its ``sla_*`` settings)."""
    return state.levels


def label_names(state: ServiceState) -> list[str] | None:
    """The policy's label names (settings ``labels``), or None when it has none."""
    names = getattr(state.settings, "labels", None)
    return None if not names else [str(name) for name in names]


def label_options(state: ServiceState) -> list[tuple[int, str]]:
    """Every label the picker offers, as (id, name)."""
    names = label_names(state)
    if names is not None:
        return list(enumerate(names))
    return [(i, f"label {i}") for i in range(state.n_classes or 0)]


def parse_label(state: ServiceState, text: str) -> int | None:
    """A typed label: its name, ``label N``, ``N`` or ``out of scope``; None if unknown."""
    wanted = " ".join(text.split()).casefold()
    if not wanted:
        return None
    if wanted in ("out of scope", "out-of-scope", "oos", "-1"):
        return -1
    options = label_options(state)
    for label, name in options:
        if name.casefold() == wanted:
            return label
    number = wanted.removeprefix("label ").strip()
    if number.isdigit():
        label = int(number)
        if not options or label < len(options):
            return label
    return None


async def page_principal(request: Request, *roles: str) -> Principal | Response:
    """The signed-in caller of a page, or the redirect to sign in (or a 403 page)."""
    credentials: HTTPAuthorizationCredentials | None = await bearer(request)
    principal = await authenticate(request, credentials)
    if principal is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/sign-in?{urlencode({'next': target, 'n': 'sign-in'})}", 303)
    request.state.principal = principal
    if principal.role != "admin" and principal.role not in roles:
        return page(
            request,
            "forbidden.html.j2",
            principal=principal,
            title="Not allowed",
            status_code=403,
            now=time.time(),
            needed=sorted({*roles, "admin"}),
        )
    return principal


def _acting(principal: Principal) -> str | None:
    """Whose hold the queue checks: an admin may act on any reviewer's item."""
    return None if principal.role == "admin" else principal.name


def _go(path: str, notice: str | None = None, **query: Any) -> RedirectResponse:
    params = {k: v for k, v in query.items() if v not in (None, "")}
    if notice is not None:
        params["n"] = notice
    return RedirectResponse(f"{path}?{urlencode(params)}" if params else path, 303)


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


# ------------------------------------------------------------------------------ filters
#: Query fields of the queue's filter form, in order.
_FILTER_FIELDS = (
    "q",
    "kind",
    "state",
    "reason",
    "predicted",
    "assignee",
    "min_age_min",
    "breached",
)


def _selection(state: ServiceState, fields: dict[str, str]) -> tuple[QueueFilter, list[str]]:
    """The :class:`QueueFilter` of the form's fields, and the fields it had to ignore."""
    ignored: list[str] = []
    kind = fields.get("kind") or None
    status = fields.get("state") or "open"
    if kind not in (None, "escalation", "audit"):
        ignored.append("kind")
        kind = None
    if status not in FILTER_STATES:
        ignored.append("state")
        status = "open"
    predicted = None
    if fields.get("predicted"):
        predicted = parse_label(state, fields["predicted"])
        if predicted is None:
            ignored.append("predicted")
    min_age = None
    if fields.get("min_age_min"):
        try:
            minutes = float(fields["min_age_min"])
        except ValueError:
            minutes = math.nan
        if math.isfinite(minutes) and minutes >= 0:
            min_age = minutes * 60.0
        else:
            ignored.append("min_age_min")
    breached = {"yes": True, "no": False}.get(fields.get("breached", ""))
    try:
        selection = QueueFilter(
            state=status,
            kind=kind,
            reason=fields.get("reason") or None,
            predicted=predicted,
            min_age_s=min_age,
            assignee=fields.get("assignee") or None,
            text=fields.get("q") or None,
            breached=breached,
        )
    except InputError:
        return QueueFilter(), [*ignored, "filter"]
    return selection, ignored


def _filter_fields(fields: dict[str, str]) -> list[tuple[str, str]]:
    return [(name, fields[name]) for name in _FILTER_FIELDS if fields.get(name)]


@dataclass(frozen=True)
class _Choice:
    label: int
    probability: float | None
    in_set: bool


def _choices(detail: ItemDetail) -> list[_Choice]:
    """The numbered choices of an item: its top labels, then the rest of its prediction set."""
    seen: set[int] = set()
    out: list[_Choice] = []
    for label, probability in detail.top_labels:
        if label not in seen and label >= 0:
            out.append(_Choice(label, probability, label in detail.prediction_set))
            seen.add(label)
    for label in detail.prediction_set:
        if label not in seen and label >= 0:
            out.append(_Choice(label, None, True))
            seen.add(label)
    return out[:_CHOICES]


# ------------------------------------------------------------------------------ pages
@review_router.get("/static/{name}")
async def static(name: str) -> Response:
    """The vendored stylesheet and script (nothing else is served from here)."""
    if name not in ("app.css", "app.js"):
        return Response("Not found", status_code=404, media_type="text/plain")
    return static_file(name)


@review_router.get("/sign-in")
async def sign_in_page(request: Request) -> Response:
    """The sign-in form (it posts the key to ``/sign-in``)."""
    target = request.query_params.get("next", "/")
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        target = "/"
    return page(
        request,
        "sign_in.html.j2",
        principal=None,
        title="Sign in",
        now=time.time(),
        next_url=target,
        error=None,
    )


@review_router.get("/")
async def home(request: Request) -> Response:
    """To the queue for reviewers, to the dashboard for everyone else."""
    principal = await page_principal(request, "reviewer", "viewer", "service")
    if isinstance(principal, Response):
        return principal
    return _go("/review" if principal.role in ("admin", "reviewer") else "/dashboard")


@review_router.get("/review")
async def queue_page(request: Request, state: State) -> Response:
    """The queue by priority then age, with due times, filters and per-reviewer stats."""
    principal = await page_principal(request, "reviewer")
    if isinstance(principal, Response):
        return principal
    fields = {k: v for k, v in request.query_params.items() if k in (*_FILTER_FIELDS, "offset")}
    return await run_in_threadpool(_render_queue, request, state, principal, fields, None)


def _render_queue(
    request: Request,
    state: ServiceState,
    principal: Principal,
    fields: dict[str, str],
    bulk: dict[str, Any] | None,
) -> Response:
    now = time.time()
    selection, _ = _selection(state, fields)
    try:
        offset = max(int(fields.get("offset", "0")), 0)
    except ValueError:
        offset = 0
    queue = state.store.queue
    levels = levels_of(state)
    cursor = feed_of(state).cursor()
    view = queue.view(selection, levels=levels, limit=_PAGE, offset=offset, at=now)
    health = queue.health(now - 3600.0, now, 3600.0, levels=levels, at=now)
    stats = queue.reviewer_stats(now - 86_400.0, now + 1.0)
    recent = queue.recent_resolutions(principal.name, state.settings.undo_window_s, limit=5, at=now)
    kept = _filter_fields(fields)
    names = label_names(state)
    predicted_text = fields.get("predicted", "")
    return page(
        request,
        "queue.html.j2",
        principal=principal,
        title="Review queue",
        label_names=names,
        now=now,
        page_=view,
        selection=selection,
        states=FILTER_STATES,
        health=health,
        stats=stats,
        recent=recent,
        undo_window_s=state.settings.undo_window_s,
        label_options=label_options(state),
        predicted_text=predicted_text,
        min_age_min=fields.get("min_age_min", ""),
        filter_fields=kept,
        bulk=bulk,
        cursor=cursor,
        refresh_url="/review?" + urlencode([*kept, ("offset", str(offset))]),
        prev_url="/review?" + urlencode([*kept, ("offset", str(max(offset - _PAGE, 0)))]),
        next_url="/review?" + urlencode([*kept, ("offset", str(offset + _PAGE))]),
    )


#: What each event of a task's history says, in words.
EVENT_WORDS: dict[str, str] = {
    "decision": "Decided",
    "feedback_accepted": "The user accepted the output",
    "feedback_corrected": "The user corrected the output",
    "feedback_abandoned": "The user gave up",
    "clarification_choice": "The user answered the clarification",
    "fallback_result": "The fallback answered",
    "audit_label": "Audit label recorded",
    **{
        f"{kind}_{step}": f"{noun} {words}"
        for kind, noun in (("escalation", "Escalation"), ("audit", "Audit"))
        for step, words in (
            ("created", "queued"),
            ("claimed", "claimed"),
            ("resolved", "resolved"),
            ("expired", "lease expired"),
            ("released", "released"),
            ("renewed", "lease renewed"),
            ("reopened", "reopened (undo)"),
        )
    },
}


@review_router.get("/review/items/{item_id}")
async def item_page(request: Request, state: State, item_id: int) -> Response:
    """One item: its input, the model's top labels, why it is here, its history."""
    principal = await page_principal(request, "reviewer")
    if isinstance(principal, Response):
        return principal
    return await run_in_threadpool(_render_item, request, state, principal, item_id)


def _render_item(
    request: Request, state: ServiceState, principal: Principal, item_id: int
) -> Response:
    now = time.time()
    cursor = feed_of(state).cursor()
    try:
        detail = state.store.queue.detail(item_id, levels=levels_of(state), at=now)
    except (UnknownItemError, InputError):
        return page(
            request,
            "missing.html.j2",
            principal=principal,
            title="No such item",
            status_code=404,
            now=now,
            item_id=item_id,
        )
    item = detail.item
    mine = item.state in ("claimed", "expired") and item.claimed_by == principal.name
    recent = state.store.queue.recent_resolutions(
        principal.name, state.settings.undo_window_s, limit=5, at=now
    )
    return page(
        request,
        "item.html.j2",
        principal=principal,
        title=f"Item {item.id}",
        label_names=label_names(state),
        now=now,
        d=detail,
        mine=mine,
        choices=_choices(detail),
        cursor=cursor,
        lease_s=state.settings.lease_s,
        recent=recent,
        undo_window_s=state.settings.undo_window_s,
        label_options=label_options(state),
        event_words=EVENT_WORDS,
    )


# ------------------------------------------------------------------------------ actions
def _claim_next(state: ServiceState, principal: Principal, kind: str | None) -> Response:
    item = state.store.queue.claim(principal.name, state.settings.lease_s, kind=kind)
    if item is None:
        return _go("/review", "empty")
    return _go(f"/review/items/{item.id}")


@review_router.post("/review/claim")
async def claim_next(request: Request, state: State, principal: Reviewer) -> Response:
    """Claim the next item (highest priority, then oldest) and open it."""
    fields = await _form(request)
    kind = fields.get("kind") if fields.get("kind") in ("escalation", "audit") else None
    return await run_in_threadpool(_claim_next, state, principal, kind)


@review_router.post("/review/items/{item_id}/claim")
async def claim_item(request: Request, state: State, principal: Reviewer, item_id: int) -> Response:
    """Claim this item (not the next one)."""
    try:
        await run_in_threadpool(
            state.store.queue.claim_item, item_id, principal.name, state.settings.lease_s
        )
    except UnknownItemError:
        return _go("/review", "refused")
    except InputError:
        return _go(f"/review/items/{item_id}", "conflict")
    return _go(f"/review/items/{item_id}", "claimed")


def _resolve(
    state: ServiceState, principal: Principal, item_id: int, fields: dict[str, str]
) -> Response:
    if fields.get("out_of_scope"):
        label: int | None = -1
    elif fields.get("label"):
        label = parse_label(state, fields["label"])
    else:
        label = parse_label(state, fields.get("label_name", ""))
    if label is None:
        return _go(f"/review/items/{item_id}", "label")
    note = fields.get("note", "").strip() or None
    try:
        state.store.queue.resolve(item_id, label, note, reviewer=_acting(principal))
    except UnknownItemError:
        return _go("/review", "refused")
    except QueueStateError:
        return _go(f"/review/items/{item_id}", "conflict")
    except InputError:
        return _go(f"/review/items/{item_id}", "refused")
    if fields.get("next"):
        item = state.store.queue.claim(principal.name, state.settings.lease_s)
        if item is not None:
            return _go(f"/review/items/{item.id}", "resolved")
        return _go("/review", "empty")
    return _go("/review", "resolved")


@review_router.post("/review/items/{item_id}/resolve")
async def resolve(request: Request, state: State, principal: Reviewer, item_id: int) -> Response:
    """Resolve with a label (``label``, or a typed ``label_name``) or ``out_of_scope``."""
    fields = await _form(request)
    return await run_in_threadpool(_resolve, state, principal, item_id, fields)


@review_router.post("/review/items/{item_id}/release")
async def release(request: Request, state: State, principal: Reviewer, item_id: int) -> Response:
    """Hand the item back to the queue."""
    try:
        await run_in_threadpool(state.store.queue.release, item_id, reviewer=_acting(principal))
    except UnknownItemError:
        return _go("/review", "refused")
    except InputError:
        return _go(f"/review/items/{item_id}", "conflict")
    return _go("/review", "released")


@review_router.post("/review/items/{item_id}/undo")
async def undo(request: Request, state: State, principal: Reviewer, item_id: int) -> Response:
    """Undo a resolution of the last few minutes: the item is claimed again by its reviewer."""
    settings = state.settings
    try:
        await run_in_threadpool(
            lambda: state.store.queue.reopen(
                item_id,
                reviewer=principal.name,
                window_s=settings.undo_window_s,
                lease_s=settings.lease_s,
            )
        )
    except UnknownItemError:
        return _go("/review", "refused")
    except InputError:
        return _go(f"/review/items/{item_id}", "too-late")
    return _go(f"/review/items/{item_id}", "undone")


def _bulk(
    request: Request, state: ServiceState, principal: Principal, fields: dict[str, str]
) -> Response:
    selection, _ = _selection(state, fields)
    action = fields.get("action", "resolve")
    confirm = fields.get("confirm") == "yes"
    note = fields.get("note", "").strip() or None
    levels = levels_of(state)
    queue = state.store.queue
    label_text = fields.get("label_name", "")
    if action == "release":
        reviewer = _acting(principal)
        result = queue.bulk_release(
            selection, reviewer=reviewer, dry_run=not confirm, levels=levels
        )
    else:
        label = parse_label(state, label_text)
        if label is None:
            query = _filter_fields(fields)
            return _go("/review", "label", **dict(query))
        result = queue.bulk_resolve(
            selection,
            label,
            reviewer=principal.name,
            note=note,
            dry_run=not confirm,
            levels=levels,
        )
    if not confirm:
        bulk = {
            "action": action,
            "dry_run": True,
            "matched": result.matched,
            "label_text": label_text,
            "note": note,
        }
        return _render_queue(request, state, principal, fields, bulk)
    return _go("/review", "bulk-done", **dict(_filter_fields(fields)))


@review_router.post("/review/bulk")
async def bulk(request: Request, state: State, principal: Reviewer) -> Response:
    """Release or resolve every item the filter selects: first a count, then on confirm."""
    fields = await _form(request)
    return await run_in_threadpool(_bulk, request, state, principal, fields)
