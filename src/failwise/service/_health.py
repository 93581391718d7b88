"""Probes and metrics: ``/livez``, ``/readyz``, Prometheus ``/metrics`` and ``/v1/metrics``.

``/livez`` answers 200 while the worker runs. ``/readyz`` answers 200 when the database
answers and its schema is migrated, else 503 — within ``readiness_timeout_s`` (1 s by
default) even when the database hangs. ``/metrics`` (Prometheus text) needs a viewer key
unless ``metrics_public`` is set. ``/v1/metrics`` is :func:`failwise.outcomes.measure` over
the service's store: the same definitions as the CLI and the library.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials

from failwise.outcomes import measure
from failwise.service._auth import Principal, bearer, require
from failwise.service._errors import ApiError, responses, strict_query
from failwise.service._models import Health, clean_json
from failwise.service._prometheus import CONTENT_TYPE_LATEST, exposition
from failwise.service._state import (
    ServiceState,
    current_state,
    get_state,
    state_dependency,
    unavailable_reason,
)
from failwise.store import SCHEMA_VERSION, StoreError

__all__ = ["health_router", "metrics_router"]

health_router = APIRouter(tags=["health"], dependencies=[Depends(strict_query)])
metrics_router = APIRouter(tags=["metrics"], dependencies=[Depends(strict_query)])

State = Annotated[ServiceState, Depends(state_dependency)]
_Time = Annotated[
    float | None,
    Query(ge=0, le=1e11, allow_inf_nan=False, description="Unix seconds (or ISO 8601)"),
]


@health_router.get("/livez", response_model=Health, responses=responses(422))
async def livez() -> dict[str, Any]:
    """The worker is running."""
    return {"status": "ok"}


async def _migrated(state: ServiceState) -> int:
    """The database's schema version; one check in flight per worker at a time."""
    running: asyncio.Future[int] | None = state.extra.get("readiness_check")
    if running is None or running.done():
        running = asyncio.ensure_future(run_in_threadpool(state.store.migrated_version))
        state.extra["readiness_check"] = running
    return await asyncio.shield(running)


@health_router.get(
    "/readyz", response_model=Health, responses={503: {"model": Health}, **responses(422)}
)
async def readyz(request: Request) -> JSONResponse:
    """The database is reachable and its schema migrated (else 503, within the time-out)."""
    state = current_state(request)
    if state is None:
        detail = f"the store is not open yet: {unavailable_reason(request)}"
        return JSONResponse({"status": "unavailable", "detail": detail}, status_code=503)
    timeout = state.settings.readiness_timeout_s
    try:
        version = await asyncio.wait_for(_migrated(state), timeout)
    except TimeoutError:
        detail = f"the database did not answer within {timeout:g} s"
        return JSONResponse({"status": "unavailable", "detail": detail}, status_code=503)
    except StoreError as error:
        return JSONResponse({"status": "unavailable", "detail": str(error)}, status_code=503)
    if version != SCHEMA_VERSION:
        detail = f"the schema is at version {version}, this service needs {SCHEMA_VERSION}"
        return JSONResponse(
            {"status": "unavailable", "detail": detail, "schema_version": version},
            status_code=503,
        )
    return JSONResponse({"status": "ok", "schema_version": version})


_viewer = require("viewer")


async def metrics_access(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """A viewer key (or above), unless the settings make ``/metrics`` public."""
    if not get_state(request).settings.metrics_public:
        await _viewer(request)


metrics_access.roles = _viewer.roles  # type: ignore[attr-defined]


@metrics_router.get(
    "/metrics",
    response_class=Response,
    dependencies=[Depends(metrics_access)],
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text"},
        **responses(401, 403, 422),
    },
)
async def prometheus() -> Response:
    """Prometheus metrics of every worker (a viewer key unless ``metrics_public``)."""
    return Response(exposition(), media_type=CONTENT_TYPE_LATEST)


def _window(since: float | None, until: float | None) -> tuple[float | None, float | None]:
    if since is not None and until is not None and since > until:
        raise ApiError(
            422,
            "bad_window",
            f"`since` ({since:g}) is after `until` ({until:g}); pass since <= until.",
            field="query.since",
            received=since,
            expected="since <= until",
        )
    return since, until


@metrics_router.get("/v1/metrics", responses=responses(401, 403, 422, 503))
async def product_metrics(
    state: State,
    principal: Annotated[Principal, Depends(require("viewer"))],
    since: _Time = None,
    until: _Time = None,
) -> dict[str, Any]:
    """Product metrics of the tasks decided in ``[since, until)`` (all by default)."""
    low, high = _window(since, until)
    metrics = await run_in_threadpool(measure, state.store, low, high)
    out = clean_json(metrics.to_dict())
    out["since"] = low
    out["until"] = high
    out["generated_at"] = datetime.now().astimezone().isoformat(timespec="seconds")
    return out
