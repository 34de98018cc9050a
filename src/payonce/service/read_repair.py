"""Read repair: a shopper reading an open payment makes payonce ask the provider about it now.

The page a shopper watches after paying is the quickest sign that a payment may have happened;
when its notification is late or lost, asking then shows the truth within seconds instead of at
the next scheduled poll. Each order is asked about at most once per interval, whoever reads,
and only when its lock is free at once (a holder is already working on it).
"""

from __future__ import annotations

import logging

from payonce.domain.ids import OrderId
from payonce.domain.payment import Payment, PaymentStatus
from payonce.errors import OrderBusy, PayonceError
from payonce.service.context import Deps, order_lock_key
from payonce.service.orders import get_payment, list_payments
from payonce.service.trades import sync_with_provider

log = logging.getLogger(__name__)

# An intent (UNPAID) is being opened by its own request: there is nothing to ask about yet.
_WORTH_ASKING = frozenset({PaymentStatus.PAYING, PaymentStatus.UNKNOWN, PaymentStatus.CLOSING})


async def repair_order(deps: Deps, order_id: OrderId) -> None:
    """Ask the provider about the order's open trades, at most once per interval per order
    (so a page polling its order costs no extra read between repairs)."""
    if not await _due(deps, order_id):
        return
    for payment in await list_payments(deps, order_id):
        if payment.status in _WORTH_ASKING:
            await _ask(deps, payment)


async def repair(deps: Deps, payment: Payment) -> Payment:
    """The payment after asking its provider, or as it is when its order was asked about
    lately."""
    if payment.status not in _WORTH_ASKING or not await _due(deps, payment.order_id):
        return payment
    return await _ask(deps, payment)


async def _due(deps: Deps, order_id: OrderId) -> bool:
    """True (and the interval starts) unless the order was repaired within the interval."""
    if not deps.policy.poll_trades:
        return False
    asked = f"repair:{order_id}"
    try:
        if await deps.cache.get(asked) is not None:
            return False
        await deps.cache.set(asked, "1", ttl_s=deps.policy.read_repair_interval_s)
    except Exception:  # no cache, no rate limit: leave it to the scheduled polls
        return False
    return True


async def _ask(deps: Deps, payment: Payment) -> Payment:
    try:
        async with deps.locks.hold(
            order_lock_key(payment.order_id), ttl_s=deps.policy.lock_ttl_s, wait_s=0
        ) as lease:
            current = await get_payment(deps, payment.id)
            if current.status not in _WORTH_ASKING:
                return current
            return await sync_with_provider(deps, current, lease)
    except OrderBusy:
        return payment  # someone holds the order's lock: it is being worked on already
    except PayonceError as error:  # a read never fails because repairing it did
        log.info("read repair of %s did not complete: %s", payment.id, error)
        return payment
