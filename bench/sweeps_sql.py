"""The sweeper's and the expiry's database cost: every due row taken through the repository in
batches, with the due-time indexes and then without them, and the plans of both queries.

A pass does what the sweeper and the expiry do, through payonce's own storage (``SqlStorage``):
read a batch of at most 100 with ``uow.payments.unwatched`` in one transaction, then give each
one a poll job in a second; or read a batch with ``uow.orders.expired`` and postpone each one's
check in the same transaction (expire_due's claim). The next read then returns the next batch,
until a read returns nothing. The read
is timed alone (the repository call: the SQL round trip and turning rows into domain objects),
and so is the whole batch (both transactions). Between passes the marks are undone in SQL, so
every pass starts from the same due set.

The baseline is the same passes after ``DROP INDEX`` of the two partial indexes: the same
repository code, which the database can then only answer by reading the whole table.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from payonce.adapters.storage.sql import SqlStorage
from payonce.service.context import Policy

from .load import latency_summary
from .sweeps_data import Population, restore_sql

BATCH = 100  # the sweeper's batch (payonce.service.polling.BATCH)
INDEXES = ("ix_payments_live_changed", "ix_orders_expiry_due")
_ACTUAL_ROWS = re.compile(r"actual time=\S+ rows=(\d+) loops=(\d+)")

# One repository read, given a unit of work.
Query = Callable[[Any], Awaitable[Any]]
# Called before each batch's read (outside the timing): the explained pass's EXPLAIN.
# Called before each batch's read, with where the sweeper's read goes on from (None: the start).
Probe = Callable[[Any], Awaitable[None]]
# Runs raw SQL statements on the database under measurement (outside any measured transaction).
RunSql = Callable[[list[str]], None]


@dataclass
class Pass:
    """One pass over the due set: what each batch's read and the whole batch took, in seconds."""

    read_s: list[float] = field(default_factory=list)
    batch_s: list[float] = field(default_factory=list)
    taken: int = 0
    total_s: float = 0.0


