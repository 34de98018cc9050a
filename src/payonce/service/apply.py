"""Apply payment: open (or reuse) the one trade an order may have open, never a second charge.

The defences, in the order a request meets them: the cached answer (paid/closed, or the live
attempt's action); the per-order lock; reuse of a valid open trade; close-before-new for another
channel or platform; query-first while an earlier outcome is unknown; and underneath all of them
the database's unique constraints and compare-and-set, which decide even when the lock does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from payonce.domain.channels import Channel, Platform
from payonce.domain.ids import OrderId
from payonce.domain.order import Order, OrderStatus
from payonce.domain.outcomes import CallUnanswered
from payonce.domain.payment import Payment, PaymentStatus
from payonce.domain.transitions import IllegalTransition
from payonce.errors import (
    ChannelUnsupported,
    FenceRejected,
    LockNotAcquired,
    OrderAlreadyPaid,
    OrderBusy,
    OrderClosed,
    OrderExpired,
    OrderNotFound,
    PaymentOutcomeUnknown,
    PayonceError,
    StorageConflict,
)
from payonce.ports.locks import Lease
from payonce.ports.metrics import DuplicateLayer
from payonce.ports.provider import PaymentProvider, TradeRequest
from payonce.service.context import Deps, order_lock_key
from payonce.service.recording import (
    attempt_key,
    cache_order_state,
    insert_intent,
    order_state_key,
    record,
)
from payonce.service.trades import close_trade, forget_trade, open_trade, sync_with_provider
from payonce.service.views import payment_view

log = logging.getLogger(__name__)

# How often a click waiting for its order's lock looks for the trade the holder opened.
_CACHE_RECHECK_S = 0.05


@dataclass(frozen=True, slots=True)
class Applied:
    payment: dict[str, Any]  # the public view of the payment record
    created: bool  # True when a new provider trade was opened
    # What answered a repeated apply: the cached action, or the open trade reused.
    reused_by: DuplicateLayer | None = None


class _Again(Exception):
    """The state moved (or we moved it): read it again and decide again."""


async def apply_payment(
    deps: Deps,
    order_id: OrderId,
    channel: Channel,
    platform: Platform,
    *,
    shopper_ip: str | None = None,
) -> Applied:
    """Open a trade for the order, or give the open one again; counted by how it ended."""
    try:
        applied = await _apply(deps, order_id, channel, platform, shopper_ip)
    except PayonceError as refused:
        deps.metrics.applied(channel.value, refused.code)
        raise
    deps.metrics.applied(channel.value, "created" if applied.created else "reused")
    if applied.reused_by is not None:
        deps.metrics.duplicate_prevented(applied.reused_by)
    return applied


async def _apply(
    deps: Deps, order_id: OrderId, channel: Channel, platform: Platform, shopper_ip: str | None
) -> Applied:
    provider = deps.providers.get(channel)
    if provider is None:
        raise ChannelUnsupported(f"channel {channel} is not available")
    cached = await _cached_answer(deps, order_id, channel, platform)
    if cached is not None:
        return cached
    for _ in range(deps.policy.conflict_retries):
        try:
            async with contextlib.AsyncExitStack() as stack:
                held = await _lock_or_reuse(deps, stack, order_id, channel, platform)
                if isinstance(held, Applied):
                    return held
                return await _apply_once(deps, provider, order_id, platform, held, shopper_ip)
        except FenceRejected as error:
            # Our lock lapsed (a pause, a slow call) and another request holds it now: what we
            # learnt was refused; take the lock again and decide from what is recorded.
            deps.metrics.duplicate_prevented("database")
            log.warning("apply for %s: %s; starting over", order_id, error)
        except StorageConflict:
            # A unique constraint or a compare-and-set refused a write another request made
            # first (a second intent, a stale version): the database kept it at one.
            deps.metrics.duplicate_prevented("database")
            continue
        except (_Again, IllegalTransition):
            continue
    raise OrderBusy(f"order {order_id} kept changing; retry")


async def _lock_or_reuse(
    deps: Deps,
    stack: contextlib.AsyncExitStack,
    order_id: OrderId,
    channel: Channel,
    platform: Platform,
) -> Lease | Applied:
    """Take the order's lock (held until ``stack`` closes), or, while waiting for it, find the
    trade that its holder opened for the same click in the cache: of 64 clicks on one order, one
    opens the trade and the others are answered as it commits, not one by one under the lock."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deps.policy.lock_wait_s
    while True:
        remaining = deadline - loop.time()
        try:
            return await stack.enter_async_context(
                deps.locks.hold(
                    order_lock_key(order_id),
                    ttl_s=deps.policy.lock_ttl_s,
                    wait_s=max(0.0, min(_CACHE_RECHECK_S, remaining)),
                )
            )
        except LockNotAcquired:
            if remaining <= _CACHE_RECHECK_S:
                raise
        cached = await _cached_answer(deps, order_id, channel, platform)
        if cached is not None:
            return cached


