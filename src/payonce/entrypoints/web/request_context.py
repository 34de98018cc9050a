"""Names each request: an id (the caller's X-Request-Id when it is sane, else a new one) sent
back in the answer, and stamped with its order or payment on every log line and audit row."""

from __future__ import annotations

import re
import secrets

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from payonce.entrypoints import logs
from payonce.service.provenance import caused_by

REQUEST_ID_HEADER = "x-request-id"
# A caller's own id is kept when it is short and plain; anything else is replaced, so a log
# line never carries what a stranger chose to write into it.
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_ORDER_IN_PATH = re.compile(r"/api/orders/(ord_[0-9a-z]{1,40})")
_PAYMENT_IN_PATH = re.compile(r"/api/payments/(pay_[0-9a-z]{1,40})")


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == REQUEST_ID_HEADER.encode():
            given = bytes(value).decode("latin-1")
            if _SANE_ID.match(given):
                return given
    return f"req_{secrets.token_hex(8)}"


def _found(pattern: re.Pattern[str], path: str) -> str | None:
    match = pattern.search(path)
    return match.group(1) if match else None


class RequestContext:
    """Pure ASGI middleware (it must not buffer streamed answers or WebSockets)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id  # for the 500 handler
        path: str = scope["path"]
        method = scope.get("method", "WS")

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        with (
            logs.bound(
                request_id=request_id,
                order_id=_found(_ORDER_IN_PATH, path),
                payment_id=_found(_PAYMENT_IN_PATH, path),
            ),
            caused_by(f"{method} {path} {request_id}"),
        ):
            await self.app(scope, receive, send_with_id)
