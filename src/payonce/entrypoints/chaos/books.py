"""What the checks read at quiescence: payonce's own records (its database), the sandbox's books
(trades, ledger, notification deliveries) and what the harness's order service applied."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from payonce.adapters.storage import tables
from payonce.adapters.storage.engine import open_engine
from payonce.adapters.storage.sql import SqlStorage
from payonce.domain.ids import OrderId
from payonce.domain.order import Order
from payonce.domain.payment import Payment
from payonce.domain.refund import Refund
from payonce.entrypoints.chaos.shopper_client import Site


@dataclass
class PayonceBooks:
    orders: dict[str, Order]
    payments: dict[str, list[Payment]]  # by order id
    refunds: dict[str, list[Refund]]  # by order id
    undelivered_events: int

    def payment_by_trade(self) -> dict[str, Payment]:
        return {p.out_trade_no: p for listed in self.payments.values() for p in listed}


@dataclass
class SandboxBooks:
    trades: list[dict[str, Any]]
    movements: list[dict[str, Any]]
    deliveries: list[dict[str, Any]]
    calls: list[dict[str, Any]]


async def read_payonce(database_url: str, order_ids: list[str]) -> PayonceBooks:
    storage = SqlStorage(open_engine(database_url))
    orders: dict[str, Order] = {}
    payments: dict[str, list[Payment]] = {}
    refunds: dict[str, list[Refund]] = {}
    try:
        for start in range(0, len(order_ids), 200):
            async with storage.transaction() as uow:
                for order_id in order_ids[start : start + 200]:
                    found = await uow.orders.get(OrderId(order_id))
                    if found is None:
                        continue
                    orders[order_id] = found
                    payments[order_id] = await uow.payments.for_order(found.id)
                    refunds[order_id] = await uow.refunds.for_order(found.id)
        async with storage.transaction() as uow:
            undelivered = len(await uow.outbox.search(undelivered_only=True, limit=10_000))
    finally:
        await storage.close()
    return PayonceBooks(orders, payments, refunds, undelivered)


async def read_sandbox(site: Site) -> SandboxBooks:
    trades = (await site.sandbox("GET", "/trades")).json()["trades"]
    movements = (await site.sandbox("GET", "/ledger")).json()["movements"]
    deliveries = (await site.sandbox("GET", "/deliveries")).json()["deliveries"]
    calls = (await site.sandbox("GET", "/calls")).json()["calls"]
    return SandboxBooks(trades, movements, deliveries, calls)


@dataclass(frozen=True, slots=True)
class Unsettled:
    """How much is still moving in payonce: the system is quiescent when all of it is zero."""

    unpaid_orders: int
    live_payments: int
    undelivered_events: int

    @property
    def settled(self) -> bool:
        return not (self.unpaid_orders or self.live_payments or self.undelivered_events)


_LIVE = ("UNPAID", "PAYING", "UNKNOWN", "CLOSING", "REFUNDING")


async def unsettled(engine: AsyncEngine) -> Unsettled:
    async with engine.connect() as connection:
        unpaid = await connection.scalar(
            select(func.count())
            .select_from(tables.orders)
            .where(tables.orders.c.status == "UNPAID")
        )
        live = await connection.scalar(
            select(func.count())
            .select_from(tables.payments)
            .where(tables.payments.c.status.in_(_LIVE))
        )
        events = await connection.scalar(
            select(func.count())
            .select_from(tables.outbox)
            .where(tables.outbox.c.delivered_at.is_(None))
        )
    return Unsettled(int(unpaid or 0), int(live or 0), int(events or 0))
