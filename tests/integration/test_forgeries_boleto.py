"""Forged boleto webhooks reaching the live server change nothing; the genuine one applies once."""

from __future__ import annotations

import json
from typing import Any

import pytest

from payonce.sandbox.faults import FORGERIES, FaultSettings, Forgery
from tests.integration.conftest import Live

# What payonce answers each forgery with: the adapter's reason, or the service's match.
REASONS: dict[Forgery, str] = {
    "bad_signature": "bad_signature",
    "changed_amount": "amount_mismatch",
    "other_merchant": "merchant_mismatch",
    "stale_timestamp": "stale",
}


async def _confirmed_undelivered(live: Live) -> tuple[dict[str, Any], dict[str, Any], str]:
    """An order whose boleto the PSP confirmed, its webhook dropped: (order, payment, event id)."""
    order = await live.create_order(currency="BRL")
    payment = (await live.apply(order, "boleto", "pc")).json()
    live.sandbox.set_faults(FaultSettings(notify_drop_rate=1.0))
    paid = await live.wallet("pay", payment["action"]["digitable_line"])
    assert paid.status_code == 200, paid.text
    out_trade_no = payment["out_trade_no"]
    for _ in range(10):
        await live.sandbox.advance_clock(86400)
        if live.sandbox.ledger(out_trade_no):
            break
    [delivery] = live.sandbox.deliveries(out_trade_no)
    assert delivery.fault == "dropped"
    return order, payment, delivery.notify_id


async def _state(live: Live, order: dict[str, Any]) -> tuple[Any, ...]:
    """Everything a notification could change, to compare before and after."""
    current = await live.order(order)
    payments = await live.payments(order)
    return (
        current["status"],
        current["status_version"],
        [(p["status"], p["status_version"], p["applied"]) for p in payments],
    )


@pytest.mark.parametrize("forgery", FORGERIES)
async def test_a_forged_webhook_changes_nothing(live: Live, forgery: Forgery) -> None:
    order, payment, notify_id = await _confirmed_undelivered(live)
    before = await _state(live, order)
    assert before[0] == "UNPAID"
    forged = live.sandbox.notification("boleto", notify_id, forgery)
    response = await live.http.post(
        "/api/notify/boleto", content=forged.body, headers=dict(forged.headers)
    )
    assert response.status_code == 400
    assert response.json() == {"received": False, "reason": REASONS[forgery]}
    assert await _state(live, order) == before
    async with live.container.deps.storage.transaction() as uow:
        # Not even its event id was kept: the genuine event with that id still counts.
        assert await uow.notifications.record(
            "boleto", notify_id, payment_id=payment["id"], now=live.clock.now()
        )


async def test_the_genuine_webhook_applies_once(live: Live) -> None:
    order, payment, notify_id = await _confirmed_undelivered(live)
    genuine = live.sandbox.notification("boleto", notify_id)
    for _ in range(2):
        response = await live.http.post(
            "/api/notify/boleto", content=genuine.body, headers=dict(genuine.headers)
        )
        assert (response.status_code, response.json()) == (200, {"received": True})
    final = await live.order(order)
    assert (final["status"], final["paid_payment_id"]) == ("READY_FOR_SHIPMENT", payment["id"])
    [paid] = await live.payments(order)
    assert (paid["status"], paid["applied"]) == ("PAID", True)
    assert json.loads(genuine.body)["type"] == "charge.paid"
    assert [m.kind for m in live.sandbox.ledger(payment["out_trade_no"])] == ["capture"]


async def test_an_unsigned_or_garbled_webhook_is_refused(live: Live) -> None:
    order, _, notify_id = await _confirmed_undelivered(live)
    before = await _state(live, order)
    genuine = live.sandbox.notification("boleto", notify_id)
    unsigned = await live.http.post(
        "/api/notify/boleto", content=genuine.body, headers={"Content-Type": "application/json"}
    )
    assert (unsigned.status_code, unsigned.json()["reason"]) == (400, "unsigned")
    garbled = await live.http.post(
        "/api/notify/boleto", content=genuine.body[:-1], headers=dict(genuine.headers)
    )
    assert (garbled.status_code, garbled.json()["reason"]) == (400, "bad_signature")
    assert await _state(live, order) == before
