"""Migrations carry data written by earlier versions forward, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import text

from payonce.adapters.clock import AdjustableClock
from payonce.adapters.locks.memory import InProcessLocks
from payonce.adapters.storage.engine import open_engine, sqlite_url, upgrade
from payonce.adapters.storage.sql import SqlStorage


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
async def test_nanosecond_fence_tokens_are_rescaled_so_new_grants_may_write(
    database: str, tmp_path: Path, request: pytest.FixtureRequest, clock: AdjustableClock
) -> None:
    url = (
        request.getfixturevalue("postgres_url")
        if database == "postgres"
        else sqlite_url(tmp_path / "old.db")
    )
    engine = open_engine(url)
    await upgrade(engine, "0001")
    written_before = time.time_ns()  # what the first version's locks issued
    async with engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO lock_fences (key, token) VALUES ('order:o1', :t)"),
            {"t": written_before},
        )
    await upgrade(engine)
    storage = SqlStorage(engine)
    try:
        async with engine.connect() as conn:
            kept = (await conn.execute(text("SELECT token FROM lock_fences"))).scalar_one()
        assert kept == written_before // 1000
        async with (
            InProcessLocks(clock).hold("order:o1", ttl_s=5, wait_s=1) as lease,
            storage.transaction() as uow,
        ):
            await uow.fences.check("order:o1", lease.token)  # a new grant may write
    finally:
        await storage.close()
