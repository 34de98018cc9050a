"""Cancel one payment: close its trade at the provider, when the channel can close trades."""

from __future__ import annotations

from payonce.domain.ids import PaymentId
from payonce.domain.payment import Payment, PaymentStatus
from payonce.domain.transitions import IllegalTransition
from payonce.errors import PaymentNotCancellable, PaymentOutcomeUnknown
from payonce.service.context import Deps, order_lock_key
from payonce.service.orders import get_payment
from payonce.service.trades import close_trade, sync_with_provider


async def cancel_payment(deps: Deps, payment_id: PaymentId) -> Payment:
    payment = await get_payment(deps, payment_id)
    async with deps.locks.hold(
        order_lock_key(payment.order_id),
        ttl_s=deps.policy.lock_ttl_s,
        wait_s=deps.policy.lock_wait_s,
    ) as lease:
        payment = await get_payment(deps, payment_id)
        if payment.status is PaymentStatus.CLOSED:
            return payment  # cancelling twice is cancelling once
        if not payment.is_live or not payment.closable:
            raise PaymentNotCancellable(f"payment {payment.id} is {payment.status}")
        if payment.status is PaymentStatus.UNKNOWN:
            payment = await sync_with_provider(deps, payment, lease)
            if payment.status is PaymentStatus.UNKNOWN:
                raise PaymentOutcomeUnknown()
            if not payment.is_live:
                return payment
        try:
            closed = await close_trade(deps, payment, lease, why="payment cancelled")
        except IllegalTransition:
            closed = await get_payment(deps, payment_id)  # it moved on while we decided
        if closed.status is PaymentStatus.PAID:
            raise PaymentNotCancellable(f"payment {payment.id} was paid before it could close")
        return closed
