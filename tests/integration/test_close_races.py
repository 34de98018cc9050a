"""The shopper pays at the very moment payonce closes the trade: no order ships unpaid or twice."""

from __future__ import annotations

from tests.integration.conftest import Live


def _net(live: Live) -> int:
    return sum(m.amount if m.kind == "capture" else -m.amount for m in live.sandbox.ledger())


async def test_a_payment_landing_just_before_the_close_pays_the_order_once(live: Live) -> None:
    order = await live.create_order()
    pc = (await live.apply(order, platform="pc")).json()
    await live.wallet("scan", pc["action"]["qr_code"])
    await live.http.put("/sandbox/faults", json={"pay_before_close_rate": 1.0})

    switched = await live.apply(order, platform="wap")  # close-before-new loses the race
    assert switched.status_code == 409
    assert switched.json()["code"] == "order_already_paid"
    assert [(p["status"], p["applied"]) for p in await live.payments(order)] == [("PAID", True)]
    await live.sandbox.deliver_due()  # Alipay's own TRADE_SUCCESS notification: a repeat
    final = await live.order(order)
    assert final["status"] == "READY_FOR_SHIPMENT"
    assert _net(live) == final["amount"]


async def test_a_payment_that_the_cancel_refunded_never_pays_the_order(live: Live) -> None:
    order = await live.create_order()
    pc = (await live.apply(order, platform="pc")).json()  # not scanned: close says "not exist"
    await live.http.put("/sandbox/faults", json={"pay_before_cancel_rate": 1.0})

    switched = await live.apply(order, platform="wap")  # the cancel finds it paid, and refunds
    assert switched.status_code == 201, switched.text
    assert [m.kind for m in live.sandbox.ledger()] == ["capture", "refund"]
    statuses = {p["out_trade_no"]: (p["status"], p["applied"]) for p in await live.payments(order)}
    assert statuses == {
        pc["out_trade_no"]: ("REFUNDED", False),
        switched.json()["out_trade_no"]: ("PAYING", False),
    }
    await live.sandbox.deliver_due()  # TRADE_SUCCESS, then TRADE_CLOSED, of the refunded trade
    assert (await live.order(order))["status"] == "UNPAID"
    assert _net(live) == 0
    assert {p["status"] for p in await live.payments(order)} == {"REFUNDED", "PAYING"}
