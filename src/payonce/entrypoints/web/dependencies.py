"""FastAPI dependencies: the process container, the caller, and Idempotency-Key handling."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from starlette.responses import Response

from payonce.bootstrap import Container
from payonce.entrypoints.web import rate_limiting
from payonce.entrypoints.web.problems import problem_of, render_json
from payonce.errors import IdempotencyKeyMissing, PayonceError
from payonce.service import idempotency
from payonce.service.access import Caller, ensure_admin, ensure_not_admin
from payonce.service.context import Deps


def container_of(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


def deps_of(request: Request) -> Deps:
    return container_of(request).deps


def bearer_token(authorization: str | None) -> str | None:
    if authorization is None:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


async def caller_of(
    request: Request,
    authorization: Annotated[
        str | None, Header(description="Bearer <API key | client_secret>")
    ] = None,
) -> Caller:
    """The shop backend or one order's shopper (an admin key is refused here), within the
    route's rate limits."""
    container = container_of(request)
    caller = await rate_limiting.authenticated(container, request, bearer_token(authorization))
    ensure_not_admin(caller)
    await rate_limiting.enforce(container, request, caller)
    return caller


async def admin_of(
    request: Request,
    authorization: Annotated[str | None, Header(description="Bearer <admin key>")] = None,
) -> Caller:
    """An operator; the API key and every client_secret are refused here."""
    container = container_of(request)
    caller = await rate_limiting.authenticated(container, request, bearer_token(authorization))
    return ensure_admin(caller)


CallerDep = Annotated[Caller, Depends(caller_of)]
AdminDep = Annotated[Caller, Depends(admin_of)]
DepsDep = Annotated[Deps, Depends(deps_of)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,  # the stored key's column
        description="repeats get the first response, byte for byte",
    ),
]

Handler = Callable[[], Awaitable[tuple[int, Any]]]


async def run_idempotent(
    request: Request, caller: Caller, key: str | None, handler: Handler, *, required: bool = False
) -> Response:
    """Run ``handler`` once per (caller, key); store and replay its response.

    Refusals are stored too (they are the answer to that request), except retryable ones, whose
    key is given back so the same request can be sent again.
    """
    deps = deps_of(request)
    if key is None:
        if required:
            raise IdempotencyKeyMissing()
        status, payload = await handler()
        return Response(render_json(payload), status_code=status, media_type="application/json")
    fingerprint = idempotency.fingerprint(request.method, request.url.path, await request.body())
    claim = await idempotency.begin(deps, caller.scope, key, fingerprint)
    if isinstance(claim, idempotency.StoredResponse):
        deps.metrics.duplicate_prevented("idempotency_key")
        return Response(
            claim.body,
            status_code=claim.status,
            media_type=claim.media_type,
            headers={"Idempotent-Replayed": "true"},
        )
    try:
        status, payload = await handler()
        response = Response(render_json(payload), status_code=status, media_type="application/json")
    except PayonceError as error:
        if error.retryable:
            await idempotency.release(deps, claim)
            raise
        response = problem_of(error)
    except BaseException:
        await idempotency.release(deps, claim)
        raise
    await idempotency.finish(
        deps,
        claim,
        idempotency.StoredResponse(
            response.status_code, bytes(response.body), response.media_type or ""
        ),
    )
    return response
