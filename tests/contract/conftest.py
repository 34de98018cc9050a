"""Redis clients for the contract tests: to the session's server, and to a port with no server."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

RedisFactory = Callable[..., Redis]


@pytest.fixture
async def redis_clients(redis_url: str) -> AsyncIterator[RedisFactory]:
    """Makes clients of the test's (emptied) Redis, each with its own connections."""
    clients: list[Redis] = []

    def make(**options: object) -> Redis:
        client = Redis.from_url(redis_url, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
async def redis_client(redis_clients: RedisFactory) -> Redis:
    return redis_clients()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
async def dead_redis() -> AsyncIterator[Redis]:
    """A client of a Redis that is not there: every command fails at once, without retries."""
    client = Redis(
        host="127.0.0.1",
        port=_closed_port(),
        socket_connect_timeout=0.5,
        socket_timeout=0.5,
        retry=Retry(NoBackoff(), 0),
    )
    yield client
    await client.aclose()
