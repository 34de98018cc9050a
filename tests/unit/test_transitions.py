from __future__ import annotations

from datetime import timedelta

import pytest

from payonce.domain.channels import Channel, Platform
from payonce.domain.events import Topic
from payonce.domain.ids import OrderId
from payonce.domain.money import Money
from payonce.domain.order import Order, OrderLine, OrderStatus
from payonce.domain.outcomes import (
    CallUnanswered,
    CloseRequested,
    TradeCaptured,
    TradeClosed,
    TradeOpened,
    TradeStillOpen,
    react,
)
from payonce.domain.payment import Action, ActionType, Payment, PaymentStatus
from payonce.domain.transitions import IllegalTransition
from tests.conftest import START

S = PaymentStatus
QR = Action(ActionType.QR_CODE, {"qr_code": "https://qr/1"}, START + timedelta(hours=2))


def _order() -> Order:
    return Order.create(
        customer_id="c-1",
        currency="CNY",
        lines=(OrderLine("SKU-1", "Tea", 2, 1999),),
        now=START,
    )


def _payment(order: Order, status: PaymentStatus = S.UNPAID, **changes: object) -> Payment:
    intent = Payment.open_intent(
        order_id=order.id,
        channel=Channel.ALIPAY,
        platform=Platform.PC,
        amount=order.total,
        now=START,
    )
    return intent if status is S.UNPAID else intent.moved_to(status, now=START, **changes)


def test_an_order_computes_its_own_amount_and_starts_unpaid() -> None:
    order = _order()
    assert order.total == Money(3998, "CNY")
    assert order.status is OrderStatus.UNPAID
    assert order.version == 1
    assert order.expires_at == START + timedelta(minutes=30)
    assert order.client_secret.startswith(f"{order.id}_secret_")


def test_a_paid_order_never_goes_back() -> None:
    paid = _order().moved_to(OrderStatus.READY_FOR_SHIPMENT, now=START)
    assert paid.version == 2
    assert paid.moved_to(OrderStatus.READY_FOR_SHIPMENT, now=START) is paid  # repeated: no-op
    for target in (OrderStatus.UNPAID, OrderStatus.CLOSED):
        with pytest.raises(IllegalTransition):
            paid.moved_to(target, now=START)


def test_a_repeated_outcome_changes_nothing() -> None:
    order = _order()
    paying = react(
        _payment(order), TradeOpened(QR), order=order, order_has_applied=False, now=START
    )
    again = react(paying.payment, TradeOpened(QR), order=order, order_has_applied=False, now=START)
    assert not again.changed(paying.payment)
    assert again.payment.version == paying.payment.version


def test_a_timed_out_create_is_unknown_never_failed() -> None:
    order = _order()
    reaction = react(
        _payment(order), CallUnanswered("timeout"), order=order, order_has_applied=False, now=START
    )
    assert reaction.payment.status is S.UNKNOWN
    # Only a query resolves it: still-open after a query makes it PAYING again.
    resolved = react(
        reaction.payment, TradeStillOpen("T1"), order=order, order_has_applied=False, now=START
    )
    assert resolved.payment.status is S.PAYING


def test_the_first_capture_applies_and_announces_payment_succeeded() -> None:
    order = _order()
    paying = _payment(order, S.PAYING, action=QR)
    reaction = react(paying, TradeCaptured("T1"), order=order, order_has_applied=False, now=START)
    assert reaction.payment.status is S.PAID
    assert reaction.payment.applied is True
    assert [e.topic for e in reaction.events] == [Topic.PAYMENT_SUCCEEDED]
    repeated = react(
        reaction.payment, TradeCaptured("T1"), order=order, order_has_applied=True, now=START
    )
    assert not repeated.changed(reaction.payment)
    assert repeated.events == ()


def test_a_capture_of_an_order_already_paid_is_an_extra_capture_never_applied() -> None:
    order = _order()
    closed = _payment(order, S.CLOSED)
    reaction = react(closed, TradeCaptured("T2"), order=order, order_has_applied=True, now=START)
    assert reaction.payment.status is S.PAID
    assert reaction.payment.applied is False
    assert [e.topic for e in reaction.events] == [Topic.PAYMENT_EXTRA_CAPTURED]


def test_a_closed_order_never_takes_a_capture() -> None:
    order = _order().moved_to(OrderStatus.CLOSED, now=START)
    paying = _payment(order, S.PAYING, action=QR)
    reaction = react(paying, TradeCaptured("T3"), order=order, order_has_applied=False, now=START)
    assert reaction.payment.applied is False
    assert [e.topic for e in reaction.events] == [Topic.PAYMENT_EXTRA_CAPTURED]


def test_closing_a_paid_trade_is_a_conflict_not_a_change() -> None:
    order = _order()
    paid = _payment(order, S.PAID)
    for outcome in (CloseRequested(), TradeClosed()):
        with pytest.raises(IllegalTransition):
            react(paid, outcome, order=order, order_has_applied=True, now=START)


def test_reuse_needs_the_same_channel_platform_amount_and_a_valid_action() -> None:
    order = _order()
    paying = _payment(order, S.PAYING, action=QR)
    margin = timedelta(seconds=60)
    same = {"channel": Channel.ALIPAY, "platform": Platform.PC, "amount": order.total}
    assert paying.reusable_for(**same, now=START, margin=margin)
    assert not paying.reusable_for(**{**same, "platform": Platform.WAP}, now=START, margin=margin)
    assert not paying.reusable_for(**{**same, "amount": Money(1, "CNY")}, now=START, margin=margin)
    assert not paying.reusable_for(**same, now=START + timedelta(hours=2), margin=margin)
    assert not paying.reusable_for(**same, now=START + timedelta(hours=2) - margin, margin=margin)


def test_ids_are_typed_and_unguessable() -> None:
    order = _order()
    assert order.id.startswith("ord_")
    assert len({_order().id for _ in range(100)}) == 100
    assert OrderId(order.id) == order.id
