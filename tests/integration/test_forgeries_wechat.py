"""Forged WeChat Pay notifications, posted to the live server, change nothing; the genuine applies.

Each forgery is rendered by the sandbox from the very notification of a real payment (whose
own delivery was dropped, so the order is still waiting for it): a tampered signature, a
re-encrypted and validly re-signed changed amount, another merchant's validly signed and
encrypted notification, and a genuine one with a timestamp two hours old.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from payonce.sandbox import FaultSettings
from payonce.sandbox.faults import FORGERIES, FaultRates, Forgery
from tests.integration.conftest import Live

# What payonce answers each forgery: WeChat's refusal format, with why.
REASONS: dict[Forgery, str] = {
    "bad_signature": "bad_signature",
    "changed_amount": "amount_mismatch",
    "other_merchant": "merchant_mismatch",
    "stale_timestamp": "stale",
}


async def _paid_but_not_notified(live: Live) -> tuple[dict[str, Any], dict[str, Any], str]:
    """An order whose WeChat payment happened, its notification dropped on the way."""
    order = await live.create_order()
    payment = (await live.apply(order, "wechat", "pc")).json()
    live.sandbox.set_faults(FaultSettings(channels={"wechat": FaultRates(notify_drop_rate=1.0)}))
    assert (await live.wallet("pay", payment["action"]["qr_code"])).status_code == 200
    assert await live.sandbox.deliver_due() == 1
    [dropped] = live.sandbox.deliveries(payment["out_trade_no"])
    assert dropped.fault == "dropped"
    live.sandbox.set_faults(FaultSettings())
    return order, payment, dropped.notify_id


async def _state(live: Live, order: dict[str, Any]) -> tuple[Any, ...]:
    """Everything a notification could change, to compare before and after."""
    current = await live.order(order)
    payments = await live.payments(order)
    return (
        current["status"],
        current["status_version"],
        [(p["status"], p["status_version"], p["applied"]) for p in payments],
    )


async def _post(live: Live, headers: Any, body: bytes) -> Any:
    return await live.http.post("/api/notify/wechat", content=body, headers=dict(headers))


@pytest.mark.parametrize("forgery", FORGERIES)
async def test_a_forged_notification_changes_nothing_and_the_genuine_one_then_applies(
    live: Live, forgery: Forgery
) -> None:
    order, payment, notify_id = await _paid_but_not_notified(live)
    before = await _state(live, order)
    assert before[0] == "UNPAID"

    forged = live.sandbox.notification("wechat", notify_id, forgery)
    response = await _post(live, forged.headers, forged.body)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"code": "FAIL", "message": REASONS[forgery]}
    assert await _state(live, order) == before

    # The forgery did not use up the notification's id: the genuine one still applies.
    genuine = live.sandbox.notification("wechat", notify_id)
    accepted = await _post(live, genuine.headers, genuine.body)
    assert (accepted.status_code, accepted.json()["code"]) == (200, "SUCCESS")
    final = await live.order(order)
    assert (final["status"], final["paid_payment_id"]) == ("READY_FOR_SHIPMENT", payment["id"])
    [paid] = await live.payments(order)
    assert (paid["status"], paid["applied"]) == ("PAID", True)
    assert [m.kind for m in live.sandbox.ledger(payment["out_trade_no"])] == ["capture"]


async def test_the_genuine_notification_delivered_twice_is_applied_once(live: Live) -> None:
    order, _payment, notify_id = await _paid_but_not_notified(live)
    genuine = live.sandbox.notification("wechat", notify_id)
    first = await _post(live, genuine.headers, genuine.body)
    assert first.status_code == 200
    applied = await _state(live, order)
    assert applied[0] == "READY_FOR_SHIPMENT"
    again = await _post(live, {k.lower(): v for k, v in genuine.headers.items()}, genuine.body)
    assert (again.status_code, json.loads(again.content)["code"]) == (200, "SUCCESS")
    assert await _state(live, order) == applied


async def test_wechats_own_retries_reach_the_order_once(live: Live) -> None:
    """The dropped delivery's retry, 15 s later, is what pays the order (and is acknowledged)."""
    order, payment, _notify_id = await _paid_but_not_notified(live)
    await live.sandbox.advance_clock(15)
    deliveries = live.sandbox.deliveries(payment["out_trade_no"])
    assert [(d.attempt, d.fault, d.status_code, d.ok) for d in deliveries[:2]] == [
        (1, "dropped", None, False),
        (2, None, 200, True),
    ]
    assert (await live.order(order))["status"] == "READY_FOR_SHIPMENT"
