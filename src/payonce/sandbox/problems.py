"""The sandbox's own HTTP refusals, as RFC 9457 problem details with a stable ``code``."""

from __future__ import annotations

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"


class Problem(Exception):
    """A refusal of a wallet or helper endpoint (never used on a provider's own wire format)."""

    def __init__(self, status: int, code: str, title: str, detail: str | None = None) -> None:
        super().__init__(detail or title)
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail or title


def problem_response(problem: Problem) -> JSONResponse:
    return JSONResponse(
        {
            "type": "about:blank",
            "title": problem.title,
            "status": problem.status,
            "code": problem.code,
            "detail": problem.detail,
        },
        status_code=problem.status,
        media_type=PROBLEM_JSON,
    )


async def handle_problem(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return problem_response(exc)


async def handle_validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = "; ".join(
        f"{'.'.join(str(part) for part in error.get('loc', ()))}: {error.get('msg', '')}"
        for error in exc.errors()
    )
    return problem_response(Problem(422, "invalid_request", "Invalid request", details))


async def handle_http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return problem_response(Problem(exc.status_code, code, str(exc.detail)))
