"""How payonce lives with WeChat's rule that an order cannot be closed in its first five minutes.

Close-before-new asks WeChat to close the open trade before opening another; inside those five
minutes WeChat refuses, so the new apply answers 409 ``payment_outcome_unknown`` (retryable) and
the old trade stays CLOSING, still payable by the shopper. Once five minutes have passed the
same apply closes it and opens the new trade; a payment of the old trade meanwhile pays the
order, once; and an order WeChat took while its create timed out waits out the window too.
"""

from __future__ import annotations

from typing import Any

from payonce.sandbox import FaultSettings
from payonce.sandbox.faults import FaultRates
from tests.integration.conftest import Live


async def _switch_refused(live: Live) -> tuple[dict[str, Any], dict[str, Any]]:
    order = await live.create_order()
    first = await live.apply(order, "wechat", "pc")
    assert first.status_code == 201, first.text
    switch = await live.apply(order, "wechat", "wap")
    assert switch.status_code == 409
    assert switch.json()["code"] == "payment_outcome_unknown"
    assert switch.headers["retry-after"] == "1"
    [closing] = await live.payments(order)
    assert (closing["id"], closing["status"]) == (first.json()["id"], "CLOSING")
    [trade] = await live.sandbox_trades(closing["out_trade_no"])
    assert trade["status"] == "NOTPAY"
    return order, first.json()


async def test_a_new_trade_waits_until_wechat_lets_the_old_one_close(live: Live) -> None:
    order, first = await _switch_refused(live)
    await live.sandbox.advance_clock(4 * 60 + 59)
    still = await live.apply(order, "wechat", "wap")
    assert (still.status_code, still.json()["code"]) == (409, "payment_outcome_unknown")

    await live.sandbox.advance_clock(1)
    switched = await live.apply(order, "wechat", "wap")
    assert switched.status_code == 201, switched.text
    assert switched.json()["action"]["type"] == "launch_url"
    newest, oldest = await live.payments(order)
    assert (oldest["id"], oldest["status"]) == (first["id"], "CLOSED")
    assert (newest["platform"], newest["status"]) == ("wap", "PAYING")
    assert [t["status"] for t in await live.sandbox_trades(first["out_trade_no"])] == ["CLOSED"]
    assert [t["status"] for t in await live.sandbox_trades(newest["out_trade_no"])] == ["NOTPAY"]
    late = await live.wallet("pay", first["action"]["qr_code"])
    assert late.status_code == 409
    assert live.sandbox.ledger() == []


async def test_the_old_trade_paid_inside_the_window_pays_the_order_once(live: Live) -> None:
    order, first = await _switch_refused(live)
    assert (await live.wallet("pay", first["action"]["qr_code"])).status_code == 200
    await live.sandbox.deliver_due()
    final = await live.order(order)
    assert (final["status"], final["paid_payment_id"]) == ("READY_FOR_SHIPMENT", first["id"])
    [paid] = await live.payments(order)
    assert (paid["status"], paid["applied"]) == ("PAID", True)
    again = await live.apply(order, "wechat", "wap")
    assert (again.status_code, again.json()["code"]) == (409, "order_already_paid")
    assert [(m.kind, m.amount) for m in live.sandbox.ledger()] == [("capture", 3998)]
    assert all(d.ok for d in live.sandbox.deliveries() if d.fault is None)


async def test_after_a_create_that_timed_out_the_next_trade_waits_for_the_window_too(
    start_live: Any,
) -> None:
    """The order WeChat took while we timed out has no code we could show: it is closed first."""
    live: Live = await start_live(provider_timeout_s=0.3)
    order = await live.create_order()
    live.sandbox.set_faults(
        FaultSettings(channels={"wechat": FaultRates(create_timeout_rate=1.0)}, timeout_hold_s=1.0)
    )
    unanswered = await live.apply(order, "wechat", "pc")
    assert (unanswered.status_code, unanswered.json()["code"]) == (409, "payment_outcome_unknown")
    live.sandbox.set_faults(FaultSettings())
    [unknown] = await live.payments(order)
    assert unknown["status"] == "UNKNOWN"
    assert [t["status"] for t in await live.sandbox_trades(unknown["out_trade_no"])] == ["NOTPAY"]

    again = await live.apply(order, "wechat", "pc")
    assert (again.status_code, again.json()["code"]) == (409, "payment_outcome_unknown")
    [closing] = await live.payments(order)
    assert closing["status"] == "CLOSING"

    await live.sandbox.advance_clock(5 * 60)
    opened = await live.apply(order, "wechat", "pc")
    assert opened.status_code == 201, opened.text
    newest, oldest = await live.payments(order)
    assert (oldest["status"], newest["status"]) == ("CLOSED", "PAYING")
    assert [t["status"] for t in await live.sandbox_trades(oldest["out_trade_no"])] == ["CLOSED"]
