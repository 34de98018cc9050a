"""The distributed deployment for real: PostgreSQL and Redis servers, payonce as processes.

Each stack is the one `payonce stack` runs (two API instances, one worker, the sandbox on its
own), on a database of the session's PostgreSQL server and a Redis server of its own that a
test may flush, stop and start again.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis
from pytest_postgresql.executors.proc import PostgreSQLExecutor
from pytest_postgresql.janitor import DatabaseJanitor
from pytest_redis import factories as redis_factories
from pytest_redis.executor import RedisExecutor

from payonce.entrypoints.stack import Stack, StackPlan

CART = [{"sku": "SKU-1", "name": "Tea", "quantity": 1, "unit_amount": 1999}]
_databases = itertools.count(1)

# A Redis server for the stacks alone: tests stop and restart it.
stack_redis_proc = redis_factories.redis_proc(port=None)


@dataclass
class Shop:
    """A shop and its shoppers talking to a running stack, plus what a test needs to look inside."""

    stack: Stack
    redis: RedisExecutor
    http: httpx.AsyncClient

    @property
    def api(self) -> list[str]:
        return self.stack.api_urls

    @property
    def backend(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.stack.api_key}"}

    async def create_order(self) -> dict[str, Any]:
        response = await self.http.post(
            f"{self.api[0]}/api/orders",
            json={"customer_id": "c-1", "currency": "CNY", "lines": CART},
            headers=self.backend,
        )
        assert response.status_code == 201, response.text
        order: dict[str, Any] = response.json()
        return order

    async def apply(
        self, instance: int, order: dict[str, Any], key: str, channel: str = "wechat"
    ) -> httpx.Response:
        return await self.http.post(
            f"{self.api[instance]}/api/orders/{order['id']}/payments",
            json={"channel": channel, "platform": "pc"},
            headers={"Authorization": f"Bearer {order['client_secret']}", "Idempotency-Key": key},
        )

    async def pay(self, code: str) -> httpx.Response:
        return await self.http.post(f"{self.stack.sandbox_url}/wallet/pay", json={"code": code})

    async def wait_until_paid(self, order: dict[str, Any], instance: int = 0) -> dict[str, Any]:
        """Long-poll the order (bounded) until READY_FOR_SHIPMENT; answers the last state."""
        current = order
        for _ in range(20):
            response = await self.http.get(
                f"{self.api[instance]}/api/orders/{order['id']}",
                params={"after_version": current["status_version"], "wait": 10},
                headers=self.backend,
            )
            assert response.status_code == 200, response.text
            current = response.json()
            if current["status"] == "READY_FOR_SHIPMENT":
                break
        return current

    async def sandbox_trades(self) -> list[dict[str, Any]]:
        response = await self.http.get(f"{self.stack.sandbox_url}/trades")
        trades: list[dict[str, Any]] = response.json()["trades"]
        return trades

    def sql(self, query: str, *params: object) -> list[tuple[Any, ...]]:
        url = self.stack.database_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(url) as conn:
            return conn.execute(query, params).fetchall()

    def redis_client(self) -> redis.Redis:
        return redis.Redis(host=self.redis.host, port=self.redis.port)


@pytest.fixture(scope="session")
def stack_database(postgresql_proc: PostgreSQLExecutor) -> Iterator[Callable[[], str]]:
    """Makes a fresh database on the session's PostgreSQL server (dropped at the end)."""
    janitors: list[DatabaseJanitor] = []

    def make() -> str:
        proc = postgresql_proc
        name = f"stack_{next(_databases)}"
        janitor = DatabaseJanitor(
            user=proc.user, host=proc.host, port=proc.port, dbname=name, password=proc.password
        )
        janitor.init()
        janitors.append(janitor)
        return f"postgresql+psycopg://{proc.user}@{proc.host}:{proc.port}/{name}"

    yield make
    for janitor in janitors:
        janitor.drop()


StackFactory = Callable[..., Shop]


@pytest.fixture
async def start_stack(
    tmp_path: Path,
    sandbox_keys: Path,
    stack_database: Callable[[], str],
    stack_redis_proc: RedisExecutor,
) -> AsyncIterator[StackFactory]:
    """Start a stack (2 API instances, 1 worker) with extra PAYONCE_* settings."""
    started: list[Shop] = []

    def start(**settings: str) -> Shop:
        data_dir = tmp_path / f"stack{len(started)}"
        shutil.copytree(sandbox_keys, data_dir / "payonce" / "sandbox")
        with redis.Redis(host=stack_redis_proc.host, port=stack_redis_proc.port) as client:
            client.flushall()
        plan = StackPlan(
            data_dir=data_dir,
            database_url=stack_database(),
            redis_url=f"redis://{stack_redis_proc.host}:{stack_redis_proc.port}/0",
            api_instances=2,
            workers=1,
            settings=settings,
        )
        stack = Stack(plan).start()
        # Idle connections are dropped here before uvicorn drops them (after 5 s): reusing one
        # the server is closing at that moment fails with a ReadError (seen under load).
        limits = httpx.Limits(
            max_connections=400, max_keepalive_connections=400, keepalive_expiry=2.0
        )
        shop = Shop(stack, stack_redis_proc, httpx.AsyncClient(timeout=60, limits=limits))
        started.append(shop)
        return shop

    yield start
    for shop in started:
        await shop.http.aclose()
        shop.stack.stop()
