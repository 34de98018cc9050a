"""PayPal through payonce: approval, capture on the webhook, and the captures that must not be.

PayPal moves money only when the merchant captures an approved order, so at-most-once rests on
payonce capturing only a trade it still wants: never one it closed, even when the buyer
approves it afterwards.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from payonce.sandbox.faults import FaultSettings
from tests.integration.conftest import Live, LiveFactory


async def _apply(live: Live, order: dict[str, Any], platform: str = "wap") -> dict[str, Any]:
    response = await live.apply(order, "paypal", platform)
    assert response.status_code in (200, 201), response.text
    payment: dict[str, Any] = response.json()
    return payment


def _event_types(live: Live, out_trade_no: str) -> list[tuple[str, int | None, bool]]:
    """(event type, answer status, acknowledged) of every genuine delivery, in order."""
    found = []
    for delivery in live.sandbox.deliveries(out_trade_no):
        if delivery.fault is None:
            event_type = delivery.body.split('"event_type":"', 1)[1].split('"', 1)[0]
            found.append((event_type, delivery.status_code, delivery.ok))
    return found


async def test_approval_is_captured_once_and_every_webhook_acknowledged(live: Live) -> None:
    order = await live.create_order(currency="USD")
    payment = await _apply(live, order)
    action = payment["action"]
    assert action["type"] == "redirect_url"
    assert action["fallback_url"] == f"{live.url}/pay/{order['id']}"
    assert action["expires_at"] == order["expires_at"]  # the order's 30 min, within PayPal's 3 h
    again = await _apply(live, order)  # a repeated click: the same approve link
    assert (again["id"], again["action"]["redirect_url"]) == (payment["id"], action["redirect_url"])

    assert (await live.wallet("pay", action["redirect_url"])).status_code == 200
    await live.sandbox.deliver_due()  # CHECKOUT.ORDER.APPROVED: payonce captures
    assert (await live.order(order))["status"] == "READY_FOR_SHIPMENT"
    await live.sandbox.deliver_due()  # PAYMENT.CAPTURE.COMPLETED: already known
    out_trade_no = payment["out_trade_no"]
    assert _event_types(live, out_trade_no) == [
        ("CHECKOUT.ORDER.APPROVED", 200, True),
        ("PAYMENT.CAPTURE.COMPLETED", 200, True),
    ]
    [paid] = await live.payments(order)
    assert (paid["status"], paid["applied"]) == ("PAID", True)
    assert [(m.kind, m.amount) for m in live.sandbox.ledger(out_trade_no)] == [("capture", 3998)]
    (trade,) = live.sandbox.trades(out_trade_no, channel="paypal")
    async with live.container.deps.storage.transaction() as uow:
        stored = await uow.payments.by_out_trade_no(out_trade_no)
    assert stored is not None
    assert stored.provider_trade_no == trade.trade_no  # the PayPal order id


async def test_a_capture_that_timed_out_is_applied_from_its_webhook(
    start_live: LiveFactory,
) -> None:
    live = await start_live(provider_timeout_s=0.5)
    order = await live.create_order(currency="USD")
    payment = await _apply(live, order)
    await live.wallet("pay", payment["action"]["redirect_url"])
    live.sandbox.set_faults(FaultSettings(capture_timeout_rate=1.0, timeout_hold_s=1.5))
    await live.sandbox.deliver_due()  # the approval: payonce's capture times out, answers 503
    live.sandbox.set_faults(FaultSettings())
    out_trade_no = payment["out_trade_no"]
    assert [m.kind for m in live.sandbox.ledger(out_trade_no)] == ["capture"]
    assert (await live.order(order))["status"] == "UNPAID"

    await live.sandbox.deliver_due()  # PAYMENT.CAPTURE.COMPLETED
    assert (await live.order(order))["status"] == "READY_FOR_SHIPMENT"
    live.clock.advance(timedelta(seconds=15))
    await live.sandbox.deliver_due()  # the approval again: nothing left to capture
    assert _event_types(live, out_trade_no) == [
        ("CHECKOUT.ORDER.APPROVED", 503, False),
        ("PAYMENT.CAPTURE.COMPLETED", 200, True),
        ("CHECKOUT.ORDER.APPROVED", 200, True),
    ]
    assert [m.kind for m in live.sandbox.ledger(out_trade_no)] == ["capture"]


async def test_a_closed_trade_is_never_captured_even_when_approved_late(live: Live) -> None:
    """The shopper approves on the computer after switching to the phone: one capture only."""
    order = await live.create_order(currency="USD")
    first = await _apply(live, order, "pc")
    second = await _apply(live, order, "wap")  # another platform: the first trade is closed
    assert second["id"] != first["id"]
    [newest, oldest] = await live.payments(order)
    assert (newest["id"], oldest["status"]) == (second["id"], "CLOSED")

    # PayPal cannot void the first order: the shopper can still approve it.
    late = await live.wallet("pay", first["action"]["redirect_url"])
    assert late.json()["status"] == "APPROVED"
    await live.wallet("pay", second["action"]["redirect_url"])
    for _ in range(3):
        live.clock.advance(timedelta(minutes=1))
        await live.sandbox.deliver_due()

    final = await live.order(order)
    assert (final["status"], final["paid_payment_id"]) == ("READY_FOR_SHIPMENT", second["id"])
    assert [m.out_trade_no for m in live.sandbox.ledger()] == [second["out_trade_no"]]
    assert _event_types(live, first["out_trade_no"])[-1] == ("CHECKOUT.ORDER.APPROVED", 200, True)
    async with live.container.deps.storage.transaction() as uow:
        stored = await uow.payments.by_out_trade_no(first["out_trade_no"])
    assert stored is not None
    assert (stored.status.value, stored.applied) == ("CLOSED", False)
    (closed,) = live.sandbox.trades(first["out_trade_no"], channel="paypal")
    assert (closed.status, closed.captured) == ("APPROVED", 0)


async def test_an_approval_after_the_order_expired_is_never_captured(live: Live) -> None:
    response = await live.http.post(
        "/api/orders",
        json={
            "customer_id": "c-42",
            "currency": "USD",
            "expires_in_s": 60,
            "lines": [{"sku": "S", "name": "Tea", "quantity": 1, "unit_amount": 999}],
        },
        headers=live.backend,
    )
    assert response.status_code == 201, response.text
    order = response.json()
    payment = await _apply(live, order)
    await live.sandbox.advance_clock(120)  # the order's deadline passes; PayPal's 3 h do not

    assert (await live.wallet("pay", payment["action"]["redirect_url"])).status_code == 200
    await live.sandbox.deliver_due()  # CHECKOUT.ORDER.APPROVED, for an order past its deadline

    out_trade_no = payment["out_trade_no"]
    assert live.sandbox.ledger(out_trade_no) == []  # nothing captured
    [closed] = await live.payments(order)
    assert (closed["status"], closed["applied"]) == ("CLOSED", False)
    assert (await live.order(order))["status"] != "READY_FOR_SHIPMENT"
    assert _event_types(live, out_trade_no) == [("CHECKOUT.ORDER.APPROVED", 200, True)]
    (trade,) = live.sandbox.trades(out_trade_no, channel="paypal")
    assert trade.status == "APPROVED"  # approved at PayPal, and left to lapse
