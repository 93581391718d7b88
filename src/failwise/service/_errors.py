"""Every error of the service as one JSON shape, and the library's errors mapped to statuses.

The body is always ``{"error": {"code", "message", "field", "received", "expected"}}``, or
``{"error": [...]}`` with one entry per field when several are wrong:

- a request that does not match its model → 422, one entry per field;
- a refused argument (:class:`~failwise.InputError`) → 422;
- an unknown task, queue item or key → 404;
- a queue item in the wrong state, or a task id taken → 409;
- a store that cannot be reached or written (:class:`~failwise.store.StoreError`) → 503
  with ``Retry-After``: nothing is acknowledged that is not durable;
- a body over the limit → 413; too many requests in flight → 503 (see
  :mod:`failwise.service._limits`);
- anything else is a bug: logged with its traceback, answered with a JSON 500.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from failwise.exceptions import InputError
from failwise.runtime import DecisionNotRecordedError
from failwise.store import (
    DuplicateTaskError,
    QueueStateError,
    StoreError,
    UnknownItemError,
    UnknownKeyError,
    UnknownTaskError,
)

__all__ = [
    "ERROR_RESPONSES",
    "ApiError",
    "ErrorBody",
    "ErrorDetail",
    "error_response",
    "install_error_handlers",
    "responses",
    "strict_query",
]

logger = logging.getLogger("failwise.service")

#: Seconds a client should wait before retrying a 503.
RETRY_AFTER_S = 1


class ErrorDetail(BaseModel):
    """One thing wrong with a request."""

    code: str
    message: str
    field: str | None = None
    received: Any = None
    expected: str | None = None


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: ErrorDetail | list[ErrorDetail]


class ApiError(Exception):
    """An error with its HTTP status, raised by the service's own checks."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        received: Any = None,
        expected: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.detail = ErrorDetail(
            code=code, message=message, field=field, received=received, expected=expected
        )
        self.headers = dict(headers or {})


_DESCRIPTIONS = {
    400: "Bad request",
    401: "No valid API key or session",
    403: "The key's role may not do this",
    404: "No such task, queue item or key",
    409: "Conflict with the current state (queue item state, task id taken)",
    413: "Request body over the limit",
    422: "The request does not match its model; each entry names the field",
    503: "The store is unreachable or the service is overloaded; retry after Retry-After",
}

