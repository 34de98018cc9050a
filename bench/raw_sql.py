"""The raw SQL baseline: the statements one real apply executed, captured, then replayed directly
on the same database (psycopg 3 on PostgreSQL, sqlite3 on SQLite) with fresh ids.

The capture is honest by construction: one `POST /api/orders/{id}/payments` goes through the real
app (in-process, ASGI) on a container bootstrapped against the very database and sandbox under
measurement, and a SQLAlchemy ``before_cursor_execute`` listener records every statement with
its parameters, grouped by transaction. The replay runs the same statements, transaction by
transaction, for an order created beforehand, with every id the apply made (payment, trade
number, idempotency key) replaced by a fresh one of the same shape; it checks that every
statement touched as many rows as it did in the capture.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy import event

from payonce.bootstrap import bootstrap
from payonce.config import Settings
from payonce.entrypoints.web.app import create_app

from .load import latency_summary

# The ids an apply makes or names: orders, payments, events, trade numbers, our Idempotency-Keys.
TOKEN = re.compile(r"(?:ord|pay|evt)_[0-9a-z]{20}|PO[0-9A-Z]{24}|bench-[0-9a-f]{32}")


@dataclass
class Statement:
    sql: str
    params: Any
    many: bool
    rowcount: int = -1


@dataclass
class Transaction:
    statements: list[Statement] = field(default_factory=list)
    ending: str = "commit"


@dataclass
class Capture:
    """What one apply executed: its transactions and how many pool checkouts they took."""

    dialect: str
    order_id: str
    status: int
    transactions: list[Transaction]
    checkouts: int

    @property
    def statements(self) -> int:
        return sum(
            1
            for tx in self.transactions
            for st in tx.statements
            if not st.sql.lstrip().upper().startswith("BEGIN")
        )

    def describe(self) -> dict[str, Any]:
        tx = len(self.transactions)
        return {
            "dialect": self.dialect,
            "http_status": self.status,
            "transactions": tx,
            "statements": self.statements,
            "pool_checkouts": self.checkouts,
            # Each transaction is BEGIN, its statements, COMMIT; SQLAlchemy's pool_pre_ping adds
            # a `SELECT 1` per checkout, which the replay leaves out.
            "round_trips_replayed": self.statements + 2 * tx,
            "round_trips_service": self.statements + 2 * tx + self.checkouts,
            "sql": [
                [" ".join(st.sql.split())[:160] for st in t.statements] for t in self.transactions
            ],
        }


async def capture_apply(
    settings: Settings, public_url: str, order: dict[str, Any], channel: str = "alipay"
) -> Capture:
    """Run one real apply in-process against ``settings``' database and record its SQL."""
    container = await bootstrap(settings, public_url=public_url)
    engine = container.storage.engine.sync_engine
    transactions: list[Transaction] = []
    state: dict[str, Any] = {"current": None, "checkouts": 0}

    def current() -> Transaction:
        tx: Transaction | None = state["current"]
        if tx is None:
            tx = state["current"] = Transaction()
            transactions.append(tx)
        return tx

    def on_begin(_conn: Any) -> None:
        current()

    def on_end(ending: str) -> Callable[[Any], None]:
        def listener(_conn: Any) -> None:
            if state["current"] is not None:
                state["current"].ending = ending
            state["current"] = None

        return listener

    def on_execute(_c: Any, _cur: Any, sql: str, params: Any, _ctx: Any, many: bool) -> None:
        current().statements.append(Statement(sql, params, many))

    def after_execute(_c: Any, cursor: Any, *_: Any) -> None:
        current().statements[-1].rowcount = cursor.rowcount

    def on_checkout(*_: Any) -> None:
        state["checkouts"] += 1

    on_commit, on_rollback = on_end("commit"), on_end("rollback")
    listeners: list[tuple[Any, str, Callable[..., None]]] = [
        (engine, "begin", on_begin),
        (engine, "commit", on_commit),
        (engine, "rollback", on_rollback),
        (engine, "before_cursor_execute", on_execute),
        (engine, "after_cursor_execute", after_execute),
        (engine.pool, "checkout", on_checkout),
    ]
    app = create_app(container, run_background=False)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=public_url, timeout=60
        ) as http:
            await http.get("/livez")  # nothing of the app's start-up in the capture
            for target, name, fn in listeners:
                event.listen(target, name, fn)
            response = await http.post(
                f"/api/orders/{order['id']}/payments",
                json={"channel": channel, "platform": "pc"},
                headers={
                    "Authorization": f"Bearer {order['client_secret']}",
                    "Idempotency-Key": f"bench-{uuid.uuid4().hex}",
                },
            )
    finally:
        for target, name, fn in listeners:
            if event.contains(target, name, fn):
                event.remove(target, name, fn)
        await container.aclose()
    if response.status_code != 201:
        raise RuntimeError(f"the captured apply failed: {response.status_code} {response.text}")
    # A rollback that only ends a read (SQLAlchemy's reset on return) is no transaction to
    # replay unless it ran statements.
    kept = [tx for tx in transactions if tx.statements]
    return Capture(
        dialect=engine.dialect.name,
        order_id=order["id"],
        status=response.status_code,
        transactions=kept,
        checkouts=state["checkouts"],
    )


