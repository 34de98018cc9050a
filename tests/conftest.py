"""Fixtures shared by every test: a frozen, adjustable clock, the storage backends and servers
for ASGI apps on loopback ports.

PostgreSQL is a real server, started once per session from the machine's binaries by
pytest-postgresql (through tests/support/pg_ctl); each test gets a database of its own.
Redis is a real server too (pytest-redis), emptied before each test that asks for it.
"""

from __future__ import annotations

import io
import itertools
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
import structlog
from pytest_postgresql import factories
from pytest_postgresql.executors.proc import PostgreSQLExecutor
from pytest_postgresql.janitor import DatabaseJanitor
from pytest_redis import factories as redis_factories
from pytest_redis.executor import RedisExecutor

from payonce.adapters.clock import AdjustableClock
from payonce.adapters.storage.engine import open_engine, sqlite_url, upgrade
from payonce.adapters.storage.memory import MemoryStorage
from payonce.adapters.storage.sql import SqlStorage
from payonce.entrypoints import logs
from payonce.ports.storage import Storage
from payonce.sandbox.keys import SandboxKeys
from tests.loopback import Serve, loopback_servers

START = datetime(2026, 11, 24, 8, 0, 0, tzinfo=UTC)
PG_CTL = Path(__file__).with_name("support") / "pg_ctl"

postgresql_proc = factories.postgresql_proc(executable=str(PG_CTL), port=None)
_databases = itertools.count(1)
redis_proc = redis_factories.redis_proc(port=None)


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """What this process logs, as the servers log it (JSON lines, redacted), while it runs."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stream = io.StringIO()
    logs.configure("json", stream=stream)
    yield stream
    root.handlers = handlers
    root.setLevel(level)
    structlog.reset_defaults()


@pytest.fixture(scope="session")
def sandbox_keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """RSA keys take a while to make: one set of every channel's keys for the whole session."""
    directory = tmp_path_factory.mktemp("keys") / "sandbox"
    SandboxKeys.load_or_create(directory)
    return directory


@pytest.fixture
def clock() -> AdjustableClock:
    """Time stands still unless a test moves it."""
    return AdjustableClock(start=START)


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Serve an ASGI app on a loopback port for the test; returns its base URL."""
    async with loopback_servers() as start:
        yield start


async def sqlite_storage(path: Path) -> SqlStorage:
    engine = open_engine(sqlite_url(path))
    await upgrade(engine)
    return SqlStorage(engine)


@pytest.fixture
def postgres_url(postgresql_proc: PostgreSQLExecutor) -> Iterator[str]:
    """A fresh, empty database on the session's PostgreSQL server; dropped afterwards."""
    name = f"payonce_{next(_databases)}"
    proc = postgresql_proc
    with DatabaseJanitor(
        user=proc.user,
        host=proc.host,
        port=proc.port,
        dbname=name,
        password=proc.password,
    ):
        yield f"postgresql+psycopg://{proc.user}@{proc.host}:{proc.port}/{name}"


@pytest.fixture
def redis_url(redis_proc: RedisExecutor) -> str:
    """The session's Redis server, emptied for this test."""
    url = f"redis://{redis_proc.host}:{redis_proc.port}/0"
    with redis.Redis.from_url(url) as client:
        client.flushall()
    return url


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    """Every storage adapter, so one contract suite runs against each."""
    if request.param == "memory":
        yield MemoryStorage()
        return
    if request.param == "postgres":
        engine = open_engine(request.getfixturevalue("postgres_url"))
        await upgrade(engine)
        sql = SqlStorage(engine)
    else:
        sql = await sqlite_storage(tmp_path / "payonce.db")
    yield sql
    await sql.close()
