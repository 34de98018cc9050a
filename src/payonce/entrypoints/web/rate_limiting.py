"""Which routes are rate limited, and who a call counts against: its client and its order;
and credentials that name no one, counted per address."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from payonce.adapters.rate_limits.windows import BACKEND
from payonce.bootstrap import Container
from payonce.errors import RateLimited, Unauthorized
from payonce.ports.rate_limits import LimitedCall
from payonce.service.access import Caller, authenticate

# (method, route template) → the limited call it is. Creating orders is the backend's alone
# (authenticated, and bounded by its checkout); notifications are the providers'.
LIMITED_ROUTES: dict[tuple[str, str], LimitedCall] = {
    ("POST", "/api/orders/{order_id}/payments"): "apply",
    ("GET", "/api/orders/{order_id}"): "status",
    ("GET", "/api/orders/{order_id}/payments"): "status",
    ("GET", "/api/payments/{payment_id}"): "status",
    ("WS", "/api/orders/{order_id}/events"): "events",
}


def client_of(connection: HTTPConnection, caller: Caller) -> str:
    """The shop backend is one client; a shopper is its address (behind a proxy, uvicorn's
    --proxy-headers makes it the shopper's own)."""
    if caller.is_backend:
        return BACKEND
    host = connection.client.host if connection.client else "unknown"
    return f"ip:{host}"


async def enforce(container: Container, connection: HTTPConnection, caller: Caller) -> None:
    """Count the call if its route is limited; ``RateLimited`` (429) past a limit."""
    limits = container.rate_limits
    route = connection.scope.get("route")
    if limits is None or route is None:
        return
    method = "WS" if connection.scope["type"] == "websocket" else connection.scope["method"]
    call = LIMITED_ROUTES.get((method, getattr(route, "path", "")))
    if call is None:
        return
    params = connection.path_params
    order = caller.order_id or params.get("order_id") or params.get("payment_id", "")
    refusal = await limits.hit(call, client=client_of(connection, caller), order=str(order))
    if refusal is None:
        return
    container.metrics.rate_limited(call, refusal.scope)
    raise RateLimited(
        f"{call} limited to {refusal.limit} per {refusal.scope}",
        retry_after_s=refusal.retry_after_s,
    )


async def authenticated(
    container: Container, connection: HTTPConnection, token: str | None
) -> Caller:
    """The caller the token names; a token that names no one counts against its address's
    window of failed credentials, and past it the answer is 429 instead of 401."""
    try:
        return await authenticate(container.deps, token, container.access)
    except Unauthorized:
        limits = container.rate_limits
        if limits is not None:
            host = connection.client.host if connection.client else "unknown"
            refusal = await limits.hit("credentials", client=f"ip:{host}", order="")
            if refusal is not None:
                container.metrics.rate_limited("credentials", refusal.scope)
                raise RateLimited(
                    f"too many failed credentials from this address ({refusal.limit})",
                    retry_after_s=refusal.retry_after_s,
                ) from None
        raise
