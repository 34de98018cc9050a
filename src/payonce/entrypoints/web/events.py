"""The order event WebSocket: the current state on connect, then one message per change."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from payonce.bootstrap import Container
from payonce.domain.ids import OrderId
from payonce.entrypoints.web import rate_limiting
from payonce.entrypoints.web.dependencies import bearer_token
from payonce.entrypoints.web.problems import problem_of
from payonce.errors import Forbidden, PayonceError, RateLimited
from payonce.service import orders
from payonce.service.access import ensure_not_admin
from payonce.service.context import Deps
from payonce.service.views import order_event

router = APIRouter(tags=["orders"])
log = logging.getLogger(__name__)


def origin_allowed(container: Container, headers: Mapping[str, str]) -> bool:
    """A browser names the page that opens a socket (a client that is not a browser names none):
    only pages of this server (by its public URL, or the host the browser asked), and the shop
    sites in PAYONCE_ALLOWED_ORIGINS, may open one. A client_secret that leaked into another
    site's page is then of no use to it."""
    origin = headers.get("origin")
    if origin is None:
        return True
    origin = origin.rstrip("/")
    if origin in container.allowed_origins:
        return True
    return urlsplit(origin).netloc == headers.get("host")


async def _current(deps: Deps, order_id: OrderId) -> dict[str, Any]:
    order = await orders.get_order(deps, order_id)
    payments = await orders.list_payments(deps, order_id)
    return order_event(order, payments[0] if payments else None)


async def _wait_for_close(websocket: WebSocket) -> None:
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await websocket.receive_text()  # clients have nothing to say; this notices them leave


@router.websocket("/api/orders/{order_id}/events")
async def order_events(
    websocket: WebSocket, order_id: str, client_secret: str | None = None
) -> None:
    container: Container = websocket.app.state.container
    deps = container.deps
    token = client_secret or bearer_token(websocket.headers.get("authorization"))
    try:
        if not origin_allowed(container, websocket.headers):
            raise Forbidden("a page of another site may not open this order's events")
        caller = ensure_not_admin(await rate_limiting.authenticated(container, websocket, token))
        caller.ensure_order(OrderId(order_id))
        await orders.get_order(deps, OrderId(order_id))
        await rate_limiting.enforce(container, websocket, caller)
    except RateLimited as limited:
        # Refused with the HTTP answer itself (429, Retry-After), where the server can send one.
        if "websocket.http.response" in websocket.scope.get("extensions", {}):
            await websocket.send_denial_response(problem_of(limited))
        else:
            await websocket.close(code=1008, reason=limited.code)
        return
    except PayonceError:
        await websocket.close(code=1008)  # before accept: the handshake is refused (403)
        return
    await websocket.accept()
    async with deps.feed.subscribe(order_id) as subscription:
        current = await _current(deps, OrderId(order_id))  # read after subscribing: nothing missed
        try:
            await websocket.send_json(current)
        except (WebSocketDisconnect, RuntimeError):
            return  # the client left as soon as it came
        last = int(current["status_version"])
        closed = asyncio.create_task(_wait_for_close(websocket))
        try:
            while not closed.done():
                news = asyncio.create_task(subscription.next(deps.policy.live_heartbeat_s))
                await asyncio.wait({closed, news}, return_when=asyncio.FIRST_COMPLETED)
                if not news.done():
                    news.cancel()
                    break
                message: Mapping[str, Any] | None = news.result()
                if message is None:
                    # Quiet for a while: the state as it is, newer or not. It makes good a lost
                    # publish, and tells the client its socket still lives (it ignores a
                    # status_version it has seen, and gives up on a socket quiet for longer).
                    message = await _current(deps, OrderId(order_id))
                    await websocket.send_json(dict(message))
                    last = max(last, int(message["status_version"]))
                elif int(message["status_version"]) > last:
                    await websocket.send_json(dict(message))
                    last = int(message["status_version"])
        except (WebSocketDisconnect, RuntimeError):
            pass  # the client left while we were sending
        finally:
            closed.cancel()
