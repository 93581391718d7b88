"""Who is calling: API keys, signed session cookies, CSRF tokens and the role matrix.

API clients send ``Authorization: Bearer fw_<id>_<secret>``. People sign in to the pages
with a key (``POST /sign-in``, a form or JSON) and get a session cookie signed with the
service's secret (itsdangerous; ``HttpOnly``, ``SameSite=Lax``, ``Secure`` over https)
holding the key id and a CSRF token. Every state-changing request authenticated by the
cookie must carry that token, in the ``X-CSRF-Token`` header or a ``csrf_token`` form
field; requests with a bearer key need none (a browser never adds that header by itself).

Roles: ``admin`` may do everything; otherwise a route lists the roles it admits with
:func:`require`, e.g. ``Depends(require("reviewer"))``. No key → 401; a key whose role is
not admitted → 403.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from itsdangerous import BadSignature, URLSafeTimedSerializer
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from failwise.service._errors import (
    ERROR_RESPONSES,
    ApiError,
    ErrorDetail,
    error_response,
    responses,
    strict_query,
)
from failwise.service._state import ServiceState, get_state
from failwise.store import ROLES, ApiKey

__all__ = [
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "Principal",
    "auth_router",
    "bearer",
    "csrf_token",
    "require",
]

SESSION_COOKIE = "failwise_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_BEARER_TEXT = "An API key: `fw_<id>_<secret>`."
bearer = HTTPBearer(auto_error=False, description=_BEARER_TEXT)


@dataclass(frozen=True)
class Principal:
    """The caller of a request.

    Attributes
    ----------
    name : str
        The key's name (a reviewer's name is what the queue records).
    role : {"admin", "reviewer", "viewer", "service"}
    key_id : str
    via : {"key", "session"}
        A bearer key, or a session cookie from ``/sign-in``.
    csrf : str or None
        The session's CSRF token (None for bearer keys).
    """

    name: str
    role: str
    key_id: str
    via: str = "key"
    csrf: str | None = None


def _serializer(state: ServiceState) -> URLSafeTimedSerializer:
    serializer = state.extra.get("session_serializer")
    if serializer is None:
        serializer = URLSafeTimedSerializer(state.session_secret, salt="failwise.session")
        state.extra["session_serializer"] = serializer
    return serializer


async def _verify(state: ServiceState, token: str) -> ApiKey | None:
    hit, key = state.keys.cached_token(token)
    if hit:
        return key
    return await run_in_threadpool(state.keys.verify, token)


async def _by_id(state: ServiceState, key_id: str) -> ApiKey | None:
    hit, key = state.keys.cached_id(key_id)
    if hit:
        return key
    return await run_in_threadpool(state.keys.by_id, key_id)


def _session(state: ServiceState, request: Request) -> dict[str, str] | None:
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    try:
        data = _serializer(state).loads(cookie, max_age=int(state.settings.session_max_age_s))
    except BadSignature:
        return None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in ("k", "c")):
        return None
    return {"k": str(data["k"]), "c": str(data["c"])}


async def authenticate(
    request: Request, credentials: HTTPAuthorizationCredentials | None
) -> Principal | None:
    """The caller, from a bearer key or else the session cookie; None when neither is valid."""
    return await _principal(request, None if credentials is None else credentials.credentials)


async def _principal(request: Request, token: str | None) -> Principal | None:
    state = get_state(request)
    if token is not None:
        key = await _verify(state, token)
        return None if key is None else Principal(key.name, key.role, key.id)
    session = _session(state, request)
    if session is None:
        return None
    key = await _by_id(state, session["k"])
    if key is None:
        return None
    return Principal(key.name, key.role, key.id, via="session", csrf=session["c"])


async def _check_csrf(request: Request, principal: Principal) -> None:
    if principal.via != "session" or request.method in _SAFE_METHODS:
        return
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(_FORM_TYPES):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if sent is None or principal.csrf is None or not secrets.compare_digest(sent, principal.csrf):
        raise ApiError(
            403,
            "csrf_failed",
            f"A request signed in with a session cookie must carry the session's CSRF token "
            f"in the {CSRF_HEADER} header or a `{CSRF_FIELD}` form field; it was missing or "
            "wrong. Reload the page, or use an API key (Authorization: Bearer) instead.",
            field=CSRF_HEADER,
            expected="the session's CSRF token",
        )


class _RoleGate(HTTPBearer):
    """What :func:`require` returns: ONE dependency that reads the ``Authorization`` header
    (or the session cookie) itself and checks the role.

    A plain function taking ``Depends(bearer)`` made FastAPI resolve a nested dependency on
    every request, which cost more than the key check; being an ``HTTPBearer`` keeps the
    route's security requirement in OpenAPI exactly as before.
    """

    def __init__(self, admitted: frozenset[str]) -> None:
        super().__init__(auto_error=False, scheme_name="HTTPBearer", description=_BEARER_TEXT)
        self.admitted = admitted
        self.roles = tuple(sorted(admitted))

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        principal = await _principal(request, _bearer_token(request))
        if principal is None:
            raise ApiError(
                401,
                "unauthenticated",
                "No valid API key: send `Authorization: Bearer fw_<id>_<secret>` (create one "
                "with `failwise keys create --role ROLE --name NAME`), or sign in.",
                field="Authorization",
                expected="a valid API key",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if principal.role not in self.admitted:
            raise ApiError(
                403,
                "forbidden",
                f"The key {principal.key_id!r} has role {principal.role!r}; this needs one of "
                f"{list(self.roles)}.",
                received=principal.role,
                expected=f"one of {list(self.roles)}",
            )
        await _check_csrf(request, principal)
        request.state.principal = principal
        return principal


def _bearer_token(request: Request) -> str | None:
    """The token of the ``Authorization`` header, as :data:`bearer` reads it (no credentials
    object per request: the gate needs only the token)."""
    scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
    if not (scheme and token) or scheme.lower() != "bearer":
        return None
    return token


def require(*roles: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that admits callers with one of ``roles`` (admins always).

    Use it as ``principal: Principal = Depends(require("reviewer"))``. It answers 401 when
    there is no valid key or session, 403 for another role or a missing CSRF token on a
    cookie-authenticated state change. A key revoked elsewhere is refused once the key
    cache's entry for it expires (``Settings.key_cache_s``).
    """
    unknown = [role for role in roles if role not in ROLES]
    if unknown or not roles:
        raise ValueError(f"require() takes roles among {list(ROLES)}; got {list(roles)}.")
    return _RoleGate(frozenset(roles) | {"admin"})


