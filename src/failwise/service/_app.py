"""The app factory: :func:`create_app` builds the FastAPI app from :class:`Settings`.

Each worker process builds one app; its lifespan opens the store once and loads the
policy into a :class:`~failwise.runtime.Guard` (:func:`~failwise.service._state.open_state`),
and closes them at shutdown. The routers live in their own modules
(:data:`API_ROUTERS`); more (the HTML pages) are added with ``app.include_router(...)``
on the app :func:`create_app` returns, or listed in ``routers``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI

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
from failwise.service._state import load_policy, open_state

__all__ = ["API_ROUTERS", "app_from_env", "create_app"]

logger = logging.getLogger("failwise.service")

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
        state = open_state(settings, loaded)
        app.state.service = state
        if not state.store.keys.list(include_revoked=False):
            logger.warning(
                "No API key exists yet in %s: create one with `failwise keys create --role "
                "admin --name NAME --store %s`.",
                state.store.url,
                state.store.url,
            )
        try:
            yield
        finally:
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


def app_from_env() -> FastAPI:
    """The app with the settings ``failwise serve`` passed in the environment (uvicorn's
    factory in every worker)."""
    return create_app(settings_from_env())
