"""Builders for the domain objects and in-memory dependencies that many tests set up alike."""

from __future__ import annotations

from datetime import datetime

from payonce.adapters.cache.memory import InProcessCache
from payonce.adapters.clock import AdjustableClock
from payonce.adapters.feed.memory import InProcessFeed
from payonce.adapters.locks.memory import InProcessLocks
from payonce.adapters.storage.memory import MemoryStorage
from payonce.domain.channels import Channel, Platform
from payonce.domain.order import Order, OrderLine
from payonce.domain.payment import Payment, PaymentStatus
from payonce.service.context import Deps, Policy

ONE_TEA = (OrderLine("S", "Tea", 1, 1000),)


def an_order(
    *,
    now: datetime,
    currency: str = "CNY",
    customer_id: str = "c-1",
    lines: tuple[OrderLine, ...] = ONE_TEA,
) -> Order:
    """A new, unpaid order."""
    return Order.create(customer_id=customer_id, currency=currency, lines=lines, now=now)


def a_paid_payment(
    order: Order, *, now: datetime, applied: bool = True, channel: Channel = Channel.ALIPAY
) -> Payment:
    """The order's first payment (on PC), captured in full: PAID, and ``applied`` to the order."""
    return Payment.open_intent(
        order_id=order.id, channel=channel, platform=Platform.PC, amount=order.total, now=now
    ).moved_to(PaymentStatus.PAID, now=now, applied=applied, number=1)


def memory_deps(clock: AdjustableClock, policy: Policy | None = None) -> Deps:
    """Dependencies all in process (memory storage, locks, cache, feed) and no providers."""
    return Deps(
        storage=MemoryStorage(),
        clock=clock,
        locks=InProcessLocks(clock),
        cache=InProcessCache(clock),
        feed=InProcessFeed(),
        providers={},
        policy=Policy() if policy is None else policy,
    )
