"""RFC 9457 problem+json responses, each with a stable ``code``, for every refusal payonce makes."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from payonce.domain.transitions import IllegalTransition
from payonce.errors import PayonceError, StateConflict

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}


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


def problem_of(error: PayonceError) -> Response:
    headers = {"Retry-After": "1"} if error.retryable else None
    body = problem_body(error.http_status, error.code, error.title, error.detail)
    return Response(body, status_code=error.http_status, media_type=PROBLEM, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(PayonceError)
    async def _payonce(_: Request, error: PayonceError) -> Response:
        return problem_of(error)

    @app.exception_handler(IllegalTransition)
    async def _moved_on(_: Request, error: IllegalTransition) -> Response:
        # A race the service did not turn into a refusal of its own: the record moved on.
        return problem_of(StateConflict(str(error)))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, error: RequestValidationError) -> Response:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
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
        code = _HTTP_CODES.get(error.status_code, f"http_{error.status_code}")
        body = problem_body(error.status_code, code, str(error.detail))
        return Response(
            body, status_code=error.status_code, media_type=PROBLEM, headers=error.headers
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        body = problem_body(500, "internal_error", "Internal error")
        return Response(body, status_code=500, media_type=PROBLEM)
