"""How a capture is judged: applied, a duplicate, or late; and which refunds may be asked for."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from payonce.domain.channels import Channel, Platform
from payonce.domain.events import Topic
from payonce.domain.order import Order, OrderLine, OrderStatus
from payonce.domain.outcomes import LateCaptures, RefundRequested, TradeCaptured, react
from payonce.domain.payment import Payment, PaymentStatus
from payonce.domain.transitions import IllegalTransition
from tests.conftest import START

S = PaymentStatus


def _order(status: OrderStatus = OrderStatus.UNPAID) -> Order:
    order = Order.create(
        customer_id="c", currency="CNY", lines=(OrderLine("S", "Tea", 1, 100),), now=START
    )
    return replace(order, status=status)


def _paying(order: Order) -> Payment:
    payment = Payment.open_intent(
        order_id=order.id,
        channel=Channel.ALIPAY,
        platform=Platform.PC,
        amount=order.total,
        now=START,
    )
    return replace(payment, status=S.PAYING)


def _capture(
    order: Order,
    *,
    paid_at_offset: timedelta | None,
    has_applied: bool = False,
    policy: LateCaptures = LateCaptures.REFUND,
) -> tuple[bool, Topic, object]:
    paid_at = None if paid_at_offset is None else order.expires_at + paid_at_offset
    reaction = react(
        _paying(order),
        TradeCaptured("T1", paid_at),
        order=order,
        order_has_applied=has_applied,
        now=order.expires_at + timedelta(minutes=1),
        late_captures=policy,
    )
    [event] = reaction.events
    assert reaction.payment.status is S.PAID
    return reaction.payment.applied, event.topic, event.payload.get("reason")


def _reopens(order: Order, *, policy: LateCaptures, late: bool = True) -> object:
    offset = timedelta(seconds=1 if late else -1)
    reaction = react(
        _paying(order),
        TradeCaptured("T1", order.expires_at + offset),
        order=order,
        order_has_applied=False,
        now=order.expires_at + timedelta(minutes=1),
        late_captures=policy,
    )
    return reaction.events[0].payload.get("reopens")


def test_a_capture_made_before_the_deadline_applies_even_when_its_news_comes_after() -> None:
    applied = _capture(_order(), paid_at_offset=-timedelta(seconds=1))
    assert applied == (True, Topic.PAYMENT_SUCCEEDED, None)


def test_a_capture_made_at_or_after_the_deadline_is_late_and_refunded() -> None:
    for offset in (timedelta(0), timedelta(seconds=1)):
        assert _capture(_order(), paid_at_offset=offset) == (
            False,
            Topic.PAYMENT_EXTRA_CAPTURED,
            "late",
        )


def test_a_capture_of_a_closed_order_is_late_even_without_a_capture_time() -> None:
    assert _capture(_order(OrderStatus.CLOSED), paid_at_offset=None) == (
        False,
        Topic.PAYMENT_EXTRA_CAPTURED,
        "late",
    )


def test_a_capture_without_a_capture_time_on_an_open_order_applies() -> None:
    assert _capture(_order(), paid_at_offset=None)[0] is True


def test_a_second_capture_is_a_duplicate_whatever_its_time() -> None:
    for order, has_applied in ((_order(), True), (_order(OrderStatus.READY_FOR_SHIPMENT), False)):
        assert _capture(order, paid_at_offset=-timedelta(minutes=5), has_applied=has_applied) == (
            False,
            Topic.PAYMENT_EXTRA_CAPTURED,
            "duplicate",
        )


def test_the_reopen_policy_applies_a_late_capture_but_never_a_duplicate() -> None:
    reopen = LateCaptures.REOPEN
    late = _capture(_order(OrderStatus.CLOSED), paid_at_offset=timedelta(seconds=1), policy=reopen)
    assert late == (True, Topic.PAYMENT_SUCCEEDED, None)
    assert _reopens(_order(OrderStatus.CLOSED), policy=reopen) is True
    assert _reopens(_order(), policy=reopen, late=False) is None
    duplicate = _capture(_order(), paid_at_offset=None, has_applied=True, policy=reopen)
    assert duplicate[2] == "duplicate"


def test_only_an_extra_capture_may_be_refunded() -> None:
    order = _order()
    extra = replace(_paying(order), status=S.PAID)
    asked = react(extra, RefundRequested(), order=order, order_has_applied=True, now=START)
    assert asked.payment.status is S.REFUNDING
    assert asked.events == ()
    again = react(asked.payment, RefundRequested(), order=order, order_has_applied=True, now=START)
    assert again.payment is asked.payment  # a repeat changes nothing
    with pytest.raises(IllegalTransition):
        react(
            replace(extra, applied=True),
            RefundRequested(),
            order=order,
            order_has_applied=False,
            now=START,
        )
    with pytest.raises(IllegalTransition):  # it took no money
        react(_paying(order), RefundRequested(), order=order, order_has_applied=True, now=START)
