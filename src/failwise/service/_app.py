"""The app factory: :func:`create_app` builds the FastAPI app from :class:`Settings`.

Each worker process builds one app; its lifespan opens the store once and loads the
policy into a :class:`~failwise.runtime.Guard` (:func:`~failwise.service._state.open_state`),
and closes them at shutdown. A worker that cannot reach its store when it starts (one the
supervisor restarts during a database outage, say) still starts: it answers 503 with
``Retry-After`` (``/readyz`` says why) and tries again every :data:`STORE_RETRY_S`.
``failwise serve`` opens the store once before starting any worker, so a wrong URL or
password still stops it at once. The routers live in their own modules
(:data:`API_ROUTERS`); more (the HTML pages) are added with ``app.include_router(...)``
on the app :func:`create_app` returns, or listed in ``routers``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.concurrency import run_in_threadpool

from failwise import __version__
from failwise.service._auth import auth_router
from failwise.service._decisions import decisions_router
from failwise.service._errors import install_error_handlers
from failwise.service._health import health_router, metrics_router
from failwise.service._limits import LimitsMiddleware
from failwise.service._openapi import describe_deployment
from failwise.service._pages_dashboard import dashboard_router
from failwise.service._pages_review import review_router
from failwise.service._prometheus import PrometheusMiddleware
from failwise.service._queue_api import queue_router
from failwise.service._queue_push import changes_router
from failwise.service._settings import Settings, settings_from_env
from failwise.service._state import LoadedPolicy, ServiceState, load_policy, open_state
from failwise.store import StoreError

__all__ = ["API_ROUTERS", "STORE_RETRY_S", "app_from_env", "create_app"]

logger = logging.getLogger("failwise.service")

#: Seconds between a worker's attempts to open a store it could not reach at start-up.
STORE_RETRY_S = 1.0
#: A worker still without its store repeats its warning at most this often (seconds).
_WARN_EVERY_S = 30.0

#: The routers of the API, in the order they are included.
API_ROUTERS: tuple[APIRouter, ...] = (
    health_router,
    metrics_router,
    auth_router,
    decisions_router,
    queue_router,
    changes_router,
)


def create_app(settings: Settings, *, routers: Sequence[APIRouter] = ()) -> FastAPI:
    """The service's app, for uvicorn or an in-process test client.

    Parameters
    ----------
    settings : Settings
    routers : sequence of APIRouter, optional
        More routers to include after the API's (e.g. HTML pages); they may use
        :func:`~failwise.service.require`, :func:`~failwise.service.get_state` and
        :func:`~failwise.service.csrf_token`.

    Returns
    -------
    FastAPI
        Its store opens when the app starts (the lifespan) and closes when it stops.
    """
    if not isinstance(settings, Settings):
        raise TypeError(
            f"create_app needs failwise.service.Settings; got {type(settings).__name__}. "
            "Build them with Settings(...) or failwise.service.load_settings(...)."
        )

    loaded = load_policy(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.service = None
        retrying: asyncio.Task[None] | None = None
        try:
            _serve_with(app, open_state(settings, loaded))
        except StoreError as error:
            # A worker started while the database is down (a restart during an outage)
            # must not fail its start-up: uvicorn's supervisor would then stop every
            # worker. It answers 503 and keeps trying instead.
            app.state.unavailable = str(error)
            logger.warning(
                "The store cannot be opened yet; this worker answers 503 and tries again "
                "every %g s: %s",
                STORE_RETRY_S,
                error,
            )
            retrying = asyncio.create_task(_open_when_reachable(app, settings, loaded))
        try:
            yield
        finally:
            if retrying is not None:
                retrying.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await retrying
            state: ServiceState | None = app.state.service
            if state is not None:
                state.close()

    app = FastAPI(
        title="failwise",
        version=__version__,
        description="Decisions with calibrated confidence, the review queue and product "
        "metrics. Authenticate with `Authorization: Bearer <API key>`.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    for router in (*API_ROUTERS, *routers):
        app.include_router(router)
    app.include_router(review_router)
    app.include_router(dashboard_router)
    app.add_middleware(
        LimitsMiddleware,
        max_body_bytes=settings.max_body_bytes,
        concurrency_limit=settings.concurrency_limit,
    )
    app.add_middleware(PrometheusMiddleware)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = describe_deployment(
                generate(),
                n_classes=loaded.n_classes,
                uses_ood=loaded.uses_ood,
                has_model=settings.model is not None,
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _serve_with(app: FastAPI, state: ServiceState) -> None:
    """Hand the opened ``state`` to the app's routes."""
    app.state.service = state
    if not state.store.keys.list(include_revoked=False):
        logger.warning(
            "No API key exists yet in %s: create one with `failwise keys create --role "
            "admin --name NAME --store %s`.",
            state.store.url,
            state.store.url,
        )


async def _open_when_reachable(app: FastAPI, settings: Settings, loaded: LoadedPolicy) -> None:
    """Try to open the store every :data:`STORE_RETRY_S` until it opens."""
    warned = time.monotonic()
    while True:
        await asyncio.sleep(STORE_RETRY_S)
        try:
            state = await run_in_threadpool(open_state, settings, loaded)
        except StoreError as error:
            app.state.unavailable = str(error)
            if time.monotonic() - warned >= _WARN_EVERY_S:
                warned = time.monotonic()
                logger.warning("The store still cannot be opened: %s", error)
            continue
        _serve_with(app, state)
        logger.info("The store is open: this worker serves.")
        return


def app_from_env() -> FastAPI:
    """The app with the settings ``failwise serve`` passed in the environment (uvicorn's
    factory in every worker)."""
    return create_app(settings_from_env())
