"""Refunding extra captures: a second payment of a paid order, or one that came after its deadline.

Each extra capture is refunded in full, once: its refund request number is derived from the
payment, so however often this runs (a retry, a second worker, a replay) the provider is asked
for the same refund and moves the money at most once. The steps are each idempotent and run in
order: record the refund, mark the payment REFUNDING, ask the provider, record what it answered.
A provider that does not answer, or has not finished, leaves the refund due again: the outbox
relay retries its event with backoff until the payment is REFUNDED.
"""

from __future__ import annotations

import logging
from datetime import datetime

from payonce.domain.events import Event, Topic
from payonce.domain.ids import PaymentId
from payonce.domain.outcomes import RefundRequested, TradeReversed
from payonce.domain.payment import Payment, PaymentStatus
from payonce.domain.refund import Refund, RefundReason
from payonce.errors import PaymentNotFound, PaymentOutcomeUnknown, ProviderUnavailable
from payonce.ports.storage import UnitOfWork
from payonce.service import audit
from payonce.service.context import Deps
from payonce.service.recording import record
from payonce.service.trades import provider_for

log = logging.getLogger(__name__)


class RefundPending(PaymentOutcomeUnknown):
    """The provider took the refund request but has not finished it (or did not answer)."""


class Refunder:
    """The consumer of extra captures: refunds each one, and is done when it is REFUNDED."""

    name = "refunds"
    topics = frozenset({Topic.PAYMENT_EXTRA_CAPTURED})
    relay_only = True  # it calls out; never under the order's lock

    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    async def handle(self, event: Event) -> None:
        if event.topic is not Topic.PAYMENT_EXTRA_CAPTURED:
            return
        reason = RefundReason(event.payload.get("reason", RefundReason.DUPLICATE.value))
        await refund_extra_capture(self._deps, event.payment_id, reason)


async def refund_extra_capture(deps: Deps, payment_id: PaymentId, reason: RefundReason) -> Payment:
    """Give an extra capture back; returns the payment, REFUNDED. Raises RefundPending while the
    provider has not confirmed it (the caller tries again later, with the same number)."""
    async with deps.storage.transaction() as uow:
        payment = await uow.payments.get(payment_id)
        if payment is None:
            raise PaymentNotFound()
        refund = await uow.refunds.for_payment(payment.id)
        if payment.status is PaymentStatus.REFUNDED:
            if refund is not None:  # a crash between the last two steps: finish the record
                await _succeeded(uow, refund, deps.clock.now(), "its payment is REFUNDED")
            return payment
        if payment.applied or payment.status not in (PaymentStatus.PAID, PaymentStatus.REFUNDING):
            # Never the payment that paid its order; never one that took no money.
            log.error("payment %s (%s) is not an extra capture", payment.id, payment.status)
            return payment
        if refund is None:
            refund = Refund.of_extra_capture(payment, reason, deps.clock.now())
            if await uow.refunds.add(refund):
                why = f"extra capture ({reason.value}) of {payment.id}"
                await audit.moved(uow, None, refund, why=why, now=refund.requested_at)
    payment = await record(deps, payment.id, RefundRequested())
    try:
        result = await provider_for(deps, payment).refund(
            payment.out_trade_no,
            refund.refund_no,
            refund.amount,
            provider_trade_no=payment.provider_trade_no,
        )
    except ProviderUnavailable as error:
        # It may have been done: asking again with the same number tells, and moves no money twice.
        raise RefundPending(f"refund {refund.refund_no}: {error}") from error
    deps.failpoints.reach("after_provider_call")
    if result.refund_no != refund.refund_no or result.amount != refund.amount:
        raise RefundPending(f"refund {refund.refund_no}: the provider answered {result}")
    if not result.completed:
        raise RefundPending(f"refund {refund.refund_no} is still in progress at the provider")
    confirmed = f"refund {refund.refund_no} confirmed by the provider"
    refunded = await record(
        deps, payment.id, TradeReversed(payment.provider_trade_no), why=confirmed
    )
    async with deps.storage.transaction() as uow:
        await _succeeded(uow, refund, deps.clock.now(), "confirmed by the provider")
    deps.metrics.extra_capture_refunded(payment.channel.value)
    deps.metrics.duplicate_prevented("refund")
    log.info("refunded extra capture %s (%s) as %s", payment.id, reason, refund.refund_no)
    return refunded


async def _succeeded(uow: UnitOfWork, refund: Refund, now: datetime, why: str) -> None:
    """Mark the refund done, as it is now (another worker may have marked it already)."""
    current = await uow.refunds.get(refund.refund_no) or refund
    done = current.succeeded(now)
    if done is current:
        return
    await uow.refunds.update(done)
    await audit.moved(uow, current, done, why=why, now=now)
