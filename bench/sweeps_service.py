"""The real sweeper, ``payonce.service.sweeper.sweep``, timed over the loaded tables: one pass
takes every due trade, asks its provider, and gives it a poll job again.

The providers are a stub that answers every query at once with "the trade is still open", so
the time measured is payonce's own: the sweeper's reads, the order lock (in-process), the
answer's record and the new poll job, per trade. It never makes a network call. Its log lines
(one warning per swept trade, by design) are counted, not printed.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from payonce.adapters.cache.memory import InProcessCache
from payonce.adapters.clock import AdjustableClock
from payonce.adapters.feed.memory import InProcessFeed
from payonce.adapters.locks.memory import InProcessLocks
from payonce.adapters.storage.sql import SqlStorage
from payonce.domain.channels import Channel
from payonce.ports.provider import TradeSnapshot, TradeState
from payonce.service.context import Deps, Policy
from payonce.service.sweeper import sweep

from .sweeps_data import Population, restore_sql
from .sweeps_sql import RunSql


class StillOpen:
    """A provider whose every trade is open; it only counts the queries it answered."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.queries = 0

    async def query(self, out_trade_no: str, *, provider_trade_no: str | None = None) -> Any:
        self.queries += 1
        return TradeSnapshot(TradeState.OPEN, provider_trade_no=provider_trade_no)

    async def aclose(self) -> None:
        return None


class LogCount(logging.Handler):
    """Counts payonce's log records by level while attached, instead of printing them."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.levels: Counter[str] = Counter()
        self.messages: Counter[str] = Counter()  # by template, e.g. "payment %s was not ..."

    def emit(self, record: logging.LogRecord) -> None:
        self.levels[record.levelname] += 1
        self.messages[f"{record.levelname} {record.msg}"] += 1

    def as_json(self) -> dict[str, Any]:
        return {"by_level": dict(self.levels), "by_message": dict(self.messages.most_common(10))}


def counted_logs() -> tuple[LogCount, logging.Logger]:
    """Route the payonce logger to a counter (no output) until the caller detaches it."""
    logger = logging.getLogger("payonce")
    counter = LogCount()
    logger.addHandler(counter)
    logger.propagate = False
    return counter, logger


def detach(counter: LogCount, logger: logging.Logger) -> None:
    logger.removeHandler(counter)
    logger.propagate = True


@contextmanager
def _timing_reads(engine: AsyncEngine) -> Iterator[dict[str, float]]:
    """Time spent executing the sweeper's query (``FROM payments LEFT OUTER JOIN poll_jobs``),
    from the engine's cursor events: the statement sent and its rows received."""
    spent = {"count": 0.0, "ms": 0.0}
    started: dict[int, float] = {}

    def before(_conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if "LEFT OUTER JOIN poll_jobs" in statement:
            started[id(cursor)] = time.perf_counter()

    def after(_conn: Any, cursor: Any, *_: Any) -> None:
        begun = started.pop(id(cursor), None)
        if begun is not None:
            spent["count"] += 1
            spent["ms"] += (time.perf_counter() - begun) * 1000

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    event.listen(engine.sync_engine, "after_cursor_execute", after)
    try:
        yield spent
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", before)
        event.remove(engine.sync_engine, "after_cursor_execute", after)


async def sweeper_passes(
    storage: SqlStorage, population: Population, rounds: int, run_sql: RunSql
) -> dict[str, Any]:
    """Rounds of one real sweeper pass each, from the same due set every time."""
    providers = {channel: StillOpen(channel) for channel in Channel}
    clock = AdjustableClock(start=population.now)
    deps = Deps(
        storage=storage,
        clock=clock,
        locks=InProcessLocks(clock),
        cache=InProcessCache(clock),
        feed=InProcessFeed(),
        providers=providers,  # type: ignore[arg-type]
        policy=Policy(),
    )
    restore = restore_sql(storage.engine.dialect.name, population, payments=True)
    took, swept, reads = [], [], []
    counter, logger = counted_logs()
    try:
        for _ in range(rounds):
            run_sql(restore)
            with _timing_reads(storage.engine) as spent:
                started = time.perf_counter()
                swept.append(await sweep(deps))
                took.append((time.perf_counter() - started) * 1000)
            reads.append(spent)
    finally:
        detach(counter, logger)
    run_sql(restore)
    ordered = sorted(took)
    return {
        "passes": rounds,
        "swept_per_pass": swept,
        "pass_ms": [round(ms, 1) for ms in took],
        "pass_ms_median": round(ordered[len(ordered) // 2], 1),
        "ms_per_trade_median": round(ordered[len(ordered) // 2] / max(swept[0], 1), 3),
        "provider_queries": sum(p.queries for p in providers.values()),
        # The sweeper's own reads (``unwatched``) within each pass: count, and ms in the driver.
        "reads_per_pass": [int(r["count"]) for r in reads],
        "reads_ms_per_pass": [round(r["ms"], 1) for r in reads],
        "log_records": counter.as_json(),
    }
