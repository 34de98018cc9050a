"""Expiry: an unpaid order past its deadline has its trades closed at the provider, then closes.

The order of steps is what keeps a payment from being lost at the deadline: each open trade is
closed at its provider first (a close that finds the trade paid applies or refunds that
payment), then asked about once more (a close can race a payment the provider had already
taken), and only when no trade of the order can take money any more does the order close. A
trade that would not close yet (an unanswered call, WeChat Pay's first five minutes) leaves the
order open, and its expiry is tried again later. A voucher (Boleto) cannot be withdrawn: it is
asked about, never closed; its order stays open past the voucher's last payable day until the
bank's clearing has had its say (see Policy.settle_windows).
"""

from __future__ import annotations

import logging
from datetime import datetime

from payonce.domain.ids import OrderId
from payonce.domain.order import Order, OrderStatus
from payonce.domain.payment import Payment
from payonce.errors import FenceRejected, PaymentOutcomeUnknown, StaleVersion
from payonce.ports.locks import Lease
from payonce.service import audit
from payonce.service.context import Deps, order_lock_key
from payonce.service.provenance import working_on
from payonce.service.recording import cache_order_state, publish
from payonce.service.trades import close_trade, sync_with_provider

log = logging.getLogger(__name__)

BATCH = 100


async def expire_due(deps: Deps) -> int:
    """Expire every unpaid order whose deadline has passed; returns how many closed."""
    now = deps.clock.now()
    async with deps.storage.transaction() as uow:
        due = await uow.orders.expired(now=now, limit=BATCH)
        for order in due:  # taken: not due again for others while this pass works on it
            await uow.orders.postpone_expiry(order.id, until=now + deps.policy.expiry_retry)
    closed = 0
    for order in due:
        try:
            with working_on(order.id):
                if await expire_order(deps, order.id) is not None:
                    closed += 1
        except Exception:
            log.exception("expiry of order %s failed", order.id)
            await _postpone(deps, order.id)
    return closed


async def expire_order(deps: Deps, order_id: OrderId) -> Order | None:
    """Close an expired order's trades, then the order; returns it CLOSED, or None when it is
    not closed now (paid meanwhile, not expired, or a trade that would not close yet)."""
    async with deps.locks.hold(
        order_lock_key(order_id), ttl_s=deps.policy.lock_ttl_s, wait_s=deps.policy.lock_wait_s
    ) as lease:
        async with deps.storage.transaction() as uow:
            order = await uow.orders.get(order_id)
            payments = await uow.payments.for_order(order_id)
        if order is None or order.status is not OrderStatus.UNPAID:
            return None
        if not order.is_expired(deps.clock.now()):
            # Its deadline moved later (a voucher) since it was found due.
            await _postpone(deps, order_id, until=order.expires_at)
            return None
        for payment in payments:
            if payment.is_live:
                await _withdraw(deps, payment, lease)
        try:
            closed = await _close_order(deps, order_id, lease)
        except (StaleVersion, FenceRejected):
            closed = None  # changed under us (a capture applied): the next pass decides again
    if closed is None:
        await _postpone(deps, order_id)
        return None
    await cache_order_state(deps, closed)
    await publish(deps, closed, None)
    log.info("order %s expired and closed", order_id)
    return closed


async def _withdraw(deps: Deps, payment: Payment, lease: Lease) -> None:
    """Make one trade unpayable (when its channel can), then ask about it once more."""
    if payment.closable:
        try:
            payment = await close_trade(deps, payment, lease, why="order expired")
        except PaymentOutcomeUnknown as error:
            log.info("expiry could not close %s yet: %s", payment.out_trade_no, error)
    await sync_with_provider(deps, payment, lease)


async def _close_order(deps: Deps, order_id: OrderId, lease: Lease) -> Order | None:
    async with deps.storage.transaction() as uow:
        await uow.fences.check(order_lock_key(order_id), lease.token)
        order = await uow.orders.get(order_id)
        payments = await uow.payments.for_order(order_id)
        if order is None or order.status is not OrderStatus.UNPAID:
            return None
        if any(p.applied for p in payments):
            return None  # paid: the order side moves it to READY_FOR_SHIPMENT
        still_open = [p.out_trade_no for p in payments if p.is_live]
        if still_open:
            log.info("order %s stays open: trades %s may still take money", order_id, still_open)
            return None
        now = deps.clock.now()
        closed = order.moved_to(OrderStatus.CLOSED, now=now)
        await uow.orders.update(closed, expected_version=order.version)
        await audit.moved(uow, order, closed, why="expired: no trade can take money", now=now)
    return closed


async def _postpone(deps: Deps, order_id: OrderId, *, until: datetime | None = None) -> None:
    async with deps.storage.transaction() as uow:
        await uow.orders.postpone_expiry(
            order_id, until=until or deps.clock.now() + deps.policy.expiry_retry
        )
