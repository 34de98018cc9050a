"""What one round trip to PostgreSQL costs this machine's Python, measured on the stack's database:
a bare psycopg query, and a transaction through a SQLAlchemy engine made as payonce makes it."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from payonce.adapters.storage.engine import open_engine


async def _cost(action: Callable[[], Awaitable[Any]], times: int) -> dict[str, float]:
    for _ in range(times // 10):  # warm: connections made, statements prepared
        await action()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(times):
        await action()
    return {
        "wall_us": round((time.perf_counter() - wall) / times * 1e6, 1),
        "client_cpu_us": round((time.process_time() - cpu) / times * 1e6, 1),
    }


async def _transaction_cost(engine: AsyncEngine, times: int) -> dict[str, float]:
    async def transaction() -> None:
        async with engine.connect() as conn, conn.begin():
            await conn.execute(text("SELECT 1"))

    try:
        return await _cost(transaction, times)
    finally:
        await engine.dispose()


async def round_trip_costs(database_url: str, times: int = 2000) -> dict[str, Any]:
    """One at a time, nothing else in flight: the client's CPU per round trip and per
    transaction (checkout, BEGIN, one statement, COMMIT), with and without the pool's ping."""
    raw = database_url.replace("postgresql+psycopg://", "postgresql://")
    async with await psycopg.AsyncConnection.connect(raw, autocommit=True) as conn:
        bare = await _cost(lambda: conn.execute("SELECT 1"), times)
    return {
        "psycopg `SELECT 1` (one round trip)": bare,
        "SQLAlchemy transaction as payonce opens it (pool_pre_ping)": await _transaction_cost(
            open_engine(database_url), times // 2
        ),
        "the same without pool_pre_ping": await _transaction_cost(
            create_async_engine(database_url), times // 2
        ),
    }
