"""Paying in the wallet reaches the order exactly once; forged notifications change nothing."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
import websockets

from payonce.domain.events import Topic
from payonce.sandbox.credentials import AlipayCredentials
from payonce.sandbox.signing import (
    NOTIFICATION_UNSIGNED_KEYS,
    load_private_key,
    sign_rsa2,
    unsigned_string,
)
from payonce.service import outbox
from tests.integration.conftest import Live

FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}


async def _paying(live: Live) -> tuple[dict[str, Any], dict[str, Any]]:
    order = await live.create_order()
    payment = (await live.apply(order)).json()
    return order, payment


async def _state(live: Live, order: dict[str, Any]) -> tuple[Any, ...]:
    """Everything a notification could change, to compare before and after."""
    current = await live.order(order)
    payments = await live.payments(order)
    return (
        current["status"],
        current["status_version"],
        [(p["status"], p["status_version"], p["applied"]) for p in payments],
    )


async def test_paying_in_the_wallet_makes_the_order_ready_and_the_socket_sees_it(
    live: Live,
) -> None:
    order, payment = await _paying(live)
    socket_url = live.url.replace("http", "ws") + f"/api/orders/{order['id']}/events"
    async with websockets.connect(f"{socket_url}?client_secret={order['client_secret']}") as ws:
        first = json.loads(await ws.recv())
        assert first["status"] == "UNPAID"
        assert first["payment"]["id"] == payment["id"]

        assert (await live.wallet("pay", payment["action"]["qr_code"])).status_code == 200
        assert await live.sandbox.deliver_due() == 1

        seen = [first]
        while seen[-1]["status"] != "READY_FOR_SHIPMENT":
            seen.append(json.loads(await ws.recv()))
    versions = [m["status_version"] for m in seen]
    assert versions == sorted(set(versions))  # strictly increasing: no stale news
    assert seen[-1]["paid_payment_id"] == payment["id"]

    final = await live.order(order)
    assert final["status"] == "READY_FOR_SHIPMENT"
    assert final["paid_payment_id"] == payment["id"]
    [paid] = await live.payments(order)
    assert (paid["status"], paid["applied"]) == ("PAID", True)
    [delivery] = live.sandbox.deliveries()
    assert delivery.ok  # acknowledged with "success", after the commit
    captures = [(m.kind, m.amount) for m in live.sandbox.ledger()]
    assert captures == [("capture", 3998)]


async def test_the_same_notification_delivered_three_times_is_applied_once(live: Live) -> None:
    order, payment = await _paying(live)
    await live.wallet("pay", payment["action"]["qr_code"])
    await live.sandbox.deliver_due()
    after_first = await _state(live, order)
    [delivery] = live.sandbox.deliveries()
    for _ in range(2):
        again = await live.http.post("/api/notify/alipay", content=delivery.raw, headers=FORM)
        assert (again.status_code, again.text) == (200, "success")
    assert await _state(live, order) == after_first
    deps = live.container.deps
    written = await outbox.browse(deps.storage, undelivered_only=False, order_id=order["id"])
    async with deps.storage.transaction() as uow:
        stored = await uow.payments.for_order(order["id"])
    # One payment.succeeded, taken by the order inbox; no second event was written.
    assert [(e.event.topic, "orders" in e.acknowledged_by) for e in written] == [
        (Topic.PAYMENT_SUCCEEDED, True)
    ]
    assert [(p.status.value, p.applied) for p in stored] == [("PAID", True)]
    assert [m.kind for m in live.sandbox.ledger()] == ["capture"]


def _signed(live: Live, fields: dict[str, str]) -> bytes:
    """A notification signed with the provider's real key: only our own checks can stop it."""
    creds = AlipayCredentials.load_or_create(
        live.container.settings.data_dir / "sandbox" / "alipay.json"
    )
    key = load_private_key(creds.alipay_private_key_pem)
    form = dict(fields)
    form.pop("sign", None)
    form["sign"] = sign_rsa2(key, unsigned_string(form, exclude=NOTIFICATION_UNSIGNED_KEYS))
    return urlencode(form).encode()


def _genuine_fields(live: Live, order: dict[str, Any], payment: dict[str, Any]) -> dict[str, str]:
    creds = AlipayCredentials.load_or_create(
        live.container.settings.data_dir / "sandbox" / "alipay.json"
    )
    return {
        "notify_time": "2026-11-24 16:00:00",
        "notify_type": "trade_status_sync",
        "notify_id": "forged-0001",
        "app_id": creds.app_id,
        "charset": "utf-8",
        "version": "1.0",
        "sign_type": "RSA2",
        "trade_no": "2026112422001400000099999",
        "out_trade_no": payment["out_trade_no"],
        "trade_status": "TRADE_SUCCESS",
        "total_amount": "39.98",
        "seller_id": creds.seller_id,
        "subject": f"Order {order['id']}",
    }