def csrf_token(request: Request) -> str | None:
    """The CSRF token of the request's session (for forms), or None without a session."""
    principal = getattr(request.state, "principal", None)
    if isinstance(principal, Principal) and principal.csrf is not None:
        return principal.csrf
    session = _session(get_state(request), request)
    return None if session is None else session["c"]


# ------------------------------------------------------------------------------ routes
class SignIn(BaseModel):
    """``POST /sign-in`` as JSON."""

    model_config = ConfigDict(extra="forbid", strict=True)

    key: Annotated[str, Field(min_length=1, max_length=200)]


class SignedIn(BaseModel):
    """Who signed in, and the CSRF token their state-changing requests must carry."""

    name: str
    role: str
    key_id: str
    csrf_token: str


def _safe_next(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith("/") or value.startswith("//"):
        return "/"
    parts = urlsplit(value)
    return "/" if parts.scheme or parts.netloc or "\\" in value else value


def _wants_html(request: Request) -> bool:
    """Whether a form's sender is a browser page (it asks for HTML) rather than a script."""
    return "text/html" in request.headers.get("accept", "")


def _secure(state: ServiceState, request: Request) -> bool:
    if state.settings.cookie_secure is not None:
        return state.settings.cookie_secure
    return request.url.scheme == "https"


auth_router = APIRouter(tags=["sign-in"], dependencies=[Depends(strict_query)])

_SIGN_IN_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": SignIn.model_json_schema()},
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "key": {"type": "string", "minLength": 1},
                        "next": {"type": "string"},
                    },
                    "required": ["key"],
                }
            },
        },
    }
}


