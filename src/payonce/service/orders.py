"""Orders as callers see them: create one, read it (or wait for it to change), list its payments
and the ways it can be paid."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from payonce.domain.channels import Channel, Platform
from payonce.domain.ids import OrderId, PaymentId
from payonce.domain.order import Order, OrderLine
from payonce.domain.payment import Payment
from payonce.domain.refund import Refund
from payonce.errors import OrderNotFound, PaymentNotFound
from payonce.service import audit
from payonce.service.context import Deps


async def create_order(
    deps: Deps,
    *,
    customer_id: str,
    currency: str,
    lines: tuple[OrderLine, ...],
    ttl: timedelta | None = None,
) -> Order:
    order = Order.create(
        customer_id=customer_id,
        currency=currency,
        lines=lines,
        now=deps.clock.now(),
        ttl=ttl or deps.policy.order_ttl,
    )
    async with deps.storage.transaction() as uow:
        await uow.orders.add(order)
        await audit.moved(uow, None, order, why="order created", now=order.created_at)
    return order


async def get_order(deps: Deps, order_id: OrderId) -> Order:
    async with deps.storage.transaction() as uow:
        order = await uow.orders.get(order_id)
    if order is None:
        raise OrderNotFound()
    return order


async def wait_for_order(
    deps: Deps, order_id: OrderId, *, after_version: int, wait_s: float
) -> Order:
    """The order as soon as its status_version exceeds ``after_version``, or as it is after
    ``wait_s`` real seconds (a long poll)."""
    async with deps.feed.subscribe(order_id) as subscription:
        order = await get_order(deps, order_id)  # read after subscribing: no change slips between
        loop = asyncio.get_running_loop()
        until = loop.time() + wait_s
        while order.version <= after_version and (remaining := until - loop.time()) > 0:
            if await subscription.next(remaining) is None:
                break
            order = await get_order(deps, order_id)
        return order


async def list_payments(deps: Deps, order_id: OrderId) -> list[Payment]:
    async with deps.storage.transaction() as uow:
        if await uow.orders.get(order_id) is None:
            raise OrderNotFound()
        return await uow.payments.for_order(order_id)


async def list_payments_and_refunds(
    deps: Deps, order_id: OrderId
) -> list[tuple[Payment, Refund | None]]:
    """The order's payments, newest first, each with the refund of it payonce made, if any."""
    async with deps.storage.transaction() as uow:
        if await uow.orders.get(order_id) is None:
            raise OrderNotFound()
        payments = await uow.payments.for_order(order_id)
        refunds = {refund.payment_id: refund for refund in await uow.refunds.for_order(order_id)}
    return [(payment, refunds.get(payment.id)) for payment in payments]


async def get_payment(deps: Deps, payment_id: PaymentId) -> Payment:
    async with deps.storage.transaction() as uow:
        payment = await uow.payments.get(payment_id)
    if payment is None:
        raise PaymentNotFound()
    return payment


async def payment_options(deps: Deps, order_id: OrderId) -> dict[Channel, tuple[Platform, ...]]:
    """Each configured channel that takes the order's currency, with the platforms it serves."""
    order = await get_order(deps, order_id)
    currency = order.total.currency
    options = {
        channel: tuple(p for p in Platform if provider.supports(p, currency))
        for channel, provider in deps.providers.items()
    }
    return {channel: platforms for channel, platforms in options.items() if platforms}
