"""Strict, bounded input: every malformed, oversize or unknown value is refused as problem+json
with its code, and none of them creates an order, a payment or a provider trade."""

from __future__ import annotations

import sqlite3
import uuid
from typing import Any

import pytest

from payonce.domain.money import MAX_MINOR_AMOUNT, ORDER_CURRENCIES
from payonce.entrypoints.web.problems import MAX_BODY_BYTES
from tests.integration.conftest import CART, Live

PROBLEM = "application/problem+json"
LINE = CART[0]


def _order(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"customer_id": "c-42", "currency": "CNY", "lines": [dict(LINE)]}
    body.update(changes)
    return body


def _line(**changes: Any) -> dict[str, Any]:
    return _order(lines=[{**LINE, **changes}])


def _rows(live: Live, table: str) -> int:
    path = live.container.settings.data_dir / "payonce.db"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        (count,) = db.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608
    return int(count)


def _refused(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert (body["status"], body["code"], body["type"]) == (status, code, "about:blank")
    return body


BAD_ORDERS: dict[str, tuple[dict[str, Any], list[Any]]] = {
    "customer_id too long": (_order(customer_id="c" * 129), ["body", "customer_id"]),
    "customer_id empty": (_order(customer_id="  "), ["body", "customer_id"]),
    "customer_id with a NUL": (_order(customer_id="c\x00"), ["body", "customer_id"]),
    "sku too long": (_line(sku="S" * 65), ["body", "lines", 0, "sku"]),
    "name too long": (_line(name="n" * 201), ["body", "lines", 0, "name"]),
    "name with a newline": (_line(name="Tea\nCup"), ["body", "lines", 0, "name"]),
    "no lines": (_order(lines=[]), ["body", "lines"]),
    "too many lines": (_order(lines=[LINE] * 101), ["body", "lines"]),
    "negative unit amount": (_line(unit_amount=-1), ["body", "lines", 0, "unit_amount"]),
    "huge unit amount": (
        _line(unit_amount=MAX_MINOR_AMOUNT + 1),
        ["body", "lines", 0, "unit_amount"],
    ),
    "unit amount past 64 bits": (_line(unit_amount=2**64), ["body", "lines", 0, "unit_amount"]),
    "fractional unit amount": (_line(unit_amount=19.99), ["body", "lines", 0, "unit_amount"]),
    "amount as a string": (_line(unit_amount="1999"), ["body", "lines", 0, "unit_amount"]),
    "zero quantity": (_line(quantity=0), ["body", "lines", 0, "quantity"]),
    "negative quantity": (_line(quantity=-2), ["body", "lines", 0, "quantity"]),
    "huge quantity": (_line(quantity=10_001), ["body", "lines", 0, "quantity"]),
    "unknown currency": (_order(currency="XXX"), ["body", "currency"]),
    "currency no channel takes": (_order(currency="JPY"), ["body", "currency"]),
    "lower-case currency": (_order(currency="cny"), ["body", "currency"]),
    "an amount from the caller": (_order(amount=1), ["body", "amount"]),
    "a line total from the caller": (_line(line_amount=1), ["body", "lines", 0, "line_amount"]),
    "an unknown field": (_order(coupon="FREE"), ["body", "coupon"]),
}


async def test_malformed_orders_are_refused_and_none_is_created(live: Live) -> None:
    for case, (body, loc) in BAD_ORDERS.items():
        response = await live.http.post("/api/orders", json=body, headers=live.backend)
        refused = _refused(response, 422, "invalid_request")
        assert [e["loc"] for e in refused["errors"]] == [loc], case
    # Every field within bounds, but a total Money refuses: 422, never an overflow or a 500.
    total = _order(lines=[{**LINE, "quantity": 10_000, "unit_amount": MAX_MINOR_AMOUNT}] * 100)
    response = await live.http.post("/api/orders", json=total, headers=live.backend)
    assert "out of range" in _refused(response, 422, "invalid_request")["detail"]
    assert _rows(live, "orders") == 0


async def test_bodies_that_are_not_json_are_refused(live: Live) -> None:
    for content, content_type in [
        (b"not json", "application/json"),
        (b'{"customer_id": "c-42",', "application/json"),
        (b"\xff\xfe\x00", "application/json"),
        (b"customer_id=c-42", "application/x-www-form-urlencoded"),
        (b"[]", "application/json"),
        (b"", "application/json"),
    ]:
        response = await live.http.post(
            "/api/orders",
            content=content,
            headers={**live.backend, "Content-Type": content_type},
        )
        _refused(response, 422, "invalid_request")
    assert _rows(live, "orders") == 0


async def test_lone_surrogates_are_a_422_not_a_500(live: Live) -> None:
    """Valid JSON, but no UTF-8 text: nothing of it may reach a column or an echoed refusal."""
    for content in (
        b'{"customer_id": "c-42", "currency": "CNY", "lines": [], "\\ud800": 1}',
        b'{"customer_id": "c\\udfff", "currency": "CNY", "lines": [{"sku": "S", "name": "T",'
        b' "quantity": 1, "unit_amount": 1}]}',
    ):
        response = await live.http.post(
            "/api/orders",
            content=content,
            headers={**live.backend, "Content-Type": "application/json"},
        )
        _refused(response, 422, "invalid_request")
    assert _rows(live, "orders") == 0


async def test_a_body_over_the_limit_is_refused_before_it_is_read(live: Live) -> None:
    padding = "x" * MAX_BODY_BYTES
    response = await live.http.post(
        "/api/orders", json=_order(customer_id=padding), headers=live.backend
    )
    assert "at most 262144 bytes" in _refused(response, 413, "body_too_large")["detail"]

    async def chunks() -> Any:  # no Content-Length: counted as it arrives
        for _ in range(5):
            yield b"x" * (MAX_BODY_BYTES // 4)

    streamed = await live.http.post("/api/orders", content=chunks(), headers=live.backend)
    _refused(streamed, 413, "body_too_large")
    assert _rows(live, "orders") == 0
    # A valid order of the most lines with the longest names fits well within it.
    largest = _order(lines=[{**LINE, "sku": "S" * 64, "name": "茶" * 200}] * 100)
    response = await live.http.post("/api/orders", json=largest, headers=live.backend)
    assert response.status_code == 201, response.text


async def test_unknown_channels_platforms_and_fields_open_no_payment(live: Live) -> None:
    order = await live.create_order()
    shopper = {"Authorization": f"Bearer {order['client_secret']}"}
    path = f"/api/orders/{order['id']}/payments"
    refusals: list[tuple[dict[str, Any], str]] = [
        ({"channel": "bitcoin", "platform": "pc"}, "channel_unsupported"),
        ({"channel": "ALIPAY", "platform": "pc"}, "channel_unsupported"),
        ({"channel": 7, "platform": "pc"}, "channel_unsupported"),
        ({"channel": "alipay", "platform": "tv"}, "invalid_request"),
        ({"channel": "alipay"}, "invalid_request"),
        ({"channel": "alipay", "platform": "pc", "amount": 1}, "invalid_request"),
        ({"channel": "bitcoin", "platform": "tv"}, "invalid_request"),
        ({"channel": "boleto", "platform": "pc"}, "channel_unsupported"),  # not for CNY
    ]
    for body, code in refusals:
        response = await live.http.post(
            path, json=body, headers={**shopper, "Idempotency-Key": str(uuid.uuid4())}
        )
        _refused(response, 422, code)
    response = await live.http.post(
        path,
        content=b"channel=alipay&platform=pc",
        headers={
            **shopper,
            "Idempotency-Key": str(uuid.uuid4()),
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    _refused(response, 422, "invalid_request")
    assert await live.payments(order) == []
    assert _rows(live, "payments") == 0
    assert await live.sandbox_trades() == []


async def test_unknown_channel_notifications_are_refused(live: Live) -> None:
    response = await live.http.post("/api/notify/bitcoin", content=b"trade_status=TRADE_SUCCESS")
    _refused(response, 422, "channel_unsupported")


@pytest.mark.parametrize(
    "path",
    [
        "/api/orders/" + "o" * 41,
        "/api/orders/ord%00x",
        "/api/orders/ord%20x/payments",
        "/api/orders/ord-x/payment-options",
        "/api/payments/" + "p" * 41,
        "/api/payments/pay%0Ax/qr.svg",
    ],
)
async def test_malformed_ids_are_refused_as_invalid(live: Live, path: str) -> None:
    response = await live.http.get(path, headers=live.backend)
    body = _refused(response, 422, "invalid_request")
    assert body["errors"][0]["loc"][0] == "path"


async def test_idempotency_keys_are_bounded(live: Live) -> None:
    order = await live.create_order()
    for key in ("k" * 256, ""):
        response = await live.http.post(
            f"/api/orders/{order['id']}/payments",
            json={"channel": "alipay", "platform": "pc"},
            headers={**live.backend, "Idempotency-Key": key},
        )
        body = _refused(response, 422, "invalid_request")
        assert body["errors"][0]["loc"] == ["header", "Idempotency-Key"]
    assert _rows(live, "payments") == 0


async def test_every_order_currency_has_a_channel(live: Live) -> None:
    """The whitelist is exactly what the channels take: no currency an order cannot be paid in."""
    for currency in sorted(ORDER_CURRENCIES):
        order = await live.create_order(currency=currency)
        options = await live.http.get(
            f"/api/orders/{order['id']}/payment-options", headers=live.backend
        )
        assert options.json()["options"], currency