#: A form that fails gets the sign-in page again (HTML), with the error on it.
_FORM_AGAIN = {"text/html": {"schema": {"type": "string"}}}
_SIGN_IN_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {
        **ERROR_RESPONSES[status],
        "content": _FORM_AGAIN,
        "description": f"{ERROR_RESPONSES[status]['description']} (a form: the sign-in page "
        "again, with the message)",
    }
    for status in (401, 422)
}


def _form_again(request: Request, status: int, message: str, target: str) -> Response:
    """The sign-in page again, with ``message`` (what a person gets for a wrong key)."""
    from failwise.service._render import page  # _render imports this module

    return page(
        request,
        "sign_in.html.j2",
        principal=None,
        title="Sign in",
        status_code=status,
        now=time.time(),
        next_url=target,
        error=message,
    )


@auth_router.post(
    "/sign-in",
    response_model=SignedIn,
    responses={303: {"description": "Signed in (form): to `next`"}, **_SIGN_IN_ERRORS},
    openapi_extra=_SIGN_IN_BODY,
)
async def sign_in(request: Request) -> Response:
    """Sign in with an API key: sets the session cookie; JSON or a form (then a redirect)."""
    state = get_state(request)
    is_form = request.headers.get("content-type", "").startswith(_FORM_TYPES)
    target = "/"
    if is_form:
        form = await request.form()
        raw_key: Any = form.get("key")
        target = _safe_next(form.get("next"))
        if not isinstance(raw_key, str) or not raw_key:
            if _wants_html(request):
                return _form_again(request, 422, "Enter your API key to sign in.", target)
            return error_response(
                422,
                ErrorDetail(
                    code="missing",
                    message="`key`: the form needs the API key.",
                    field="key",
                    expected="an API key",
                ),
            )
        token = raw_key
    else:
        try:
            token = SignIn.model_validate_json(await request.body()).key
        except ValidationError as error:
            from fastapi.exceptions import RequestValidationError

            raise RequestValidationError(
                [{**e, "loc": ("body", *e["loc"])} for e in error.errors()]
            ) from None
    key = await _verify(state, token)
    if key is None and is_form and _wants_html(request):
        return _form_again(
            request,
            401,
            "That API key is not valid: it is unknown, revoked or mistyped. Paste the whole "
            "key (it starts with fw_), or ask an admin for a new one.",
            target,
        )
    if key is None:
        raise ApiError(
            401,
            "unauthenticated",
            "That API key is not valid (unknown, revoked or mistyped).",
            field="key",
            expected="a valid API key",
        )
    csrf = secrets.token_urlsafe(24)
    cookie = _serializer(state).dumps({"k": key.id, "c": csrf})
    response: Response
    if is_form:
        response = RedirectResponse(target, status_code=303)
    else:
        body = SignedIn(name=key.name, role=key.role, key_id=key.id, csrf_token=csrf)
        response = JSONResponse(body.model_dump())
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=int(state.settings.session_max_age_s),
        httponly=True,
        samesite="lax",
        secure=_secure(state, request),
        path="/",
    )
    return response


@auth_router.post(
    "/sign-out",
    status_code=204,
    responses={303: {"description": "Signed out (form): to `next`"}, **responses(403, 422)},
)
async def sign_out(request: Request) -> Response:
    """Forget the session cookie (a signed-in session must send its CSRF token)."""
    state = get_state(request)
    session = _session(state, request)
    if session is not None:
        principal = Principal("", "viewer", session["k"], via="session", csrf=session["c"])
        await _check_csrf(request, principal)
    response: Response = Response(status_code=204)
    if request.headers.get("content-type", "").startswith(_FORM_TYPES):
        form = await request.form()
        response = RedirectResponse(_safe_next(form.get("next")), status_code=303)
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=_secure(state, request)
    )
    return response