async def _cached_answer(
    deps: Deps, order_id: OrderId, channel: Channel, platform: Platform
) -> Applied | None:
    if not deps.policy.reuse_open_trades:
        return None
    try:
        state = await deps.cache.get(order_state_key(order_id))
        attempt = await deps.cache.get(attempt_key(order_id, channel, platform))
    except Exception:
        return None  # no cache: go to the database
    if state == "paid":
        raise OrderAlreadyPaid()
    if state == "closed":
        raise OrderClosed()
    if attempt is None:
        return None
    view: dict[str, Any] = json.loads(attempt)
    action = view.get("action") or {}
    expires_at = action.get("expires_at")
    if view.get("status") != PaymentStatus.PAYING.value or expires_at is None:
        return None
    if datetime.fromisoformat(expires_at) <= deps.clock.now() + deps.policy.reuse_margin:
        return None
    return Applied(view, created=False, reused_by="result_cache")


async def _refuse_if_settled(deps: Deps, order: Order, payments: list[Payment]) -> None:
    if order.status is OrderStatus.READY_FOR_SHIPMENT or any(p.applied for p in payments):
        await cache_order_state(deps, order)
        raise OrderAlreadyPaid()
    if order.status is OrderStatus.CLOSED:
        await cache_order_state(deps, order)
        raise OrderClosed()
    if order.is_expired(deps.clock.now()):
        raise OrderExpired()


async def _apply_once(
    deps: Deps,
    provider: PaymentProvider,
    order_id: OrderId,
    platform: Platform,
    lease: Lease,
    shopper_ip: str | None,
) -> Applied:
    channel = provider.channel
    async with deps.storage.transaction() as uow:
        order = await uow.orders.get(order_id)
        if order is None:
            raise OrderNotFound()
        payments = await uow.payments.for_order(order_id)
    if not provider.supports(platform, order.total.currency):
        raise ChannelUnsupported(
            f"{channel.value} on {platform.value} cannot take {order.total.currency}"
        )
    await _refuse_if_settled(deps, order, payments)
    now = deps.clock.now()

    for payment in payments:
        if not payment.is_live:
            continue
        if payment.status is PaymentStatus.UNPAID:
            if now - payment.created_at < deps.policy.intent_grace:
                await _wait_for_change(deps, order)  # another request is opening this trade
                raise _Again()
            abandoned = CallUnanswered("intent abandoned by its request")
            await record(deps, payment.id, abandoned, lease=lease)
            raise _Again()
        if payment.status is PaymentStatus.UNKNOWN:
            settled = await sync_with_provider(deps, payment, lease)
            if settled.status is PaymentStatus.UNKNOWN:
                raise PaymentOutcomeUnknown(
                    f"the outcome of payment {payment.id} is not known yet; retry shortly"
                )
            raise _Again()
        if payment.status is PaymentStatus.CLOSING:
            await close_trade(deps, payment, lease, why="an unfinished close, before a new trade")
            raise _Again()
        if deps.policy.reuse_open_trades and payment.reusable_for(
            channel=channel,
            platform=platform,
            amount=order.total,
            now=now,
            margin=deps.policy.reuse_margin,
        ):
            return Applied(payment_view(payment), created=False, reused_by="reuse")
        if payment.closable:
            if deps.policy.close_before_new:
                why = f"close before a new trade: {channel.value} {platform.value}"
                await close_trade(deps, payment, lease, why=why)
            else:
                await forget_trade(deps, payment, lease)
            raise _Again()
        # A trade that cannot be closed (a Boleto voucher) stays open; a second capture of the
        # order is refunded instead.

    intent = await insert_intent(
        deps,
        Payment.open_intent(
            order_id=order.id, channel=channel, platform=platform, amount=order.total, now=now
        ),
        lease,
        seen=order,
    )
    opened = await open_trade(
        deps,
        intent,
        lease,
        order_id=order.id,
        request=TradeRequest(
            out_trade_no=intent.out_trade_no,
            amount=intent.amount,
            platform=platform,
            subject=f"Order {order.id}",
            pay_deadline=order.expires_at,
            return_url=deps.return_url(order.id),
            shopper_ip=shopper_ip,
        ),
    )
    return Applied(payment_view(opened), created=True)


async def _wait_for_change(deps: Deps, order: Order) -> None:
    """Wait (real time, bounded) until the order moves past the version we read."""
    async with deps.feed.subscribe(order.id) as subscription:
        async with deps.storage.transaction() as uow:
            current = await uow.orders.get(order.id)
        if current is not None and current.version > order.version:
            return
        loop = asyncio.get_running_loop()
        until = loop.time() + deps.policy.in_flight_wait_s
        while (remaining := until - loop.time()) > 0:
            message = await subscription.next(remaining)
            if message is None or int(message.get("status_version", 0)) > order.version:
                return