class Fresh:
    """Fresh ids of the same shape (prefix, length, alphabet) as the captured ones, from a
    counter: unique within the run and cheap, so the replaying client stays lean."""

    def __init__(self) -> None:
        self._next = itertools.count(1)

    def like(self, token: str) -> str:
        n = next(self._next)
        if token.startswith("bench-"):
            return f"bench-{n:032x}"
        if token.startswith("PO"):
            return f"PO{n:024d}"
        return f"{token[:4]}{n:020d}"


# Renders one parameter value for one replay, given the replay's token -> fresh id mapping.
Render = Callable[[dict[str, str]], Any]


def compile_value(value: Any, found: set[str]) -> Render | None:
    """How to render ``value`` with fresh ids, or None when it names none (sent as captured).
    Adds the ids it names to ``found``."""
    if isinstance(value, str):
        parts = TOKEN.split(value)
        if len(parts) == 1:
            return None
        tokens = TOKEN.findall(value)
        found.update(tokens)
        return lambda m: (
            parts[0] + "".join(m[t] + p for t, p in zip(tokens, parts[1:], strict=True))
        )
    if isinstance(value, bytes):
        text = compile_value(value.decode("latin-1"), found)
        return None if text is None else (lambda m: text(m).encode("latin-1"))
    if hasattr(value, "obj"):  # psycopg's Binary / Json wrappers
        inner = compile_value(value.obj, found)
        kind = type(value)
        return None if inner is None else (lambda m: kind(inner(m)))
    return None


@dataclass
class Compiled:
    """A statement ready to replay: its constant parameters, and those that carry ids."""

    sql: str
    many: bool
    rowcount: int
    params: Any
    varying: list[tuple[Any, Render]]

    @classmethod
    def of(cls, st: Statement, found: set[str]) -> Compiled:
        params = st.params
        varying: list[tuple[Any, Render]] = []
        if not st.many:
            keys = params.keys() if isinstance(params, dict) else range(len(params or ()))
            for key in keys:
                render = compile_value(params[key], found)
                if render is not None:
                    varying.append((key, render))
        elif any(compile_value(repr(row), found) for row in params):
            raise ValueError("executemany of id-carrying rows is not replayable here")
        return cls(st.sql, st.many, st.rowcount, params, varying)

    def bind(self, mapping: dict[str, str]) -> Any:
        if not self.varying:
            return self.params
        bound = dict(self.params) if isinstance(self.params, dict) else list(self.params)
        for key, render in self.varying:
            bound[key] = render(mapping)
        return bound


class Replayer:
    """The capture compiled once; ``mapping(order_id)`` names one replay's fresh ids."""

    def __init__(self, capture: Capture) -> None:
        self.capture = capture
        found: set[str] = set()
        self.transactions = [
            ([Compiled.of(st, found) for st in tx.statements], tx.ending)
            for tx in capture.transactions
        ]
        self.tokens = sorted(found - {capture.order_id})
        self.fresh = Fresh()

    def mapping(self, order_id: str) -> dict[str, str]:
        mapping = {token: self.fresh.like(token) for token in self.tokens}
        mapping[self.capture.order_id] = order_id
        return mapping


