"""The sandbox test harness: real uvicorn servers, the real SDK, a merchant's notify receiver.

Starting and stopping uvicorn costs ~0.3 s, so one server per session serves whichever app the
current test puts on its ``Stage``; each test still gets a fresh Sandbox and clock.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import httpx
from alipay import AliPay
from alipay.utils import AliPayConfig
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from tests.loopback import loopback, served

from payonce.adapters.clock import AdjustableClock
from payonce.sandbox import AlipayCredentials, Sandbox, SandboxKeys, sandbox_root_app

# 10:00 in China.
START = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


bound_socket = loopback


def serve(app: ASGIApp, sock: socket.socket) -> AbstractAsyncContextManager[None]:
    """Serve ``app`` (with its lifespan: the sandbox's dispatcher) on a pre-bound socket."""
    return served(app, sock, lifespan="on")


class Switch:
    """An ASGI app forwarding to whichever app the current test put in place."""

    def __init__(self) -> None:
        self.app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        assert self.app is not None, "no app on stage"
        await self.app(scope, receive, send)


@dataclass
class Stage:
    base: str
    switch: Switch


@asynccontextmanager
async def staged() -> AsyncIterator[Stage]:
    sock, base = bound_socket()
    switch = Switch()
    async with serve(switch, sock):
        yield Stage(base=base, switch=switch)


def merchant_sdk(credentials: AlipayCredentials, gateway: str, *, timeout: float = 15.0) -> AliPay:
    """The unmodified SDK, configured as a merchant does, pointed at the sandbox's gateway."""
    sdk = AliPay(
        appid=credentials.app_id,
        app_notify_url=None,
        app_private_key_string=credentials.app_private_key_pem,
        alipay_public_key_string=credentials.alipay_public_key_pem,
        sign_type="RSA2",
        config=AliPayConfig(timeout=timeout),
    )
    sdk._gateway = gateway
    return sdk


@dataclass
class Env:
    """A sandbox served by uvicorn, with the SDK and an HTTP client pointed at it."""

    sandbox: Sandbox
    clock: AdjustableClock
    credentials: AlipayCredentials
    keys: SandboxKeys
    http: httpx.AsyncClient
    base: str

    @property
    def url(self) -> str:
        return f"{self.base}/sandbox"

    @property
    def gateway(self) -> str:
        return f"{self.url}/alipay/gateway.do"

    def sdk(self, *, timeout: float = 15.0, credentials: AlipayCredentials | None = None) -> AliPay:
        return merchant_sdk(credentials or self.credentials, self.gateway, timeout=timeout)

    async def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a synchronous SDK call off the event loop that serves the sandbox."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def wallet(self, action: str, code: str) -> httpx.Response:
        return await self.http.post(f"{self.url}/wallet/{action}", json={"code": code})

    async def precreate(self, out_trade_no: str, amount: str, **kwargs: Any) -> dict[str, Any]:
        sdk = self.sdk()
        result: dict[str, Any] = await self.call(
            sdk.api_alipay_trade_precreate,
            subject="Tea",
            out_trade_no=out_trade_no,
            total_amount=amount,
            **kwargs,
        )
        assert result["code"] == "10000", result
        return result


@asynccontextmanager
async def sandbox_on_stage(
    stage: Stage, keys: SandboxKeys, clock: AdjustableClock, **options: Any
) -> AsyncIterator[Env]:
    sandbox = Sandbox(
        clock=clock,
        keys=keys,
        public_url=f"{stage.base}/sandbox",
        adjustable_clock=clock,
        **options,
    )
    stage.switch.app = sandbox_root_app(sandbox, run_dispatcher=False)
    try:
        async with httpx.AsyncClient(timeout=10.0, trust_env=False) as http:
            yield Env(
                sandbox=sandbox,
                clock=clock,
                credentials=keys.alipay,
                keys=keys,
                http=http,
                base=stage.base,
            )
    finally:
        # Releases answers still held by a time-out fault.
        await sandbox.aclose()
        stage.switch.app = None


@dataclass
class Receiver:
    """A merchant's notify endpoint: verifies each notification with the SDK, answers as told."""

    url: str
    answers: list[tuple[int, str]] = field(default_factory=list)
    default: tuple[int, str] = (200, "success")
    received: list[dict[str, str]] = field(default_factory=list)
    verified: list[bool] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


def receiver_app(credentials: AlipayCredentials, current: Callable[[], Receiver]) -> FastAPI:
    verifier = merchant_sdk(credentials, "http://unused.invalid/gateway.do")
    app = FastAPI()

    @app.post("/notify")
    async def notify(request: Request) -> PlainTextResponse:
        state = current()
        content_type = request.headers["content-type"]
        assert content_type == "application/x-www-form-urlencoded; charset=utf-8"
        data = dict(parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True))
        state.received.append(dict(data))
        signature = data.pop("sign")
        state.verified.append(bool(verifier.verify(data, signature)))
        status, text = state.answers.pop(0) if state.answers else state.default
        state.arrived.set()
        return PlainTextResponse(text, status_code=status)

    return app
