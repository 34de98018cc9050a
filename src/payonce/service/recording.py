"""Writing payment changes: each goes through the order row (compare-and-set) in one transaction.

Every write made under the order lock carries its fencing token, checked first: a holder whose
lock lapsed cannot act on what it read before, nor record what it learnt since (the current
holder asks the provider itself). The one exception is a create's answer, which nobody else
can learn (trades.py keeps it by compare-and-set alone after the fence refused it). For every
write, the transition table and the version compare-and-set decide whether it still changes
anything.
After commit, and only then: the cache, the push feed and the outbox's first delivery attempt.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace

from payonce.domain.channels import Channel, Platform
from payonce.domain.events import Topic
from payonce.domain.ids import OrderId, PaymentId
from payonce.domain.order import Order, OrderStatus
from payonce.domain.outcomes import CloseRequested, Outcome, Reaction, react
from payonce.domain.payment import Payment, PaymentStatus
from payonce.errors import DuplicateKey, OrderBusy, OrderNotFound, PaymentNotFound, StaleVersion
from payonce.ports.locks import Lease
from payonce.service import audit, outbox
from payonce.service.context import Deps, order_lock_key
from payonce.service.views import order_event, payment_view

log = logging.getLogger(__name__)

# A payment the shopper approved is captured only while we still want it: never one we are
# closing or closed (that approval then lapses at the provider, and no money moves).
CAPTURABLE = frozenset({PaymentStatus.PAYING, PaymentStatus.UNKNOWN})


def order_state_key(order_id: OrderId) -> str:
    return f"order:{order_id}:state"


def attempt_key(order_id: OrderId, channel: Channel, platform: Platform) -> str:
    return f"order:{order_id}:attempt:{channel.value}:{platform.value}"


async def insert_intent(deps: Deps, intent: Payment, lease: Lease, *, seen: Order) -> Payment:
    """Commit the UNPAID record of a trade about to be opened, decided on the order as ``seen``.

    The order's compare-and-set is against the version that was read: if anything changed the
    order since (a capture applied, another trade opened), the database refuses the intent and
    the caller decides again. The live-trade index refuses a second live trade regardless.
    The trade's first poll is scheduled in the same transaction: from its first moment, a trade
    whose notifications are all lost is still asked about.
    """
    async with deps.storage.transaction() as uow:
        now = deps.clock.now()
        await uow.fences.check(order_lock_key(seen.id), lease.token)
        touched = seen.touched(now)
        await uow.orders.update(touched, expected_version=seen.version)
        earlier = await uow.payments.for_order(seen.id)
        intent = replace(intent, number=earlier[0].number + 1 if earlier else 1)
        await uow.payments.add(intent)
        why = f"intent written: {intent.channel.value} {intent.platform.value}"
        await audit.moved(uow, None, intent, why=why, now=now)
        first_poll = deps.policy.next_poll_at(intent.channel, 0, now)
        await uow.polls.schedule(intent.id, seen.id, due_at=first_poll, attempts=0)
    await publish(deps, touched, intent)
    return intent


async def request_close(
    deps: Deps, payment: Payment, lease: Lease, *, why: str | None = None
) -> Payment:
    """Commit the decision to close a trade (CLOSING) before asking the provider to."""
    return await _write(deps, payment.id, CloseRequested(), lease=lease, why=why)


async def may_capture(deps: Deps, payment: Payment, lease: Lease) -> bool:
    """Decide, fenced like a close, whether an approved trade may be captured now.

    Only while its order still wants it: the order unpaid and not expired, no payment applied,
    and this payment still waiting (PAYING or UNKNOWN). The fence refuses a holder whose lock
    was taken over since, e.g. by an apply that closed this trade.
    """
    async with deps.storage.transaction() as uow:
        await uow.fences.check(order_lock_key(payment.order_id), lease.token)
        order = await uow.orders.get(payment.order_id)
        payments = await uow.payments.for_order(payment.order_id)
    current = next((p for p in payments if p.id == payment.id), None)
    return (
        order is not None
        and current is not None
        and current.status in CAPTURABLE
        and order.status is OrderStatus.UNPAID
        and not order.is_expired(deps.clock.now())
        and not any(p.applied for p in payments)
    )


async def record(
    deps: Deps,
    payment_id: PaymentId,
    outcome: Outcome,
    *,
    lease: Lease | None = None,
    notification: tuple[str, str] | None = None,
    why: str | None = None,
) -> Payment:
    """Record a fact about a trade. With ``notification`` (channel, id), a repeated delivery of
    it changes nothing: the id is stored in the same transaction as the change. With ``lease``
    (learnt under the order's lock), a holder whose lock lapsed and was granted again is refused
    (FenceRejected): the current holder decides, and will learn the same fact itself. ``why``:
    how we learnt it (a query, a close), for the audit trail; by default, the outcome itself."""
    return await _write(deps, payment_id, outcome, lease=lease, notification=notification, why=why)


async def note_notification(
    deps: Deps, notification: tuple[str, str], payment_id: PaymentId, note: str
) -> None:
    """Keep a verified notification that changed nothing, and why, before acknowledging it."""
    async with deps.storage.transaction() as uow:
        await uow.notifications.record(
            *notification, payment_id=payment_id, now=deps.clock.now(), note=note[:500]
        )


async def _write(
    deps: Deps,
    payment_id: PaymentId,
    outcome: Outcome,
    *,
    lease: Lease | None = None,
    notification: tuple[str, str] | None = None,
    why: str | None = None,
) -> Payment:
    for _ in range(deps.policy.conflict_retries):
        try:
            async with deps.storage.transaction() as uow:
                now = deps.clock.now()
                payment = await uow.payments.get(payment_id)
                if payment is None:
                    raise PaymentNotFound()
                if notification is not None and not await uow.notifications.record(
                    *notification, payment_id=payment_id, now=now
                ):
                    deps.metrics.duplicate_prevented("notification_id")
                    return payment  # a repeated delivery: the first one already counted
                if lease is not None:
                    # Before anything else: a stale holder must not even record "nothing new".
                    await uow.fences.check(order_lock_key(payment.order_id), lease.token)
                order = await uow.orders.get(payment.order_id)
                if order is None:
                    raise OrderNotFound()
                siblings = await uow.payments.for_order(order.id)
                has_applied = any(p.applied for p in siblings if p.id != payment.id)
                reaction = react(
                    payment,
                    outcome,
                    order=order,
                    order_has_applied=has_applied,
                    now=now,
                    late_captures=deps.policy.late_captures,
                )
                if not reaction.changed(payment):
                    return payment
                await uow.payments.update(reaction.payment, expected_version=payment.version)
                said = audit.why_of(outcome, reaction.payment, notification=notification, why=why)
                await audit.moved(uow, payment, reaction.payment, why=said, now=now)
                touched = order.touched(now)
                await uow.orders.update(touched, expected_version=order.version)
                # A voucher keeps its order from expiring while it may still be paid; the
                # order's deadline stays as it was, so no new trade opens after it.
                paying = reaction.payment.status is PaymentStatus.PAYING
                held_until = deps.policy.settles_by(reaction.payment) if paying else None
                if held_until is not None:
                    await uow.orders.postpone_expiry(order.id, until=held_until)
                for event in reaction.events:
                    await uow.outbox.add(event, now=now)
        except (StaleVersion, DuplicateKey):
            continue  # another writer moved the order or the payment: read again, decide again
        await _after_commit(deps, touched, reaction)
        return reaction.payment
    raise OrderBusy(f"payment {payment_id} kept changing under us")


async def _after_commit(deps: Deps, order: Order, reaction: Reaction) -> None:
    payment = reaction.payment
    if reaction.events:
        deps.failpoints.reach("after_commit_before_relay")
    await cache_payment(deps, payment)
    await publish(deps, order, payment)
    if any(event.topic is Topic.PAYMENT_SUCCEEDED for event in reaction.events):
        # The order service is told at once. Relay-only consumers (an extra capture's refund,
        # the shopper's push) are left to the relay: calls out that must not run while our
        # caller holds the order's lock.
        await outbox.deliver_due(deps, order_id=order.id, inline=True)


async def cache_payment(deps: Deps, payment: Payment) -> None:
    """The cache follows a committed change; it is never read as the truth."""
    key = attempt_key(payment.order_id, payment.channel, payment.platform)
    try:
        if payment.status is PaymentStatus.PAYING and payment.action is not None:
            await deps.cache.set(
                key, json.dumps(payment_view(payment)), ttl_s=deps.policy.attempt_cache_ttl_s
            )
        else:
            await deps.cache.delete(key)
        if payment.applied:
            await deps.cache.set(
                order_state_key(payment.order_id), "paid", ttl_s=deps.policy.cache_ttl_s
            )
    except Exception:  # a cache that is down costs speed, never correctness
        log.warning("cache update failed for %s", payment.id, exc_info=True)


async def cache_order_state(deps: Deps, order: Order) -> None:
    state = {OrderStatus.READY_FOR_SHIPMENT: "paid", OrderStatus.CLOSED: "closed"}.get(order.status)
    if state is None:
        return
    try:
        await deps.cache.set(order_state_key(order.id), state, ttl_s=deps.policy.cache_ttl_s)
    except Exception:
        log.warning("cache update failed for %s", order.id, exc_info=True)


async def publish(deps: Deps, order: Order, payment: Payment | None) -> None:
    try:
        await deps.feed.publish(order.id, order_event(order, payment))
    except Exception:  # subscribers fall back to polling; status_version orders what they see
        log.warning("feed publish failed for %s", order.id, exc_info=True)