def _summary(passes: list[Pass]) -> dict[str, Any]:
    reads = [s for p in passes for s in p.read_s]
    batches = [s for p in passes for s in p.batch_s]
    totals = sorted(p.total_s * 1000 for p in passes)
    read_totals = sorted(sum(p.read_s) * 1000 for p in passes)
    return {
        "read_total_ms_median": round(read_totals[len(read_totals) // 2], 2) if passes else None,
        "passes": len(passes),
        "taken_per_pass": [p.taken for p in passes],
        "reads_per_pass": [len(p.read_s) for p in passes],
        "read": {"n": len(reads), **latency_summary(reads)},
        "batch": {"n": len(batches), **latency_summary(batches)},
        "total_ms_median": round(totals[len(totals) // 2], 2) if totals else None,
        "total_ms_min": round(totals[0], 2) if totals else None,
        "total_ms_max": round(totals[-1], 2) if totals else None,
    }


async def sweep_pass(
    storage: SqlStorage, policy: Policy, now: datetime, before_read: Probe | None = None
) -> Pass:
    """Take every unwatched live payment, 100 at a time, scheduling a poll job for each; each
    read goes on after the last payment of the batch before, as the sweeper's does."""
    stale_before, overdue_before = now - policy.sweep_after, now - policy.sweep_overdue
    done = Pass()
    started = time.perf_counter()
    after = None
    while True:
        if before_read is not None:
            await before_read(after)
        batch_start = time.perf_counter()
        async with storage.transaction() as uow:
            read_start = time.perf_counter()
            found = await uow.payments.unwatched(
                stale_before=stale_before, overdue_before=overdue_before, limit=BATCH, after=after
            )
            done.read_s.append(time.perf_counter() - read_start)
        if found:
            after = (found[-1].updated_at, found[-1].id)
        if found:
            async with storage.transaction() as uow:
                for payment in found:
                    await uow.polls.schedule(
                        payment.id,
                        payment.order_id,
                        due_at=now + policy.poll_wait(payment.channel, 0),
                        attempts=0,
                    )
        done.batch_s.append(time.perf_counter() - batch_start)
        done.taken += len(found)
        if not found:
            break
    done.total_s = time.perf_counter() - started
    return done


async def expiry_pass(
    storage: SqlStorage, policy: Policy, now: datetime, before_read: Probe | None = None
) -> Pass:
    """Take every unpaid order past its deadline, 100 at a time, postponing each one's check."""
    done = Pass()
    started = time.perf_counter()
    while True:
        if before_read is not None:
            await before_read(None)
        batch_start = time.perf_counter()
        async with storage.transaction() as uow:
            read_start = time.perf_counter()
            found = await uow.orders.expired(now=now, limit=BATCH)
            done.read_s.append(time.perf_counter() - read_start)
            for order in found:  # a claim, as expire_due makes it: in the read's transaction
                await uow.orders.postpone_expiry(order.id, until=now + policy.expiry_retry)
        done.batch_s.append(time.perf_counter() - batch_start)
        done.taken += len(found)
        if not found:
            break
    done.total_s = time.perf_counter() - started
    return done


@contextmanager
def _recording(engine: AsyncEngine) -> Iterator[list[tuple[str, Any]]]:
    """Every statement (and its parameters) the engine runs while inside."""
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        seen.append((statement, params))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def _statement(storage: SqlStorage, query: Query) -> tuple[str, Any]:
    """The exact SQL and parameters the repository sends for ``query``."""
    with _recording(storage.engine) as seen:
        async with storage.transaction() as uow:
            await query(uow)
    return next(s for s in reversed(seen) if s[0].lstrip().startswith("SELECT"))


async def _explain(storage: SqlStorage, statement: str, params: Any) -> list[str]:
    """The database's plan of a statement, run for real on PostgreSQL (EXPLAIN (ANALYZE,
    BUFFERS)); on SQLite EXPLAIN QUERY PLAN, which runs nothing."""
    async with storage.engine.connect() as conn:
        if storage.engine.dialect.name == "postgresql":
            result = await conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, params)
            plan = [str(row[0]) for row in result]
        else:
            # A fresh text each time: sqlite3 caches prepared statements by text, and an EXPLAIN
            # never reads the schema again, so a cached one outlives a DROP INDEX.
            unique = f"EXPLAIN QUERY PLAN /* {time.perf_counter_ns()} */ {statement}"
            result = await conn.exec_driver_sql(unique, params)
            plan = [str(row[3]) for row in result]
        await conn.rollback()
    return plan


def _queries(policy: Policy, now: datetime, after: Any = None) -> dict[str, Query]:
    def unwatched(uow: Any) -> Awaitable[Any]:
        return uow.payments.unwatched(
            stale_before=now - policy.sweep_after,
            overdue_before=now - policy.sweep_overdue,
            limit=BATCH,
            after=after,
        )

    def expired(uow: Any) -> Awaitable[Any]:
        return uow.orders.expired(now=now, limit=BATCH)

    return {"sweeper": unwatched, "expiry": expired}


async def explained_pass(
    storage: SqlStorage, policy: Policy, now: datetime, name: str
) -> dict[str, Any]:
    """One more pass, with the plan of each batch's read taken just before it: the first plan
    in full, and what every batch's read touched (PostgreSQL: time and buffers)."""
    plans: list[list[str]] = []
    statements: list[str] = []

    async def probe(after: Any) -> None:
        statement, params = await _statement(storage, _queries(policy, now, after)[name])
        statements.append(statement)
        plans.append(await _explain(storage, statement, params))

    run = sweep_pass if name == "sweeper" else expiry_pass
    await run(storage, policy, now, before_read=probe)
    per_batch = [_plan_figures(plan) for plan in plans]
    return {
        "statement": statements[0],
        "plan": plans[0],
        **per_batch[0],
        "per_batch": [
            {k: v for k, v in figures.items() if k != "uses_partial_index"} for figures in per_batch
        ],
    }


def _plan_figures(plan: list[str]) -> dict[str, Any]:
    """What the plan says it touched: execution time and shared buffers (PostgreSQL only)."""
    figures: dict[str, Any] = {}
    for line in plan:
        text = line.strip()
        if text.startswith("Execution Time:"):
            figures["execution_ms"] = float(text.split(":")[1].split()[0])
        if text.startswith("Planning Time:"):
            figures["planning_ms"] = float(text.split(":")[1].split()[0])
    buffers = next((line for line in plan if "Buffers:" in line), None)
    if buffers is not None:  # the top node's line: the whole query's buffers
        for part in buffers.split("Buffers:")[1].replace(",", " ").split():
            if "=" in part:
                key, value = part.split("=")
                figures[f"buffers_{key}"] = int(value)
    figures["uses_partial_index"] = any(index in line for line in plan for index in INDEXES)
    examined = _rows_examined(plan)
    if examined is not None:
        figures["rows_examined"] = examined
    return figures


def _rows_examined(plan: list[str]) -> int | None:
    """Rows the scan of payments (or orders) looked at: those it returned plus those its own
    filter removed (PostgreSQL's plan only)."""
    for at, line in enumerate(plan):
        if "Scan" in line and (" on payments" in line or " on orders" in line):
            match = _ACTUAL_ROWS.search(line)
            if match is None:
                return None
            # Per loop, averaged: a parallel scan's workers are loops.
            rows, loops = int(match.group(1)), int(match.group(2))
            for below in plan[at + 1 :]:
                if "->" in below:
                    break
                if "Rows Removed by Filter:" in below:
                    rows += int(below.split(":")[1])
            return rows * loops
    return None


async def measure(
    storage: SqlStorage,
    policy: Policy,
    population: Population,
    rounds: int,
    run_sql: RunSql,
    sweeper_rounds: int = 1,
) -> dict[str, Any]:
    """Rounds of both passes with the indexes, an explained pass of each, the real sweeper's
    passes, then the same without the indexes."""
    from .sweeps_service import sweeper_passes  # it imports RunSql from here

    dialect, now = storage.engine.dialect.name, population.now
    restore = restore_sql(dialect, population)
    if dialect == "postgresql":  # the marks' dead rows go, as autovacuum would take them
        restore.append("VACUUM orders, poll_jobs")
    figures: dict[str, Any] = {}
    for label in ("indexed", "no_index"):
        passes: dict[str, list[Pass]] = {"sweeper": [], "expiry": []}
        for _ in range(rounds):
            run_sql(restore)
            passes["sweeper"].append(await sweep_pass(storage, policy, now))
            passes["expiry"].append(await expiry_pass(storage, policy, now))
        found: dict[str, Any] = {name: _summary(done) for name, done in passes.items()}
        found["plans"] = {}
        for name in passes:
            run_sql(restore)
            found["plans"][name] = await explained_pass(storage, policy, now, name)
        found["real_sweeper"] = await sweeper_passes(storage, population, sweeper_rounds, run_sql)
        figures[label] = found
        if label == "indexed":
            run_sql([f"DROP INDEX {index}" for index in INDEXES])
    return figures
