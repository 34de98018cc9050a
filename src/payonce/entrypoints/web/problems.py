"""RFC 9457 problem+json responses, each with a stable ``code``, for every refusal payonce makes."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from payonce.domain.transitions import IllegalTransition
from payonce.entrypoints import logs
from payonce.errors import ChannelUnsupported, PayonceError, StateConflict

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}
# A body of the API over this is refused before it is parsed (413 body_too_large). Far above any
# valid request: an order of 100 lines with the longest names, even \u-escaped, is smaller.
MAX_BODY_BYTES = 256 * 1024
# Provider notifications have a smaller limit of their own, refused in the channel's format.
_LIMITED_PREFIX, _OWN_LIMIT_PREFIX = "/api/", "/api/notify/"
# A field whose every refusal has a code of its own (API.md: unknown channel → channel_unsupported).
_FIELD_ERRORS: dict[str, type[PayonceError]] = {"channel": ChannelUnsupported}
_ENUM_ERRORS = frozenset({"enum", "literal_error"})


def render_json(payload: Any) -> bytes:
    """The one JSON encoding of every response body (stored responses replay these bytes)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def problem_body(
    status: int, code: str, title: str, detail: str | None = None, **extra: Any
) -> bytes:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "code": code}
    if detail:
        body["detail"] = detail
    body.update(extra)
    return render_json(body)


def _text(value: object) -> str | int:
    """A location or message fit for UTF-8: a lone surrogate sent in a key is replaced."""
    if isinstance(value, int):
        return value
    return str(value).encode("utf-8", "replace").decode("utf-8")


def _too_large(limit: int) -> Response:
    body = problem_body(
        413, "body_too_large", "Request body too large", f"at most {limit} bytes are accepted"
    )
    return Response(body, status_code=413, media_type=PROBLEM)


class BodyLimit:
    """Refuses an API request body over ``limit`` bytes (413) before anything reads it whole;
    a declared Content-Length over it is refused without reading at all."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if (
            scope["type"] != "http"
            or not path.startswith(_LIMITED_PREFIX)
            or path.startswith(_OWN_LIMIT_PREFIX)
        ):
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            await _too_large(self.limit)(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        first: Message | None = None
        while True:
            message = await receive()
            if message["type"] != "http.request":
                first = message  # the client left: the app hears it on its first receive
                break
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await _too_large(self.limit)(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        if first is None:
            first = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        pending: list[Message] = [first]

        async def replay() -> Message:
            return pending.pop() if pending else await receive()

        await self.app(scope, replay, send)


def problem_of(error: PayonceError) -> Response:
    headers = {"Retry-After": str(error.retry_after_s)} if error.retryable else None
    body = problem_body(error.http_status, error.code, error.title, error.detail)
    return Response(body, status_code=error.http_status, media_type=PROBLEM, headers=headers)


def _field_refusal(error: RequestValidationError) -> PayonceError | None:
    """The refusal with a code of its own when the only fault is such a field's unknown value."""
    faults = error.errors()
    fields = {str(e.get("loc", ("",))[-1]) for e in faults}
    if len(fields) != 1 or any(e.get("type") not in _ENUM_ERRORS for e in faults):
        return None
    (name,) = fields
    refusal = _FIELD_ERRORS.get(name)
    return refusal(f"unknown {name}") if refusal is not None else None


def install(app: FastAPI) -> None:
    """Every refusal as problem+json: payonce's errors, validation, HTTP errors, bugs; and the
    body limit, whose refusal is one of them."""
    app.add_middleware(BodyLimit)

    @app.exception_handler(PayonceError)
    async def _payonce(_: Request, error: PayonceError) -> Response:
        return problem_of(error)

    @app.exception_handler(IllegalTransition)
    async def _moved_on(_: Request, error: IllegalTransition) -> Response:
        # A race the service did not turn into a refusal of its own: the record moved on.
        return problem_of(StateConflict(str(error)))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, error: RequestValidationError) -> Response:
        refusal = _field_refusal(error)
        if refusal is not None:
            return problem_of(refusal)
        errors = [
            {
                "loc": [_text(part) for part in e.get("loc", ())],
                "msg": _text(e.get("msg", "")),
                "type": _text(e.get("type", "")),
            }
            for e in error.errors()
        ]
        body = problem_body(
            422,
            "invalid_request",
            "Invalid request",
            "the request does not match the schema",
            errors=errors,
        )
        return Response(body, status_code=422, media_type=PROBLEM)

    @app.exception_handler(HTTPException)
    async def _http(_: Request, error: HTTPException) -> Response:
        if error.status_code == 400:
            # FastAPI's own: a body it could not read (not UTF-8, a broken form). Like any body
            # that is not the schema's JSON, it is a 422 invalid_request.
            body = problem_body(422, "invalid_request", "Invalid request", str(error.detail))
            return Response(body, status_code=422, media_type=PROBLEM)
        code = _HTTP_CODES.get(error.status_code, f"http_{error.status_code}")
        body = problem_body(error.status_code, code, str(error.detail))
        return Response(
            body, status_code=error.status_code, media_type=PROBLEM, headers=error.headers
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> Response:
        # Answered outside every other middleware: the request's id is taken from its state.
        request_id: str | None = getattr(request.state, "request_id", None)
        with logs.bound(request_id=request_id):
            log.exception("unhandled error on %s %s", request.method, request.url.path)
        body = problem_body(500, "internal_error", "Internal error")
        headers = {"X-Request-Id": request_id} if request_id else None
        return Response(body, status_code=500, media_type=PROBLEM, headers=headers)