#: OpenAPI ``responses`` for every error status.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text} for status, text in _DESCRIPTIONS.items()
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` entries of ``statuses``."""
    return {status: ERROR_RESPONSES[status] for status in statuses}


def _jsonable(value: Any, depth: int = 0) -> Any:
    """``value`` as JSON can hold it, cut short when large (it is echoed back)."""
    if value is None or isinstance(value, (bool, int, str)):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53:
            return str(value)
        if isinstance(value, str) and len(value) > 200:
            return value[:200] + "…"
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if depth < 2 and isinstance(value, Mapping) and len(value) <= 20:
        return {str(k): _jsonable(v, depth + 1) for k, v in value.items()}
    if depth < 2 and isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        if len(value) <= 20:
            return [_jsonable(v, depth + 1) for v in value]
        return f"a list of {len(value)} items"
    text = repr(value)
    return text if len(text) <= 200 else text[:200] + "…"


def error_response(
    status: int,
    details: ErrorDetail | Sequence[ErrorDetail],
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """The JSON response of an error (one detail, or several)."""
    if isinstance(details, ErrorDetail):
        body: Any = details.model_dump()
    elif len(details) == 1:
        body = details[0].model_dump()
    else:
        body = [d.model_dump() for d in details]
    for entry in body if isinstance(body, list) else [body]:
        entry["received"] = _jsonable(entry["received"])
    return JSONResponse({"error": body}, status_code=status, headers=dict(headers or {}))


def _field(loc: Sequence[Any]) -> str:
    parts = list(loc)
    where = parts.pop(0) if parts and parts[0] in ("body", "query", "path", "header") else None
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    if where in (None, "body"):
        return text or "body"
    return f"{where}.{text}" if text else where


def _expected(item: Mapping[str, Any]) -> str:
    message = str(item.get("msg", ""))
    return message.removeprefix("Value error, ").removeprefix("Input should be ")


def _validation_details(error: RequestValidationError) -> list[ErrorDetail]:
    details = []
    for item in error.errors():
        field = _field(item.get("loc", ()))
        kind = str(item.get("type", "invalid"))
        received = item.get("input")
        if kind == "json_invalid":
            ctx = item.get("ctx") or {}
            message = f"The body is not valid JSON: {ctx.get('error', 'decode error')}."
            details.append(
                ErrorDetail(code="invalid_json", message=message, field="body", expected="JSON")
            )
            continue
        if kind == "missing":
            received = None
        expected = _expected(item) if kind != "missing" else "a value (the field is required)"
        if kind == "extra_forbidden":
            expected = "no such field (unknown fields are refused)"
        details.append(
            ErrorDetail(
                code=kind,
                message=f"`{field}`: {item.get('msg', 'invalid')}.",
                field=field,
                received=received,
                expected=expected,
            )
        )
    return details


def _library_error(error: Exception) -> tuple[int, str]:
    if isinstance(error, DecisionNotRecordedError):
        cause = error.__cause__
        if isinstance(cause, DuplicateTaskError):
            return 409, "task_exists"
        if isinstance(cause, InputError) and not isinstance(cause, StoreError):
            return 422, "invalid"
        return 503, "store_unavailable"
    if isinstance(error, (UnknownTaskError, UnknownItemError, UnknownKeyError)):
        return 404, "not_found"
    if isinstance(error, DuplicateTaskError):
        return 409, "task_exists"
    if isinstance(error, QueueStateError):
        return 409, "queue_state"
    if isinstance(error, InputError):
        return 422, "invalid"
    return 503, "store_unavailable"


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` with the JSON error body."""

    async def on_api_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, ApiError)
        return error_response(error.status, error.detail, error.headers)

    async def on_validation(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        return error_response(422, _validation_details(error))

    async def on_http(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, HTTPException)
        if error.status_code == 400 and error.detail == "There was an error parsing the body":
            detail = ErrorDetail(
                code="invalid_json",
                message="The body could not be read as JSON (it must be UTF-8 JSON text).",
                field="body",
                expected="UTF-8 JSON",
            )
            return error_response(422, detail)
        codes = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}
        code = codes.get(error.status_code, f"http_{error.status_code}")
        message = str(error.detail) if error.detail else "HTTP error"
        return error_response(
            error.status_code, ErrorDetail(code=code, message=message), error.headers
        )

    async def on_library(request: Request, error: Exception) -> JSONResponse:
        status, code = _library_error(error)
        headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else {}
        if status == 503:
            logger.warning(
                "store unavailable on %s %s: %s", request.method, request.url.path, error
            )
        return error_response(status, ErrorDetail(code=code, message=str(error)), headers)

    async def on_bug(request: Request, error: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(
            500,
            ErrorDetail(
                code="internal_error",
                message="An unexpected error happened; it was logged. This is a bug in "
                "failwise: please report it with the log entry.",
            ),
        )

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(StoreError, on_library)
    app.add_exception_handler(InputError, on_library)
    app.add_exception_handler(Exception, on_bug)


_KNOWN_QUERY: dict[int, frozenset[str]] = {}


async def strict_query(request: Request) -> None:
    """Refuse query parameters the route does not declare (as bodies refuse extra fields).

    Async only so that FastAPI runs it on the event loop: it never waits, and a plain
    function dependency costs a round trip through a worker thread per request.
    """
    if not request.query_params:
        return
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    known = _KNOWN_QUERY.get(id(route))
    if known is None:
        names: set[str] = set()
        pending = [dependant]
        while pending:
            current = pending.pop()
            names.update(str(field.alias) for field in current.query_params)
            pending.extend(current.dependencies)
        known = frozenset(names)
        _KNOWN_QUERY[id(route)] = known
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise ApiError(
            422,
            "extra_forbidden",
            f"Unknown query parameter {unknown[0]!r}; this route takes "
            f"{sorted(known) if known else 'none'}.",
            field=f"query.{unknown[0]}",
            received=request.query_params.get(unknown[0]),
            expected="no such parameter (unknown parameters are refused)",
        )
