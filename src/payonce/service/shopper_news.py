"""Telling the shopper: an outbox consumer that feeds the order's live clients and sends a push.

It takes the same events as the order side, from the same outbox, so nothing a shopper should
hear of depends on a process surviving its commit. The after-commit publish stays the fast path
to the WebSocket; the publish here makes good one that was lost (clients ignore a status_version
they have seen). The push goes at least once: its id is the event's, so a gateway that
deduplicates on it shows it once.
"""

from __future__ import annotations

import logging

from payonce.domain.events import Event, Topic
from payonce.domain.money import CURRENCY_SYMBOLS, Money
from payonce.domain.order import Order, OrderStatus
from payonce.domain.payment import Payment, PaymentStatus
from payonce.errors import PayonceError
from payonce.ports.push import PushMessage, ShopperPush
from payonce.service.context import Deps
from payonce.service.views import order_event

log = logging.getLogger(__name__)


class OrderNotYetPaid(PayonceError):
    """A payment.succeeded whose order the inbox has not applied yet: told later, when true."""

    code = "order_not_yet_paid"
    title = "The order side has not applied this payment yet"
    http_status = 409
    retryable = True


def shown(money: Money) -> str:
    """An amount as a shopper reads it, e.g. ¥39.98 (the code when there is no symbol)."""
    symbol = CURRENCY_SYMBOLS.get(money.currency)
    return f"{symbol}{money.to_decimal_string()}" if symbol else str(money)


class ShopperNews:
    """The consumer named "shopper": the feed first (best effort), then the push (must succeed)."""

    name = "shopper"
    topics = frozenset({Topic.PAYMENT_SUCCEEDED, Topic.PAYMENT_EXTRA_CAPTURED})
    relay_only = True  # it calls out; never under the order's lock

    def __init__(self, deps: Deps, push: ShopperPush) -> None:
        self._deps = deps
        self._push = push

    async def handle(self, event: Event) -> None:
        if event.topic not in self.topics:
            return
        deps = self._deps
        # As they are now, not as the event saw them: the shopper is told the latest truth.
        async with deps.storage.transaction() as uow:
            order = await uow.orders.get(event.order_id)
            payment = await uow.payments.get(event.payment_id)
        if order is None or payment is None:
            log.error("%s %s: order or payment not found; nothing to tell", event.topic, event.id)
            return
        try:
            await deps.feed.publish(order.id, order_event(order, payment))
        except Exception:  # the after-commit publish or a poll tells the client instead
            log.warning("feed publish for %s failed (event %s)", order.id, event.id, exc_info=True)
        message = news_for(event, order, payment)
        if message is not None:
            await self._push.send(message)


def news_for(event: Event, order: Order, payment: Payment) -> PushMessage | None:
    """The push ``event`` gives, told from the order and payment as they are now; None when
    there is nothing true to tell. Raises OrderNotYetPaid (retried) before the inbox applied it."""
    if event.topic is Topic.PAYMENT_SUCCEEDED:
        if order.status is OrderStatus.UNPAID:
            # The inbox failed this round (a conflict): "ready for shipment" is not yet true.
            raise OrderNotYetPaid(f"order {order.id} is still unpaid")
        if order.status is not OrderStatus.READY_FOR_SHIPMENT or (
            order.paid_payment_id != payment.id
        ):
            # Not paid by this payment (the inbox refused it): not ours to announce.
            log.error(
                "payment.succeeded %s: order %s is %s, paid by %s; no push",
                event.id,
                order.id,
                order.status,
                order.paid_payment_id,
            )
            return None
        return PushMessage(
            id=event.id,
            customer_id=order.customer_id,
            order_id=order.id,
            kind="payment_succeeded",
            title="Payment received",
            body=f"Payment received: order {order.id} is ready for shipment.",
            status=order.status,
            status_version=order.version,
            occurred_at=event.occurred_at,
        )
    which = "late" if event.payload.get("reason") == "late" else "second"
    done = "has been" if payment.status is PaymentStatus.REFUNDED else "will be"
    return PushMessage(
        id=event.id,
        customer_id=order.customer_id,
        order_id=order.id,
        kind="payment_refunding",
        title="Refund on its way" if done == "will be" else "Payment refunded",
        body=f"A {which} payment of {shown(payment.amount)} {done} refunded.",
        status=order.status,
        status_version=order.version,
        occurred_at=event.occurred_at,
    )
