"""The "shopper" consumer: what each event tells the shopper, read from the order as it is now;
the feed is fed before the push, and a push that fails raises so the relay retries."""

from __future__ import annotations

import logging

import pytest

from payonce.adapters.clock import AdjustableClock
from payonce.adapters.push.log import LogPush
from payonce.adapters.push.webhook import PushGatewayUnavailable, WebhookPush
from payonce.domain.events import Event, Topic
from payonce.domain.money import Money
from payonce.domain.order import Order, OrderLine, OrderStatus
from payonce.domain.payment import Payment, PaymentStatus
from payonce.service.context import Deps
from payonce.service.shopper_news import OrderNotYetPaid, ShopperNews, news_for, shown
from payonce.service.views import order_event
from tests.builders import a_paid_payment, an_order, memory_deps
from tests.conftest import START
from tests.loopback import loopback

SOON, DONE = "Refund on its way", "Payment refunded"


def _order() -> Order:
    return an_order(now=START, customer_id="c-7", lines=(OrderLine("S", "Tea", 2, 1999),))


def _paid(order: Order, payment: Payment) -> Order:
    return order.moved_to(OrderStatus.READY_FOR_SHIPMENT, now=START, paid_payment_id=payment.id)


def test_a_paid_order_is_announced_with_its_state_now() -> None:
    order = _order()
    payment = a_paid_payment(order, now=START)
    event = Event.about(Topic.PAYMENT_SUCCEEDED, payment, START)
    paid = _paid(order, payment).touched(START)  # something else changed it since

    message = news_for(event, paid, payment)

    assert message is not None
    assert (message.id, message.kind, message.customer_id, message.order_id) == (
        event.id,
        "payment_succeeded",
        "c-7",
        order.id,
    )
    assert (message.status, message.status_version) == (OrderStatus.READY_FOR_SHIPMENT, 3)
    assert message.title == "Payment received"
    assert message.body == f"Payment received: order {order.id} is ready for shipment."
    assert message.occurred_at == START


def test_a_payment_the_inbox_has_not_applied_yet_is_not_announced_yet() -> None:
    order = _order()
    payment = a_paid_payment(order, now=START)
    event = Event.about(Topic.PAYMENT_SUCCEEDED, payment, START)
    with pytest.raises(OrderNotYetPaid) as raised:
        news_for(event, order, payment)
    assert raised.value.retryable


def test_an_order_the_payment_did_not_pay_is_never_announced_as_paid() -> None:
    order = _order()
    payment = a_paid_payment(order, now=START)
    event = Event.about(Topic.PAYMENT_SUCCEEDED, payment, START)
    closed = order.moved_to(OrderStatus.CLOSED, now=START)
    other = a_paid_payment(order, now=START)
    assert news_for(event, closed, payment) is None
    assert news_for(event, _paid(order, other), payment) is None


@pytest.mark.parametrize(
    ("reason", "status", "title", "body"),
    [
        ("duplicate", PaymentStatus.PAID, SOON, "A second payment of ¥39.98 will be refunded."),
        (
            "duplicate",
            PaymentStatus.REFUNDING,
            SOON,
            "A second payment of ¥39.98 will be refunded.",
        ),
        ("late", PaymentStatus.REFUNDING, SOON, "A late payment of ¥39.98 will be refunded."),
        (
            "duplicate",
            PaymentStatus.REFUNDED,
            DONE,
            "A second payment of ¥39.98 has been refunded.",
        ),
    ],
)
def test_an_extra_capture_is_announced_as_a_refund(
    reason: str, status: PaymentStatus, title: str, body: str
) -> None:
    order = _order()
    extra = a_paid_payment(order, now=START, applied=False)
    event = Event.about(Topic.PAYMENT_EXTRA_CAPTURED, extra, START, reason=reason)
    if status is not PaymentStatus.PAID:
        extra = extra.moved_to(PaymentStatus.REFUNDING, now=START)
    if status is PaymentStatus.REFUNDED:
        extra = extra.moved_to(PaymentStatus.REFUNDED, now=START)
    message = news_for(event, order, extra)
    assert message is not None
    assert (message.kind, message.title) == ("payment_refunding", title)
    assert message.body == body
    assert (message.status, message.status_version) == (OrderStatus.UNPAID, order.version)


def test_amounts_read_as_shoppers_write_them() -> None:
    assert shown(Money(3998, "CNY")) == "¥39.98"
    assert shown(Money(3998, "BRL")) == "R$39.98"
    assert shown(Money(500, "JPY")) == "¥500"
    assert shown(Money(1050, "EUR")) == "€10.50"


@pytest.fixture
def deps(clock: AdjustableClock) -> Deps:
    return memory_deps(clock)


async def _stored(deps: Deps) -> tuple[Order, Payment, Event]:
    order = _order()
    payment = a_paid_payment(order, now=START)
    paid = _paid(order, payment)
    async with deps.storage.transaction() as uow:
        await uow.orders.add(paid)
        await uow.payments.add(payment)
    return paid, payment, Event.about(Topic.PAYMENT_SUCCEEDED, payment, START)


async def test_the_feed_gets_the_order_event_and_the_push_is_sent(
    deps: Deps, caplog: pytest.LogCaptureFixture
) -> None:
    order, payment, event = await _stored(deps)
    consumer = ShopperNews(deps, LogPush())
    assert (consumer.name, consumer.topics) == (
        "shopper",
        frozenset({Topic.PAYMENT_SUCCEEDED, Topic.PAYMENT_EXTRA_CAPTURED}),
    )
    async with deps.feed.subscribe(order.id) as subscription:
        with caplog.at_level(logging.INFO, logger="payonce.adapters.push"):
            await consumer.handle(event)
        assert await subscription.next(0.1) == order_event(order, payment)
    [line] = [r.getMessage() for r in caplog.records if r.name == "payonce.adapters.push.log"]
    assert event.id in line
    assert order.id in line


async def test_a_push_that_fails_raises_after_the_feed_was_fed(deps: Deps) -> None:
    order, payment, event = await _stored(deps)
    sock, closed_url = loopback()
    sock.close()  # the gateway is down: nothing listens
    push = WebhookPush(closed_url, secret=None, clock=deps.clock, timeout_s=1)
    async with deps.feed.subscribe(order.id) as subscription:
        with pytest.raises(PushGatewayUnavailable, match="ConnectError"):
            await ShopperNews(deps, push).handle(event)
        assert await subscription.next(0.1) == order_event(order, payment)
    await push.aclose()


async def test_an_event_of_an_unknown_order_tells_nothing(deps: Deps) -> None:
    order = _order()
    event = Event.about(Topic.PAYMENT_SUCCEEDED, a_paid_payment(order, now=START), START)
    sock, closed_url = loopback()
    sock.close()
    push = WebhookPush(closed_url, secret=None, clock=deps.clock, timeout_s=1)
    await ShopperNews(deps, push).handle(event)  # nothing to tell, so no call that could fail
