"""The HTTP service: decisions, the review queue and product metrics over HTTP.

``failwise serve --policy DIR`` runs it (uvicorn, one or more workers); in Python,
:func:`create_app` builds the FastAPI app from :class:`Settings`. Handlers parse the
request, call the library (the :class:`~failwise.runtime.Guard`, the store, ``measure``)
and serialise the answer, so the service, the CLI and a notebook give the same answers.

Building on it
--------------
More routers (HTML pages) are added with ``app.include_router(router)``; their routes take
the caller with ``Depends(require("reviewer"))`` (a :class:`Principal`), the worker's store
and settings with ``Depends(get_state)``, and the CSRF token for their forms with
:func:`csrf_token`.

Needs the ``service`` extra: ``pip install 'failwise[service]'``.
"""

from __future__ import annotations

try:
    import fastapi  # noqa: F401
except ImportError as exc:  # pragma: no cover - the extra is installed in tests
    raise ImportError(
        "The failwise service needs the `service` extra: pip install 'failwise[service]'."
    ) from exc

from failwise.service._app import API_ROUTERS, app_from_env, create_app
from failwise.service._auth import CSRF_HEADER, SESSION_COOKIE, Principal, csrf_token, require
from failwise.service._errors import ApiError, ErrorBody, ErrorDetail
from failwise.service._labels import check_label_count, read_labels
from failwise.service._run import run_server
from failwise.service._settings import SETTINGS_ENV, Settings, load_settings
from failwise.service._state import ServiceState, find_policy, get_state, load_policy

__all__ = [
    "API_ROUTERS",
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "SETTINGS_ENV",
    "ApiError",
    "ErrorBody",
    "ErrorDetail",
    "Principal",
    "ServiceState",
    "Settings",
    "app_from_env",
    "check_label_count",
    "create_app",
    "csrf_token",
    "find_policy",
    "get_state",
    "load_policy",
    "load_settings",
    "read_labels",
    "require",
    "run_server",
]