@dataclass
class RawRun:
    """The replay's figures: apply-equivalents (all of one apply's transactions) per second."""

    latencies: list[float] = field(default_factory=list)
    transactions: int = 0
    rowcount_mismatches: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0
    concurrency: int = 1

    @property
    def per_s(self) -> float:
        return len(self.latencies) / self.elapsed_s if self.elapsed_s else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "applies_replayed": len(self.latencies),
            "concurrency": self.concurrency,
            "elapsed_s": round(self.elapsed_s, 3),
            "applies_per_s": round(self.per_s, 1),
            "transactions_per_s": round(self.transactions / self.elapsed_s, 1)
            if self.elapsed_s
            else 0.0,
            **latency_summary(self.latencies),
            "rowcount_mismatches": self.rowcount_mismatches,
            "errors": self.errors,
        }


async def replay_postgres(
    url: str,
    capture: Capture,
    order_ids: list[str],
    concurrency: int,
    on_done: Callable[[], None] | None = None,
) -> RawRun:
    """Replay the capture once per order, ``concurrency`` connections (a pool) at a time."""
    url = url.replace("postgresql+psycopg://", "postgresql://")
    run = RawRun(concurrency=concurrency)
    replayer = Replayer(capture)
    connections = [await psycopg.AsyncConnection.connect(url) for _ in range(concurrency)]
    pending = iter(order_ids)

    async def worker(conn: psycopg.AsyncConnection[Any]) -> None:
        for order_id in pending:
            mapping = replayer.mapping(order_id)
            start = time.perf_counter()
            try:
                for statements, ending in replayer.transactions:
                    for st in statements:
                        cursor = conn.cursor()
                        if st.many:
                            await cursor.executemany(st.sql, st.bind(mapping))
                        else:
                            await cursor.execute(st.sql, st.bind(mapping))
                            if cursor.description is not None:
                                await cursor.fetchall()
                        if st.rowcount >= 0 and cursor.rowcount != st.rowcount:
                            run.rowcount_mismatches += 1
                    await (conn.commit() if ending == "commit" else conn.rollback())
                    run.transactions += 1
            except psycopg.Error as error:
                await conn.rollback()
                run.errors[type(error).__name__] = run.errors.get(type(error).__name__, 0) + 1
            run.latencies.append(time.perf_counter() - start)
            if on_done is not None:
                on_done()

    start = time.perf_counter()
    try:
        await asyncio.gather(*(worker(conn) for conn in connections))
    finally:
        run.elapsed_s = time.perf_counter() - start
        for conn in connections:
            await conn.close()
    return run


def _replay_sqlite_sync(
    path: Path, capture: Capture, order_ids: list[str], on_done: Callable[[], None] | None
) -> RawRun:
    run = RawRun(concurrency=1)
    replayer = Replayer(capture)
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    # The same settings as payonce's engine (adapters/storage/engine.py).
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "busy_timeout=30000"):
        conn.execute(f"PRAGMA {pragma}")
    start = time.perf_counter()
    try:
        for order_id in order_ids:
            mapping = replayer.mapping(order_id)
            began = time.perf_counter()
            for statements, ending in replayer.transactions:
                if not statements[0].sql.lstrip().upper().startswith("BEGIN"):
                    conn.execute("BEGIN IMMEDIATE")
                for st in statements:
                    if st.many:
                        cursor = conn.executemany(st.sql, st.bind(mapping))
                    else:
                        cursor = conn.execute(st.sql, st.bind(mapping))
                        cursor.fetchall()
                    if st.rowcount >= 0 and cursor.rowcount != st.rowcount:
                        run.rowcount_mismatches += 1
                conn.execute("COMMIT" if ending == "commit" else "ROLLBACK")
                run.transactions += 1
            run.latencies.append(time.perf_counter() - began)
            if on_done is not None:
                on_done()
    finally:
        run.elapsed_s = time.perf_counter() - start
        conn.close()
    return run


async def replay_sqlite(
    path: Path,
    capture: Capture,
    order_ids: list[str],
    concurrency: int,
    on_done: Callable[[], None] | None = None,
) -> RawRun:
    """SQLite takes one writer at a time: one connection replaying back to back is its best."""
    return await asyncio.to_thread(_replay_sqlite_sync, path, capture, order_ids, on_done)
