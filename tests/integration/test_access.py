"""Who may do what: one order's secret touches no other order, the admin calls take the admin
key alone (and it opens no order), API keys rotate, and other sites' pages open no socket."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import websockets
from websockets.exceptions import InvalidStatus

from payonce.service import outbox
from tests.integration.conftest import API_KEY, Live, LiveFactory
from tests.integration.test_channels import _approve
from tests.integration.test_extra_captures import _until_confirmed


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _snapshot(live: Live, order: dict[str, Any]) -> tuple[Any, ...]:
    current = await live.order(order)
    payments = await live.payments(order)
    return current["status_version"], [
        (p["id"], p["status"], p["status_version"]) for p in payments
    ]


async def test_another_orders_secret_can_neither_read_pay_cancel_nor_subscribe(live: Live) -> None:
    order = await live.create_order()
    payment = (await live.apply(order)).json()
    intruder = await live.create_order()
    before = await _snapshot(live, order)
    calls_before = len(live.sandbox.calls())
    stranger = _bearer(intruder["client_secret"]) | {"Idempotency-Key": "k-1"}

    answers = {
        "read order": await live.http.get(f"/api/orders/{order['id']}", headers=stranger),
        "list payments": await live.http.get(
            f"/api/orders/{order['id']}/payments", headers=stranger
        ),
        "options": await live.http.get(
            f"/api/orders/{order['id']}/payment-options", headers=stranger
        ),
        "pay": await live.http.post(
            f"/api/orders/{order['id']}/payments",
            json={"channel": "wechat", "platform": "pc"},
            headers=stranger,
        ),
        "read payment": await live.http.get(f"/api/payments/{payment['id']}", headers=stranger),
        "qr": await live.http.get(f"/api/payments/{payment['id']}/qr.svg", headers=stranger),
        "cancel": await live.http.post(f"/api/payments/{payment['id']}/cancel", headers=stranger),
    }
    codes = {name: (a.status_code, a.json()["code"]) for name, a in answers.items()}
    assert codes == {
        "read order": (404, "order_not_found"),
        "list payments": (404, "order_not_found"),
        "options": (404, "order_not_found"),
        "pay": (404, "order_not_found"),
        "read payment": (404, "payment_not_found"),
        "qr": (404, "payment_not_found"),
        "cancel": (404, "payment_not_found"),
    }
    for answer in answers.values():  # "not found" names nothing of the order it hides
        assert order["id"] not in answer.text
        assert payment["out_trade_no"] not in answer.text

    base = live.url.replace("http", "ws") + f"/api/orders/{order['id']}/events"
    with pytest.raises(InvalidStatus) as refused:
        async with websockets.connect(f"{base}?client_secret={intruder['client_secret']}"):
            pass
    assert refused.value.response.status_code == 403

    assert await _snapshot(live, order) == before
    assert len(live.sandbox.calls()) == calls_before  # no provider call was made for it
    # The intruder's secret still works for its own order: it was refused, not broken.
    own = await live.http.get(f"/api/orders/{intruder['id']}", headers=stranger)
    assert own.status_code == 200


async def _extra_capture(live: Live) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """An order paid by PayPal whose Boleto voucher was paid too: an extra capture, PAID and
    not applied, whose refund the relay has not made yet."""
    order = await live.create_order(currency="BRL")
    voucher = (await live.apply(order, "boleto", "pc")).json()
    paypal = (await live.apply(order, "paypal", "pc")).json()
    await _approve(live, paypal["action"]["redirect_url"])
    paid = await live.wallet("pay", voucher["action"]["digitable_line"])
    assert paid.status_code == 200, paid.text
    await _until_confirmed(live, voucher["out_trade_no"])
    await live.sandbox.deliver_due()
    listed = {p["id"]: p for p in await live.payments(order)}
    assert (listed[voucher["id"]]["status"], listed[voucher["id"]]["applied"]) == ("PAID", False)
    return order, voucher, paypal


async def test_the_admin_calls_refuse_the_api_key_and_the_client_secret(live: Live) -> None:
    order, extra, applied = await _extra_capture(live)
    [event] = [
        e for e in await outbox.browse(live.container.storage, undelivered_only=False, limit=50)
    ][:1]
    calls: dict[str, tuple[str, str, dict[str, Any] | None]] = {
        "refund": ("POST", f"/api/admin/payments/{extra['id']}/refund", {}),
        "replay": ("POST", f"/api/admin/outbox/{event.event.id}/replay", {}),
        "reconcile": ("POST", "/api/admin/reconcile", {"channel": "paypal", "date": "2026-01-01"}),
        "metrics": ("GET", "/metrics", None),
    }
    ledger_before = [(m.kind, m.amount) for m in live.sandbox.ledger()]
    for name, (method, path, body) in calls.items():
        for who, headers in (
            ("api key", live.backend),
            ("client_secret", _bearer(order["client_secret"])),
            ("nobody", {}),
            ("a made-up key", _bearer("ak_" + "x" * 40)),
        ):
            answer = await live.http.request(method, path, json=body, headers=headers)
            expected = (
                (403, "forbidden")
                if who in ("api key", "client_secret")
                else (
                    401,
                    "unauthorized",
                )
            )
            assert (answer.status_code, answer.json()["code"]) == expected, (name, who)
    assert [(m.kind, m.amount) for m in live.sandbox.ledger()] == ledger_before
    listed = {p["id"]: p["status"] for p in await live.payments(order)}
    assert listed[extra["id"]] == "PAID"  # nothing was refunded

    # The admin key does each of them.
    refused = await live.http.post(
        f"/api/admin/payments/{applied['id']}/refund", json={}, headers=live.admin
    )
    assert (refused.status_code, refused.json()["code"]) == (409, "payment_not_refundable")
    refunded = await live.http.post(
        f"/api/admin/payments/{extra['id']}/refund", json={}, headers=live.admin
    )
    assert (refunded.status_code, refunded.json()["status"]) == (200, "REFUNDED"), refunded.text
    again = await live.http.post(
        f"/api/admin/payments/{extra['id']}/refund", json={}, headers=live.admin
    )
    assert (again.status_code, again.json()["status"]) == (200, "REFUNDED")
    refunds = [m for m in live.sandbox.ledger(extra["out_trade_no"]) if m.kind == "refund"]
    assert [m.amount for m in refunds] == [extra["amount"]]  # once, whatever was asked
    replayed = await live.http.post(
        f"/api/admin/outbox/{event.event.id}/replay", json={}, headers=live.admin
    )
    assert replayed.json() == {"event_id": event.event.id, "consumer": None, "replayed": True}
    unknown = await live.http.post(
        "/api/admin/outbox/evt_nosuchevent/replay", json={}, headers=live.admin
    )
    assert (unknown.status_code, unknown.json()["code"]) == (404, "event_not_found")
    no_consumer = await live.http.post(
        f"/api/admin/outbox/{event.event.id}/replay",
        json={"consumer": "nobody"},
        headers=live.admin,
    )
    assert (no_consumer.status_code, no_consumer.json()["code"]) == (422, "invalid_request")
    yesterday = (live.clock.now() - timedelta(days=1)).date().isoformat()
    reconciled = await live.http.post(
        "/api/admin/reconcile",
        json={"channel": "boleto", "date": yesterday, "repair": False},
        headers=live.admin,
    )
    assert reconciled.status_code == 200, reconciled.text
    assert reconciled.json()["day"] == yesterday
    for day in ("0088-05-14", (live.clock.now() + timedelta(days=2)).date().isoformat()):
        refused = await live.http.post(
            "/api/admin/reconcile", json={"channel": "boleto", "date": day}, headers=live.admin
        )
        assert (refused.status_code, refused.json()["code"]) == (422, "invalid_request"), day
    metrics = await live.http.get("/metrics", headers=live.admin)
    assert metrics.status_code == 200
    assert 'payonce_extra_captures_refunded_total{channel="boleto"} 1.0' in metrics.text
    # No metric names an order or a payment: their series stay few.
    assert "ord_" not in metrics.text
    assert "pay_" not in metrics.text


async def test_the_admin_key_opens_no_order(live: Live) -> None:
    order = await live.create_order()
    for method, path, body in (
        ("POST", "/api/orders", {"customer_id": "c", "currency": "CNY", "lines": []}),
        ("GET", f"/api/orders/{order['id']}", None),
        ("POST", f"/api/orders/{order['id']}/payments", {"channel": "alipay", "platform": "pc"}),
    ):
        answer = await live.http.request(
            method, path, json=body, headers=live.admin | {"Idempotency-Key": "k"}
        )
        assert (answer.status_code, answer.json()["code"]) == (403, "forbidden"), path
    assert await live.payments(order) == []


async def test_while_a_key_is_rotated_both_work_and_no_other(start_live: LiveFactory) -> None:
    live = await start_live(api_key=f"sk_new_one, {API_KEY}")
    cart = {"customer_id": "c", "currency": "CNY", "lines": [{"sku": "S", "name": "T",
            "quantity": 1, "unit_amount": 100}]}  # fmt: skip
    for key, status in (("sk_new_one", 201), (API_KEY, 201), ("sk_other", 401), ("-", 401)):
        answer = await live.http.post("/api/orders", json=cart, headers=_bearer(key))
        assert answer.status_code == status, key


async def test_a_page_of_another_site_cannot_open_an_orders_events(
    start_live: LiveFactory,
) -> None:
    live = await start_live(allowed_origins=["https://shop.example"])
    order = await live.create_order()
    url = live.url.replace("http", "ws") + f"/api/orders/{order['id']}/events"
    url += f"?client_secret={order['client_secret']}"
    with pytest.raises(InvalidStatus) as refused:
        async with websockets.connect(url, origin="https://evil.example"):  # type: ignore[arg-type]
            pass
    assert refused.value.response.status_code == 403
    for origin in (live.url, "https://shop.example", None):
        async with websockets.connect(url, origin=origin) as ws:  # type: ignore[arg-type]
            assert '"status":"UNPAID"' in await ws.recv()
