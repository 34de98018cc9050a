"""Forged PayPal webhooks change nothing and are answered 400; their genuine twins apply.

Both events payonce acts on are forged: CHECKOUT.ORDER.APPROVED (payonce would capture) and
PAYMENT.CAPTURE.COMPLETED (payonce would apply the payment). Deliveries are dropped by a fault
so that payonce learns of nothing until the test posts the bytes itself.
"""

from __future__ import annotations

from typing import Any

import pytest

from payonce.domain.channels import Channel
from payonce.sandbox.faults import FORGERIES, FaultSettings, Forgery
from tests.integration.conftest import Live

EVENTS = {
    "approved": "CHECKOUT.ORDER.APPROVED",
    "captured": "PAYMENT.CAPTURE.COMPLETED",
}


async def _state(live: Live, order: dict[str, Any]) -> tuple[Any, ...]:
    """Everything a notification could change, to compare before and after."""
    current = await live.order(order)
    payments = await live.payments(order)
    return (
        current["status"],
        current["status_version"],
        [(p["status"], p["status_version"], p["applied"]) for p in payments],
    )


async def _undelivered(live: Live, event: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    """An order paying with PayPal, and the id of a genuine event payonce has not seen."""
    live.sandbox.set_faults(FaultSettings(notify_drop_rate=1.0))
    order = await live.create_order(currency="USD")
    payment = (await live.apply(order, "paypal", "wap")).json()
    assert (await live.wallet("pay", payment["action"]["redirect_url"])).status_code == 200
    if event == "captured":
        # The capture went through while payonce did not hear back (a capture that timed out).
        provider = live.container.deps.providers[Channel.PAYPAL]
        await provider.capture(payment["out_trade_no"])
    await live.sandbox.deliver_due()
    for delivery in live.sandbox.deliveries(payment["out_trade_no"]):
        if delivery.fault == "dropped" and EVENTS[event] in delivery.body:
            return order, payment, delivery.notify_id
    raise AssertionError(f"no {EVENTS[event]} was sent")


async def _post(live: Live, notify_id: str, forgery: Forgery | None = None) -> tuple[int, str]:
    outgoing = live.sandbox.notification("paypal", notify_id, forgery)
    response = await live.http.post(
        "/api/notify/paypal", content=outgoing.body, headers=dict(outgoing.headers)
    )
    return response.status_code, response.text


@pytest.mark.parametrize("forgery", FORGERIES)
@pytest.mark.parametrize("event", sorted(EVENTS))
async def test_a_forged_webhook_changes_nothing_and_is_refused(
    live: Live, event: str, forgery: Forgery
) -> None:
    order, payment, notify_id = await _undelivered(live, event)
    before = await _state(live, order)
    captures_before = [m.kind for m in live.sandbox.ledger(payment["out_trade_no"])]

    assert await _post(live, notify_id, forgery) == (400, "")

    assert await _state(live, order) == before
    assert [m.kind for m in live.sandbox.ledger(payment["out_trade_no"])] == captures_before
    async with live.container.deps.storage.transaction() as uow:
        # Not even its event id was kept: the genuine event with that id still counts.
        assert await uow.notifications.record(
            "paypal", notify_id, payment_id=payment["id"], now=live.clock.now()
        )


@pytest.mark.parametrize("event", sorted(EVENTS))
async def test_the_genuine_twin_of_the_forgeries_applies(live: Live, event: str) -> None:
    order, payment, notify_id = await _undelivered(live, event)
    for forgery in FORGERIES:
        assert await _post(live, notify_id, forgery) == (400, "")
    assert await _post(live, notify_id) == (200, "")
    final = await live.order(order)
    assert (final["status"], final["paid_payment_id"]) == ("READY_FOR_SHIPMENT", payment["id"])
    [paid] = await live.payments(order)
    assert (paid["status"], paid["applied"]) == ("PAID", True)
    assert [m.kind for m in live.sandbox.ledger(payment["out_trade_no"])] == ["capture"]
