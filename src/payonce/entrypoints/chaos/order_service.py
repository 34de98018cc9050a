"""The shop's order service as the harness runs it: receives payonce's signed webhooks, applies
each event id once, and can be down for a while. What it applied is the truth for I6."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import secrets
import socket
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def new_secret() -> str:
    """A Standard Webhooks secret: whsec_ and the base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


@dataclass
class OrderService:
    secret: str = field(default_factory=new_secret)
    down: bool = False
    # order id → the distinct payment.succeeded event ids applied to it, in order.
    applied: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    payments: dict[str, str] = field(default_factory=dict)  # event id → payment id
    seen: set[str] = field(default_factory=set)
    calls: int = 0
    refused_while_down: int = 0
    forged: int = 0
    url: str = ""

    def _verified(self, headers: dict[str, str], body: bytes) -> bool:
        """The Standard Webhooks signature over id.timestamp.body; the timestamp is not held to
        the wall clock, since the harness moves payonce's clock forward."""
        key = base64.b64decode(self.secret.removeprefix("whsec_"))
        signed = f"{headers.get('webhook-id', '')}.{headers.get('webhook-timestamp', '')}."
        digest = hmac.new(key, signed.encode() + body, hashlib.sha256).digest()
        expected = "v1," + base64.b64encode(digest).decode()
        offered = headers.get("webhook-signature", "").split()
        return any(hmac.compare_digest(expected, one) for one in offered)

    async def _receive(self, request: Request) -> Response:
        self.calls += 1
        body = await request.body()
        if self.down:
            self.refused_while_down += 1
            return Response("down", status_code=503)
        headers = {key.lower(): value for key, value in request.headers.items()}
        if not self._verified(headers, body):
            self.forged += 1
            return Response("bad signature", status_code=401)
        event_id = headers["webhook-id"]
        if event_id in self.seen:
            return Response(status_code=204)  # delivered again: applied once already
        message = json.loads(body)
        if message.get("type") == "payment.succeeded":
            data = message["data"]
            self.applied[str(data["order_id"])].append(event_id)
            self.payments[event_id] = str(data["payment_id"])
        self.seen.add(event_id)
        return Response(status_code=204)

    async def outage(self, seconds: float) -> None:
        self.down = True
        try:
            await asyncio.sleep(seconds)
        finally:
            self.down = False

    @contextlib.asynccontextmanager
    async def serving(self, host: str = "127.0.0.1") -> AsyncIterator[OrderService]:
        app = Starlette(routes=[Route("/payments", self._receive, methods=["POST"])])
        sock = socket.socket()
        sock.bind((host, 0))
        self.url = f"http://{host}:{sock.getsockname()[1]}/payments"
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        try:
            yield self
        finally:
            server.should_exit = True
            await task
