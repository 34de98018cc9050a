"""The sweeps bench's population: N orders and payments, nearly all settled, a fixed few due.

Generated inside the database by one SQL statement per table (PostgreSQL's ``generate_series``,
SQLite's recursive CTE), so a million rows load in seconds rather than minutes of Python. The
tables themselves come from payonce's own migrations beforehand. Row by row (``i`` = 1..N, one
payment per order), a "slot" every ``stride`` rows is special and all other rows are settled:

=======  ========================================================================================
kind     what the row is
=======  ========================================================================================
settled  98.5 % PAID (order READY_FOR_SHIPMENT), 1 % CLOSED, 0.5 % REFUNDED (order CLOSED),
         changed 1 h to 90 days ago
due      live (PAYING, UNKNOWN, UNPAID, CLOSING), unchanged longer than the sweeper's threshold;
         half have no poll job, half a job overdue by more than ``sweep_overdue``
watched  live, with a poll job due in the next 10 minutes: in the live index, never taken
expired  order UNPAID, its deadline passed in the last hour (its trade CLOSED): the expiry's work
waiting  order UNPAID, deadline in the next 30 minutes (its trade CLOSED)
=======  ========================================================================================

There are ``due`` due payments, ``2 * due`` watched ones, ``due`` expired orders and ``due``
waiting ones, whatever N is: the live part of a real table follows the traffic of the last hours,
the settled part grows without end. The due and watched payments' orders are UNPAID with a
deadline days away (a voucher's), so they are not the expiry's work. Special slots are spread
evenly through the table (every ``stride``-th row), the worst case for reading their heap pages.
Ids are a bijection of ``i`` (multiplication modulo the prime 2^31 - 1), so keys arrive in
random order, as real ids do.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

from payonce.adapters.storage.tables import payments as payments_table

PRIME = 2_147_483_647
SPREAD = 4_294_967_291  # the largest prime below 2^32: h * SPREAD stays below 2^63
LINES = '[{"name": "Tea", "quantity": 2, "sku": "SKU-1", "unit_amount": 1999}]'
ACTION = (
    '{"expires_at": null, "fields": {"qr_code": "https://qr.alipay.com/bax08431qkdnuzrkd0wb2085"},'
    ' "type": "qr_code"}'
)
WAITING = 5  # bench_seed.kind: 0 settled, 1 due without a job, 2 due with an overdue job,
# 3 watched, 4 expired order, 5 waiting order
_CURRENCY = "CASE i % 4 WHEN 2 THEN 'USD' WHEN 3 THEN 'BRL' ELSE 'CNY' END"


@dataclass(frozen=True)
class Population:
    """What to load, and the instant the tables describe (the sweeper's "now")."""

    payments: int
    due: int
    now: datetime
    sweep_after: timedelta
    sweep_overdue: timedelta

    @property
    def special(self) -> int:
        return 5 * self.due

    @property
    def stride(self) -> int:
        if self.payments < self.special:
            raise ValueError(f"{self.payments} payments cannot hold {self.special} special rows")
        return self.payments // self.special

    def counts(self) -> dict[str, int]:
        return {
            "payments": self.payments,
            "orders": self.payments,
            "settled": self.payments - self.special,
            "due_payments": self.due,
            "due_without_poll_job": self.due // 2,
            "due_with_overdue_poll_job": self.due - self.due // 2,
            "live_watched_payments": 2 * self.due,
            "expired_unpaid_orders": self.due,
            "unpaid_orders_not_yet_due": self.due,
        }


class _Dialect:
    """The few SQL spellings that differ between PostgreSQL and SQLite."""

    def __init__(self, name: str, now: datetime) -> None:
        self.name = name
        self.now = now

    def series(self, n: int) -> str:
        """The integers 1..n, as a table of one column ``i`` (64-bit on both backends)."""
        if self.name == "postgresql":
            return f"SELECT i FROM generate_series(CAST(1 AS bigint), {int(n)}) AS g(i)"  # noqa: S608
        return (
            "SELECT i FROM (WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g"  # noqa: S608
            f" WHERE i < {int(n)}) SELECT i FROM g)"
        )

    def ago(self, seconds: str) -> str:
        """The timestamp ``seconds`` (an SQL integer expression) before now."""
        if self.name == "postgresql":
            return f"(TIMESTAMPTZ '{self.now.isoformat()}' - ({seconds}) * INTERVAL '1 second')"
        epoch = int(self.now.timestamp())
        # SQLAlchemy's SQLite DateTime format: naive UTC with six fractional digits.
        return f"(strftime('%Y-%m-%d %H:%M:%S', {epoch} - ({seconds}), 'unixepoch') || '.000000')"

    def hex_id(self, prefix: str, value: str, width: int, upper: bool = False) -> str:
        """A unique id from a unique number below 2^31: spread over 62 bits, in hex."""
        value = f"({value}) * {SPREAD}"
        if self.name == "postgresql":
            text = f"lpad(to_hex({value}), {width}, '0')"
            return f"'{prefix}' || {'upper(' + text + ')' if upper else text}"
        return f"'{prefix}' || printf('%0{width}{'X' if upper else 'x'}', {value})"

    @property
    def true(self) -> str:
        return "TRUE" if self.name == "postgresql" else "1"

    @property
    def false(self) -> str:
        return "FALSE" if self.name == "postgresql" else "0"


def _seed_sql(d: _Dialect, p: Population) -> str:
    """bench_seed: each row's kind, two pseudo-random numbers, its payment's status, how long
    ago the payment last changed, and (unpaid orders) how long until the order's deadline."""
    due, stride, after = p.due, p.stride, int(p.sweep_after.total_seconds())
    slot = f"(i / {stride})"
    kind = (
        f"CASE WHEN i % {stride} <> 0 OR {slot} > {p.special} THEN 0"
        f" WHEN {slot} <= {due // 2} THEN 1 WHEN {slot} <= {due} THEN 2"
        f" WHEN {slot} <= {3 * due} THEN 3 WHEN {slot} <= {4 * due} THEN 4 ELSE {WAITING} END"
    )
    status = (
        "CASE WHEN kind = 0 THEN (CASE WHEN r % 1000 < 985 THEN 'PAID'"
        " WHEN r % 1000 < 995 THEN 'CLOSED' ELSE 'REFUNDED' END)"
        " WHEN kind IN (1, 2) THEN (CASE r / 7 % 10 WHEN 0 THEN 'UNKNOWN' WHEN 1 THEN 'UNPAID'"
        " WHEN 2 THEN 'CLOSING' ELSE 'PAYING' END)"
        " WHEN kind = 3 THEN 'PAYING' ELSE 'CLOSED' END"
    )
    age = (
        f"CASE WHEN kind = 0 THEN 3600 + r % {90 * 86400}"
        f" WHEN kind IN (1, 2) THEN {after + 1} + r % 7200"
        " WHEN kind = 3 THEN r % 7800 ELSE 1800 + r % 3600 END"
    )
    # A voucher's days for the live trades' orders; past or near for the expiry's orders.
    until = (
        "CASE WHEN kind IN (1, 2, 3) THEN 3600 + r % 259200"
        f" WHEN kind = 4 THEN -1 - r % 3600 WHEN kind = {WAITING} THEN 1 + r % 1800 END"
    )
    numbered = (
        f"SELECT i, {kind} AS kind, (i * 48271) % {PRIME} AS h, (i * 69621) % {PRIME} AS g,"  # noqa: S608
        f" (i * 48271 % {PRIME}) * 16807 % {PRIME} AS r FROM ({d.series(p.payments)}) AS s"
    )
    return (
        "CREATE TABLE bench_seed AS SELECT i, kind, h, g, r, "  # noqa: S608 (numbers only)
        f"{status} AS status, {age} AS age_s, {until} AS until_s FROM ({numbered}) AS n"
    )


def _payments_sql(d: _Dialect) -> str:
    # Migration 0006's column: when a PAID payment's money moved (its last change, here).
    paid_at = ""
    if "paid_at" in payments_table.c:
        paid_at = f", CASE WHEN status = 'PAID' THEN {d.ago('age_s')} ELSE NULL END"
    channel = (
        "CASE i % 4 WHEN 0 THEN 'alipay' WHEN 1 THEN 'wechat' WHEN 2 THEN 'paypal'"
        " ELSE 'boleto' END"
    )
    return (
        "INSERT INTO payments (id, order_id, number, channel, platform, currency, amount,"  # noqa: S608
        " out_trade_no, status, version, closable, applied, action, provider_trade_no,"
        f" last_error, created_at, updated_at{', paid_at' if paid_at else ''}) "
        f"SELECT {d.hex_id('pay_', 'g', 20)}, {d.hex_id('ord_', 'h', 20)}, 0, {channel}, 'pc',"
        f" {_CURRENCY}, 3998, {d.hex_id('PO', 'g', 24, upper=True)}, status,"
        " CASE WHEN kind = 0 THEN 3 ELSE 2 END,"
        f" CASE WHEN i % 4 = 3 THEN {d.false} ELSE {d.true} END,"
        f" CASE WHEN status = 'PAID' THEN {d.true} ELSE {d.false} END,"
        f" CASE WHEN status = 'UNPAID' THEN NULL ELSE '{ACTION}' END,"
        f" CASE WHEN status = 'UNPAID' THEN NULL ELSE {d.hex_id('T', 'h', 27)} END,"
        f" NULL, {d.ago('age_s + 120')}, {d.ago('age_s')}{paid_at} FROM bench_seed"
    )


def _orders_sql(d: _Dialect) -> str:
    status = (
        "CASE WHEN status = 'PAID' THEN 'READY_FOR_SHIPMENT'"
        " WHEN kind = 0 THEN 'CLOSED' ELSE 'UNPAID' END"
    )
    # A settled order's deadline was 30 minutes after it was made; the rest: see bench_seed.
    expires = f"CASE WHEN kind = 0 THEN {d.ago('age_s + 130 - 1800')} ELSE {d.ago('-until_s')} END"
    return (
        "INSERT INTO orders (id, customer_id, currency, amount, lines, status, version,"  # noqa: S608
        " expires_at, client_secret, paid_payment_id, created_at, updated_at,"
        " expiry_check_at) "
        f"SELECT {d.hex_id('ord_', 'h', 20)}, 'cus_' || (r % 100000), {_CURRENCY}, 3998,"
        f" '{LINES}', {status}, CASE WHEN kind = 0 THEN 2 ELSE 1 END, {expires},"
        f" {d.hex_id('ord_', 'h', 20)} || '_secret_' || {d.hex_id('', 'g', 32)},"
        f" CASE WHEN status = 'PAID' THEN {d.hex_id('pay_', 'g', 20)} ELSE NULL END,"
        f" {d.ago('age_s + 130')}, {d.ago('age_s')}, {expires} FROM bench_seed"
    )


def _poll_jobs_sql(d: _Dialect, p: Population, kinds: str = "(2, 3)") -> str:
    overdue = int(p.sweep_overdue.total_seconds())
    return (
        "INSERT INTO poll_jobs (payment_id, order_id, due_at, attempts) "  # noqa: S608
        f"SELECT {d.hex_id('pay_', 'g', 20)}, {d.hex_id('ord_', 'h', 20)},"
        f" CASE WHEN kind = 2 THEN {d.ago(f'{overdue + 1} + r % 3600')}"
        f" ELSE {d.ago('-(1 + r % 600)')} END, 3 "
        f"FROM bench_seed WHERE kind IN {kinds}"
    )


def _statements(d: _Dialect, p: Population) -> list[str]:
    return [
        "DROP TABLE IF EXISTS bench_seed",
        _seed_sql(d, p),
        # Orders first: payments.order_id references them.
        _orders_sql(d),
        _payments_sql(d),
        _poll_jobs_sql(d, p),
    ]


def restore_sql(name: str, p: Population, *, payments: bool = False) -> list[str]:
    """Put back what a sweep and an expiry pass changed: the due payments' poll jobs, and the
    expired orders' next check (a postponed one is moved back to its deadline); with
    ``payments``, the due payments themselves too (the real sweeper records what it learnt)."""
    d = _Dialect(name, p.now)
    reset = [
        "UPDATE payments SET status = s.status, version = 2, "  # noqa: S608
        f"updated_at = {d.ago('s.age_s')} FROM bench_seed AS s "
        f"WHERE s.kind IN (1, 2) AND payments.id = {d.hex_id('pay_', 's.g', 20)}"
    ]
    return [
        *(reset if payments else []),
        "DELETE FROM poll_jobs WHERE payment_id IN "  # noqa: S608
        f"(SELECT {d.hex_id('pay_', 'g', 20)} FROM bench_seed WHERE kind IN (1, 2))",
        _poll_jobs_sql(d, p, kinds="(2)"),
        "UPDATE orders SET expiry_check_at = expires_at"
        " WHERE status = 'UNPAID' AND expiry_check_at <> expires_at",
    ]


def load_postgres(dsn: str, p: Population) -> None:
    """Fill the migrated, empty tables, then VACUUM ANALYZE them (as an aged table would be)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in _statements(_Dialect("postgresql", p.now), p):
            conn.execute(statement.encode())
        conn.execute(b"CREATE INDEX ix_bench_seed_kind ON bench_seed (kind)")
        conn.execute(b"VACUUM ANALYZE orders, payments, poll_jobs, bench_seed")


def load_sqlite(path: str, p: Population) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("BEGIN")
        for statement in _statements(_Dialect("sqlite", p.now), p):
            conn.execute(statement)
        conn.execute("CREATE INDEX ix_bench_seed_kind ON bench_seed (kind)")
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
    finally:
        conn.close()


def counts_postgres(dsn: str) -> dict[str, int]:
    """What the tables hold, counted after the load (a check on the generator above)."""
    with psycopg.connect(dsn) as conn:
        return _counts(lambda sql: conn.execute(sql.encode()).fetchall())


def counts_sqlite(path: str) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        return _counts(lambda sql: conn.execute(sql).fetchall())
    finally:
        conn.close()


def _counts(run: Callable[[str], list[Any]]) -> dict[str, int]:
    found: dict[str, int] = {}
    for table in ("orders", "payments", "poll_jobs"):
        found[table] = int(run(f"SELECT count(*) FROM {table}")[0][0])  # noqa: S608
    for status, n in run("SELECT status, count(*) FROM payments GROUP BY status"):
        found[f"payments {status}"] = int(n)
    for status, n in run("SELECT status, count(*) FROM orders GROUP BY status"):
        found[f"orders {status}"] = int(n)
    return found
