"""Fixtures shared by every test: a frozen, adjustable clock and the storage backends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from payonce.adapters.clock import AdjustableClock
from payonce.adapters.storage.engine import open_engine, sqlite_url, upgrade
from payonce.adapters.storage.memory import MemoryStorage
from payonce.adapters.storage.sql import SqlStorage
from payonce.ports.storage import Storage

START = datetime(2026, 11, 24, 8, 0, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> AdjustableClock:
    """Time stands still unless a test moves it."""
    return AdjustableClock(start=START)


async def sqlite_storage(path: Path) -> SqlStorage:
    engine = open_engine(sqlite_url(path))
    await upgrade(engine)
    return SqlStorage(engine)


@pytest.fixture(params=["memory", "sqlite"])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    """Every storage adapter, so one contract suite runs against each."""
    if request.param == "memory":
        yield MemoryStorage()
        return
    sql = await sqlite_storage(tmp_path / "payonce.db")
    yield sql
    await sql.close()
