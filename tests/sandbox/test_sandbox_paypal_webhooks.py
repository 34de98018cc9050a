"""PayPal's webhooks in the sandbox: the subscription, signed events, forgeries, retry schedule."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from paypal_merchant import Hook, Merchant, link, verifies
from sandbox_harness import START, Env

from payonce.sandbox.faults import Forgery

pytestmark = pytest.mark.asyncio(loop_scope="session")

# The waits after each failed delivery (payonce.sandbox.paypal_notices.PAYPAL_RETRIES).
WAITS = [
    timedelta(seconds=15),
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(minutes=30),
    timedelta(hours=1),
    timedelta(hours=2),
    timedelta(hours=2),
    timedelta(hours=3),
    timedelta(hours=3),
    *[timedelta(hours=4)] * 15,
]


async def _subscribed(merchant: Merchant, hook: Hook) -> None:
    answer = await merchant.subscribe(hook.url)
    assert answer.status_code == 200, answer.text


async def _approved(env: Env, merchant: Merchant, number: str) -> dict[str, object]:
    order = await merchant.created(number)
    assert (await env.wallet("pay", link(order, "payer-action"))).status_code == 200
    return order


def _event(body: bytes) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(body)
    return event


async def test_the_webhook_subscription_is_read_and_pointed_by_patch(
    env: Env, merchant: Merchant, hook: Hook
) -> None:
    webhook_id = merchant.credentials.webhook_id
    path = f"/v1/notifications/webhooks/{webhook_id}"
    before = await merchant.call("GET", path)
    assert (before.status_code, before.json()["url"]) == (200, None)
    assert before.json()["event_types"] == [{"name": "*"}]
    await _subscribed(merchant, hook)
    after = await merchant.call("GET", path)
    assert (after.json()["id"], after.json()["url"]) == (webhook_id, hook.url)
    other = await merchant.call("GET", "/v1/notifications/webhooks/SOMEONEELSES")
    assert other.status_code == 404
    bad = await merchant.call(
        "PATCH", path, [{"op": "replace", "path": "/url", "value": "ftp://x"}]
    )
    assert bad.status_code == 400


async def test_without_a_subscription_nothing_is_sent(env: Env, merchant: Merchant) -> None:
    order = await _approved(env, merchant, "h_0")
    assert (await merchant.capture(str(order["id"]), "cap")).status_code == 201
    await env.sandbox.deliver_due()
    assert env.sandbox.deliveries() == []


async def test_approval_capture_and_refund_are_signed_events(
    env: Env, merchant: Merchant, hook: Hook
) -> None:
    await _subscribed(merchant, hook)
    order = await _approved(env, merchant, "h_1")
    captured = (await merchant.capture(str(order["id"]), "cap-h_1")).json()
    capture_id = captured["purchase_units"][0]["payments"]["captures"][0]["id"]
    await merchant.refund(capture_id, "2.34", "rf-h_1")
    assert await env.sandbox.deliver_due() == 3
    events = [_event(body) for _, body in hook.received]
    assert [e["event_type"] for e in events] == [
        "CHECKOUT.ORDER.APPROVED",
        "PAYMENT.CAPTURE.COMPLETED",
        "PAYMENT.CAPTURE.REFUNDED",
    ]
    assert [e["resource_type"] for e in events] == ["checkout-order", "capture", "refund"]
    approved, completed, refunded = (e["resource"] for e in events)
    assert (approved["id"], approved["status"]) == (order["id"], "APPROVED")
    assert approved["purchase_units"][0]["invoice_id"] == "h_1"
    assert (completed["id"], completed["status"], completed["amount"]["value"]) == (
        capture_id,
        "COMPLETED",
        "12.34",
    )
    assert (completed["custom_id"], completed["invoice_id"]) == ("h_1", "h_1")
    assert completed["supplementary_data"]["related_ids"]["order_id"] == order["id"]
    assert completed["payee"] == {"merchant_id": merchant.credentials.merchant_id}
    assert refunded["amount"]["value"] == "2.34"
    assert all(str(e["id"]).startswith("WH-") for e in events)
    assert len({e["id"] for e in events}) == 3

    headers, body = hook.received[1]
    assert headers["content-type"] == "application/json"
    assert headers["paypal-auth-algo"] == "SHA256withRSA"
    assert headers["paypal-transmission-time"] == "2026-11-24T02:00:00Z"
    certificate = await env.http.get(headers["paypal-cert-url"])
    assert certificate.status_code == 200
    assert certificate.text == merchant.credentials.webhook_cert_pem
    webhook_id = merchant.credentials.webhook_id
    assert all(verifies(certificate.text, webhook_id, h, b) for h, b in hook.received)
    # Signed for our subscription only: with any other webhook id the signature fails.
    assert not verifies(certificate.text, "8PT597110X687430L", headers, body)
    assert [d.ok for d in env.sandbox.deliveries("h_1")] == [True, True, True]


async def test_each_forgery_is_what_it_says(env: Env, merchant: Merchant, hook: Hook) -> None:
    await _subscribed(merchant, hook)
    order = await _approved(env, merchant, "h_2")
    await merchant.capture(str(order["id"]), "cap-h_2")
    await env.sandbox.deliver_due()
    delivery = env.sandbox.deliveries("h_2")[1]
    cert, webhook_id = merchant.credentials.webhook_cert_pem, merchant.credentials.webhook_id
    genuine = env.sandbox.notification("paypal", delivery.notify_id)
    assert verifies(cert, webhook_id, dict(genuine.headers), genuine.body)

    def forged(kind: Forgery) -> tuple[bool, dict[str, Any], dict[str, str]]:
        outgoing = env.sandbox.notification("paypal", delivery.notify_id, kind)
        headers = dict(outgoing.headers)
        return verifies(cert, webhook_id, headers, outgoing.body), _event(outgoing.body), headers

    signed, event, _ = forged("bad_signature")
    assert not signed
    assert event == _event(genuine.body)
    signed, event, _ = forged("changed_amount")
    assert signed
    assert event["resource"]["amount"]["value"] == "13.34"
    signed, event, _ = forged("other_merchant")
    assert signed
    assert event["resource"]["payee"] == {"merchant_id": "ZZZZZZZZZZZZZ"}
    signed, event, headers = forged("stale_timestamp")
    assert signed
    assert event == _event(genuine.body)
    assert headers["PAYPAL-TRANSMISSION-TIME"] == "2026-11-24T00:00:00Z"


async def test_retries_follow_paypals_schedule_until_the_last_attempt(
    env: Env, merchant: Merchant, hook: Hook
) -> None:
    await _subscribed(merchant, hook)
    hook.default = 500
    await _approved(env, merchant, "h_3")
    assert await env.sandbox.deliver_due() == 1
    for wait in WAITS[:4]:
        env.clock.advance(wait - timedelta(seconds=1))
        assert await env.sandbox.deliver_due() == 0  # not due a second early
        env.clock.advance(timedelta(seconds=1))
        assert await env.sandbox.deliver_due() == 1
    for wait in WAITS[4:]:
        env.clock.advance(wait)
        assert await env.sandbox.deliver_due() == 1
    env.clock.advance(timedelta(days=7))
    assert await env.sandbox.deliver_due() == 0

    deliveries = env.sandbox.deliveries("h_3")
    assert [d.attempt for d in deliveries] == list(range(1, 27))
    offsets = [timedelta(0)]
    for wait in WAITS:
        offsets.append(offsets[-1] + wait)
    assert [d.at - START for d in deliveries] == offsets
    assert offsets[-1] == timedelta(hours=71, minutes=51, seconds=15)
    assert offsets[-1] < timedelta(days=3)
    assert [d.status_code for d in deliveries] == [500] * 26
    assert not any(d.ok for d in deliveries)
    # The same event every time, signed afresh with each attempt's own transmission time.
    assert len({d.body for d in deliveries}) == 1
    assert len({d.notify_id for d in deliveries}) == 1
    times = [d.headers["PAYPAL-TRANSMISSION-TIME"] for d in deliveries[:3]]
    assert times == ["2026-11-24T02:00:00Z", "2026-11-24T02:00:15Z", "2026-11-24T02:01:15Z"]
    cert, webhook_id = merchant.credentials.webhook_cert_pem, merchant.credentials.webhook_id
    assert all(verifies(cert, webhook_id, dict(h), b) for h, b in hook.received)


async def test_any_2xx_stops_the_retries(env: Env, merchant: Merchant, hook: Hook) -> None:
    await _subscribed(merchant, hook)
    hook.answers = [500, 404, 204]
    await _approved(env, merchant, "h_4")
    await env.sandbox.deliver_due()
    env.clock.advance(WAITS[0])
    await env.sandbox.deliver_due()
    env.clock.advance(WAITS[1])
    await env.sandbox.deliver_due()
    env.clock.advance(timedelta(days=4))
    assert await env.sandbox.deliver_due() == 0
    deliveries = env.sandbox.deliveries("h_4")
    assert [(d.attempt, d.status_code, d.ok) for d in deliveries] == [
        (1, 500, False),
        (2, 404, False),
        (3, 204, True),
    ]


async def test_notification_faults_apply_to_paypal(
    env: Env, merchant: Merchant, hook: Hook
) -> None:
    await _subscribed(merchant, hook)
    faults = {"seed": 5, "channels": {"paypal": {"notify_drop_rate": 1.0}}}
    assert (await env.http.put(f"{env.url}/faults", json=faults)).status_code == 200
    await _approved(env, merchant, "h_5")
    await env.sandbox.deliver_due()
    (dropped,) = env.sandbox.deliveries("h_5")
    assert (dropped.fault, dropped.ok) == ("dropped", False)
    assert hook.received == []

    faults = {"channels": {"paypal": {"notify_duplicate_rate": 1.0}}}
    await env.http.put(f"{env.url}/faults", json=faults)
    env.clock.advance(WAITS[0])
    await env.sandbox.deliver_due()
    (first_headers, first), (second_headers, second) = hook.received
    assert first == second
    assert first_headers["paypal-transmission-sig"] == second_headers["paypal-transmission-sig"]
    assert [(d.attempt, d.fault) for d in env.sandbox.deliveries("h_5")] == [
        (1, "dropped"),
        (2, None),
        (2, "duplicate"),
    ]
