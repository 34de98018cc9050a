"""A real payonce server on a loopback port (uvicorn, SQLite, the mounted sandbox) per test."""

from __future__ import annotations

import asyncio
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from payonce.adapters.clock import AdjustableClock
from payonce.adapters.storage.engine import open_engine, upgrade
from payonce.bootstrap import Container, bootstrap
from payonce.config import Settings
from payonce.entrypoints.web.app import create_app
from payonce.ports.locks import Locks
from payonce.sandbox.app import Sandbox
from payonce.service.context import Policy

API_KEY = "sk_test_backend"
ADMIN_KEY = "ak_test_operator"
CART = [{"sku": "SKU-1", "name": "Tea", "quantity": 2, "unit_amount": 1999}]


class NotifyOutage:
    """Wraps payonce's app: while ``down``, its notify endpoint answers 500 to every provider."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.down = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.down and scope["type"] == "http" and scope["path"].startswith("/api/notify/"):
            await send({"type": "http.response.start", "status": 500, "headers": []})
            await send({"type": "http.response.body", "body": b"down"})
            return
        await self.app(scope, receive, send)


@dataclass
class Live:
    url: str
    container: Container
    clock: AdjustableClock
    http: httpx.AsyncClient
    outage: NotifyOutage

    @property
    def sandbox(self) -> Sandbox:
        assert self.container.sandbox is not None
        return self.container.sandbox

    @property
    def backend(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {API_KEY}"}

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_KEY}"}

    async def create_order(
        self, lines: list[dict[str, Any]] | None = None, *, currency: str = "CNY"
    ) -> dict[str, Any]:
        response = await self.http.post(
            "/api/orders",
            json={"customer_id": "c-42", "currency": currency, "lines": lines or CART},
            headers=self.backend,
        )
        assert response.status_code == 201, response.text
        order: dict[str, Any] = response.json()
        return order

    async def apply(
        self,
        order: dict[str, Any],
        channel: str = "alipay",
        platform: str = "pc",
        *,
        key: str | None = None,
    ) -> httpx.Response:
        return await self.http.post(
            f"/api/orders/{order['id']}/payments",
            json={"channel": channel, "platform": platform},
            headers={
                "Authorization": f"Bearer {order['client_secret']}",
                "Idempotency-Key": key or str(uuid.uuid4()),
            },
        )

    async def order(self, order: dict[str, Any]) -> dict[str, Any]:
        response = await self.http.get(f"/api/orders/{order['id']}", headers=self.backend)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def payments(self, order: dict[str, Any]) -> list[dict[str, Any]]:
        response = await self.http.get(f"/api/orders/{order['id']}/payments", headers=self.backend)
        assert response.status_code == 200, response.text
        found: list[dict[str, Any]] = response.json()["payments"]
        return found

    async def wallet(self, action: str, code: str) -> httpx.Response:
        return await self.http.post(f"/sandbox/wallet/{action}", json={"code": code})

    async def sandbox_trades(self, out_trade_no: str | None = None) -> list[dict[str, Any]]:
        params = {"out_trade_no": out_trade_no} if out_trade_no else {}
        response = await self.http.get("/sandbox/trades", params=params)
        trades: list[dict[str, Any]] = response.json()["trades"]
        return trades


LiveFactory = Callable[..., Awaitable[Live]]


@pytest.fixture
async def start_live(
    tmp_path: Path, sandbox_keys: Path, clock: AdjustableClock
) -> AsyncIterator[LiveFactory]:
    """Start payonce for real; tests choose the lock adapter, policy and provider timeout."""
    running: list[tuple[uvicorn.Server, asyncio.Task[None], Live]] = []

    async def start(
        *,
        locks: Locks | None = None,
        policy: Policy | None = None,
        provider_timeout_s: float = 5.0,
        database_url: str | None = None,
        **settings_too: Any,
    ) -> Live:
        """``database_url``: a PostgreSQL database (migrated here, as `payonce db upgrade`
        does); None: the embedded SQLite file. ``settings_too``: other Settings fields."""
        data_dir = tmp_path / f"data{len(running)}"
        data_dir.mkdir(parents=True)
        shutil.copytree(sandbox_keys, data_dir / "sandbox")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        fields: dict[str, Any] = {
            "data_dir": data_dir,
            "api_key": API_KEY,
            "admin_key": ADMIN_KEY,
            "clock": "adjustable",
            "provider_timeout_s": provider_timeout_s,
            "database_url": database_url,
            "mount_sandbox": True,
        }
        settings = Settings(**(fields | settings_too))
        if database_url is not None:
            engine = open_engine(database_url)
            await upgrade(engine)
            await engine.dispose()
        container = await bootstrap(
            settings, public_url=url, clock=clock, locks=locks, policy=policy
        )
        outage = NotifyOutage(create_app(container, run_background=False))
        server = uvicorn.Server(uvicorn.Config(outage, log_level="warning"))
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        live = Live(url, container, clock, httpx.AsyncClient(base_url=url, timeout=30), outage)
        running.append((server, task, live))
        return live

    yield start
    for server, task, live in running:
        await live.http.aclose()
        server.should_exit = True
        await task
        await live.container.aclose()


@pytest.fixture
async def live(start_live: LiveFactory) -> Live:
    return await start_live()
