"""Admission limits, checked before a request is parsed: body size and requests in flight.

:class:`LimitsMiddleware` is plain ASGI (no per-request task or buffering):

- a request whose ``Content-Length`` is over ``max_body_bytes`` gets 413 at once, before
  any of its body is read; a body without a length (chunked) is counted as it streams in
  and refused with 413 as soon as it passes the limit;
- while ``concurrency_limit`` requests of this worker are in flight, the next one gets 503
  with ``Retry-After`` at once — never a queue that makes clients hang. ``/livez`` and
  ``/readyz`` are exempt, so probes keep answering under load.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from failwise.service._errors import RETRY_AFTER_S, ErrorDetail, error_response

__all__ = ["BodyTooLarge", "LimitsMiddleware"]

_EXEMPT = frozenset({"/livez", "/readyz"})


class BodyTooLarge(HTTPException):
    """The streamed body passed the limit (answered as 413 by the error handlers)."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            413,
            f"The request body is over the limit of {limit} bytes; send less (e.g. split a "
            "batch) or raise max_body_bytes in the service settings.",
        )


class LimitsMiddleware:
    """Refuse oversized bodies (413) and requests beyond the concurrency limit (503)."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, concurrency_limit: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.concurrency_limit = concurrency_limit
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _EXEMPT:
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > limit:
                    await self._refuse(scope, receive, send, 413, BodyTooLarge(limit).detail)
                    return
        if self.in_flight >= self.concurrency_limit:
            await self._refuse(
                scope,
                receive,
                send,
                503,
                f"The service is at its limit of {self.concurrency_limit} requests in flight; "
                f"retry after {RETRY_AFTER_S} s.",
                {"Retry-After": str(RETRY_AFTER_S)},
            )
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        self.in_flight += 1
        try:
            await self.app(scope, counted, send)
        finally:
            self.in_flight -= 1

    @staticmethod
    async def _refuse(
        scope: Scope,
        receive: Receive,
        send: Send,
        status: int,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        code = "body_too_large" if status == 413 else "overloaded"
        response = error_response(status, ErrorDetail(code=code, message=message), headers)
        if status == 413:
            response.headers["Connection"] = "close"
        await response(scope, receive, send)