FORGERIES = {
    "bad signature": lambda live, o, p: _tamper_signature(
        _signed(live, _genuine_fields(live, o, p))
    ),
    "changed amount, re-signed": lambda live, o, p: _signed(
        live, {**_genuine_fields(live, o, p), "total_amount": "0.01"}
    ),
    "changed amount, original signature": lambda live, o, p: _swap(
        _signed(live, _genuine_fields(live, o, p)), "total_amount", "0.01"
    ),
    "another app id": lambda live, o, p: _signed(
        live, {**_genuine_fields(live, o, p), "app_id": "2021009999999999"}
    ),
    "another seller": lambda live, o, p: _signed(
        live, {**_genuine_fields(live, o, p), "seller_id": "2088999999999999"}
    ),
    "unknown trade": lambda live, o, p: _signed(
        live, {**_genuine_fields(live, o, p), "out_trade_no": "PONOTOURS"}
    ),
    "unsigned": lambda live, o, p: urlencode(_genuine_fields(live, o, p)).encode(),
    "other currency": lambda live, o, p: _signed(
        live, {**_genuine_fields(live, o, p), "trans_currency": "USD"}
    ),
    "garbage": lambda live, o, p: b"\xff\xfe not a form",
}


def _tamper_signature(body: bytes) -> bytes:
    form = dict(parse_qsl(body.decode()))
    sign = form["sign"]
    form["sign"] = ("A" if sign[0] != "A" else "B") + sign[1:]
    return urlencode(form).encode()


def _swap(body: bytes, field: str, value: str) -> bytes:
    form = dict(parse_qsl(body.decode()))
    form[field] = value
    return urlencode(form).encode()


@pytest.mark.parametrize("kind", sorted(FORGERIES))
async def test_a_forged_notification_changes_nothing_and_is_answered_with_an_error(
    live: Live, kind: str
) -> None:
    order, payment = await _paying(live)
    before = await _state(live, order)
    body = FORGERIES[kind](live, order, payment)
    response = await live.http.post("/api/notify/alipay", content=body, headers=FORM)
    assert response.status_code == 400
    assert response.text == "fail"
    assert await _state(live, order) == before
    async with live.container.deps.storage.transaction() as uow:
        # Not even its notification id was kept: a genuine one with that id would still count.
        assert await uow.notifications.record(
            "alipay", "forged-0001", payment_id=payment["id"], now=live.clock.now()
        )


async def test_the_genuine_twin_of_the_forgeries_is_accepted(live: Live) -> None:
    """The forgery tests prove something only if the same notification, unforged, is applied."""
    order, payment = await _paying(live)
    body = _signed(live, _genuine_fields(live, order, payment))
    response = await live.http.post("/api/notify/alipay", content=body, headers=FORM)
    assert (response.status_code, response.text) == (200, "success")
    assert (await live.order(order))["status"] == "READY_FOR_SHIPMENT"


async def test_an_oversized_notification_is_refused_unread(live: Live) -> None:
    response = await live.http.post(
        "/api/notify/alipay", content=b"a=" + b"x" * 70_000, headers=FORM
    )
    assert response.status_code == 413


async def test_a_notify_id_seen_for_another_trade_is_not_mistaken_for_a_repeat(
    live: Live,
) -> None:
    """Regression: a restarted sandbox reissued an id; the second payment was acked, not applied.

    A notification id only deduplicates deliveries of the same trade's news: an authentic,
    matching notification is never dropped because another trade used its id.
    """
    first_order, first = await _paying(live)
    second_order, second = await _paying(live)
    for order, payment, trade_no in (
        (first_order, first, "2026112422001000000000000001"),
        (second_order, second, "2026112422001000000000000002"),
    ):
        fields = {
            **_genuine_fields(live, order, payment),
            "notify_id": "reused-id",
            "trade_no": trade_no,
        }
        response = await live.http.post(
            "/api/notify/alipay", content=_signed(live, fields), headers=FORM
        )
        assert (response.status_code, response.text) == (200, "success")
    assert (await live.order(first_order))["status"] == "READY_FOR_SHIPMENT"
    assert (await live.order(second_order))["status"] == "READY_FOR_SHIPMENT"


async def test_a_verified_notification_that_contradicts_our_record_is_kept_then_acknowledged(
    live: Live,
) -> None:
    order, payment = await _paying(live)
    await live.wallet("pay", payment["action"]["qr_code"])
    await live.sandbox.deliver_due()
    paid = await _state(live, order)
    # Genuine, but it says the paid trade closed (a refund made outside payonce, say).
    fields = {**_genuine_fields(live, order, payment), "notify_id": "closed-1"}
    fields["trade_status"] = "TRADE_CLOSED"
    response = await live.http.post(
        "/api/notify/alipay", content=_signed(live, fields), headers=FORM
    )
    assert (response.status_code, response.text) == (200, "success")
    assert await _state(live, order) == paid  # a paid order never goes back
    async with live.container.deps.storage.transaction() as uow:
        note = await uow.notifications.note_of("alipay", "closed-1")
    assert note is not None
    assert note.startswith("conflict: payment: PAID -> CLOSED")
