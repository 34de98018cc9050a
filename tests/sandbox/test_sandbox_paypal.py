"""PayPal's REST wire format in the sandbox, its quirks, the approval page, records and faults."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from paypal_merchant import CANCEL_URL, RETURN_URL, Merchant, link
from sandbox_harness import START, Env

from payonce.sandbox import FaultSettings

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _approved(env: Env, merchant: Merchant, number: str, value: str = "12.34") -> str:
    order = await merchant.created(number, value)
    assert (await env.wallet("pay", link(order, "payer-action"))).status_code == 200
    return str(order["id"])


async def _captured(env: Env, merchant: Merchant, number: str, value: str = "12.34") -> str:
    order_id = await _approved(env, merchant, number, value)
    captured = await merchant.capture(order_id, f"cap-{number}")
    assert captured.status_code == 201, captured.text
    return str(captured.json()["purchase_units"][0]["payments"]["captures"][0]["id"])


# -- OAuth ----------------------------------------------------------------------------------


async def test_client_credentials_give_a_nine_hour_bearer_token(
    env: Env, merchant: Merchant
) -> None:
    answer = await merchant.fetch_token()
    assert answer.status_code == 200
    body = answer.json()
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 32400)
    assert body["access_token"].startswith("A21AA")
    merchant.token = body["access_token"]
    assert (await merchant.create("t_1")).status_code == 201

    env.clock.advance(timedelta(hours=9))
    expired = await merchant.create("t_2")
    assert expired.status_code == 401
    assert expired.json()["name"] == "AUTHENTICATION_FAILURE"
    assert set(expired.json()) == {"name", "message", "debug_id", "links"}


async def test_bad_client_credentials_and_bad_tokens_are_refused(
    env: Env, merchant: Merchant
) -> None:
    wrong = await env.http.post(
        f"{merchant.base}/v1/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(merchant.credentials.client_id, "not-the-secret"),
    )
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_client")
    grant = await env.http.post(
        f"{merchant.base}/v1/oauth2/token",
        data={"grant_type": "password"},
        auth=(merchant.credentials.client_id, merchant.credentials.client_secret),
    )
    assert (grant.status_code, grant.json()["error"]) == (400, "unsupported_grant_type")
    merchant.token = "A21AAforged"
    assert (await merchant.create("t_3")).status_code == 401
    assert env.sandbox.trades(channel="paypal") == []


# -- orders ---------------------------------------------------------------------------------


async def test_create_answers_201_with_the_payer_action_link(env: Env, merchant: Merchant) -> None:
    order = await merchant.created("o_1", "12.34")
    assert order["status"] == "PAYER_ACTION_REQUIRED"
    assert order["intent"] == "CAPTURE"
    (unit,) = order["purchase_units"]
    assert unit["amount"] == {"currency_code": "USD", "value": "12.34"}
    assert (unit["reference_id"], unit["custom_id"], unit["invoice_id"]) == ("o_1",) * 3
    assert unit["payee"] == {"merchant_id": merchant.credentials.merchant_id}
    assert order["create_time"] == "2026-11-24T02:00:00Z"
    assert link(order, "payer-action") == f"{env.url}/paypal/checkoutnow?token={order['id']}"
    assert link(order, "self") == f"{env.url}/paypal/v2/checkout/orders/{order['id']}"
    assert len(order["id"]) == 17
    assert order["id"].isalnum()

    classic = await merchant.created("o_2", style="application_context")
    assert classic["status"] == "CREATED"
    assert link(classic, "approve").endswith(f"/paypal/checkoutnow?token={classic['id']}")

    minimal = await merchant.create("o_3", minimal=True)
    assert (minimal.status_code, sorted(minimal.json())) == (201, ["id", "links", "status"])


async def test_the_same_request_id_answers_the_same_order_as_it_is_now(
    env: Env, merchant: Merchant
) -> None:
    first = await merchant.created("o_4", request_id="req-o_4")
    again = await merchant.create("o_4", request_id="req-o_4")
    assert (again.status_code, again.json()["id"]) == (200, first["id"])
    await env.wallet("pay", link(first, "payer-action"))
    # Even a body without purchase units replays: the request id alone finds the order.
    replay = await merchant.call(
        "POST", "/v2/checkout/orders", {"intent": "CAPTURE"}, request_id="req-o_4"
    )
    assert (replay.status_code, replay.json()["id"]) == (200, first["id"])
    assert replay.json()["status"] == "APPROVED"
    assert link(replay.json(), "capture").endswith(f"/orders/{first['id']}/capture")
    assert [t.out_trade_no for t in env.sandbox.trades(channel="paypal")] == ["o_4"]

    # A new request id is a new order; PayPal forgets a create's id after six hours.
    other = await merchant.create("o_4", request_id="req-o_4-b")
    assert other.status_code == 201
    assert other.json()["id"] != first["id"]
    env.clock.advance(timedelta(hours=6))
    forgotten = await merchant.call(
        "POST", "/v2/checkout/orders", {"intent": "CAPTURE"}, request_id="req-o_4"
    )
    assert forgotten.status_code == 400
    assert forgotten.json()["details"][0]["issue"] == "MISSING_REQUIRED_PARAMETER"


@pytest.mark.parametrize(
    ("body", "status", "issue"),
    [
        ({"intent": "CAPTURE"}, 400, "MISSING_REQUIRED_PARAMETER"),
        ({"intent": "AUTHORIZE", "purchase_units": [{}]}, 400, "INVALID_PARAMETER_VALUE"),
        (
            {"intent": "CAPTURE", "purchase_units": [{"amount": {"currency_code": "CLP"}}]},
            422,
            "CURRENCY_NOT_SUPPORTED",
        ),
        (
            {
                "intent": "CAPTURE",
                "purchase_units": [{"amount": {"currency_code": "JPY", "value": "12.34"}}],
            },
            422,
            "DECIMAL_PRECISION",
        ),
        (
            {
                "intent": "CAPTURE",
                "purchase_units": [{"amount": {"currency_code": "USD", "value": "12,34"}}],
            },
            400,
            "INVALID_PARAMETER_SYNTAX",
        ),
    ],
)
async def test_invalid_orders_are_refused_in_paypals_error_shape(
    merchant: Merchant, body: dict[str, object], status: int, issue: str
) -> None:
    answer = await merchant.call("POST", "/v2/checkout/orders", body, request_id="bad")
    assert answer.status_code == status
    error = answer.json()
    assert error["name"] == ("INVALID_REQUEST" if status == 400 else "UNPROCESSABLE_ENTITY")
    assert error["details"][0]["issue"] == issue
    assert len(error["debug_id"]) == 13
    assert error["message"]


async def test_capture_once_after_approval(env: Env, merchant: Merchant) -> None:
    order = await merchant.created("c_1")
    early = await merchant.capture(order["id"], "cap-1")
    assert (early.status_code, early.json()["details"][0]["issue"]) == (422, "ORDER_NOT_APPROVED")
    await env.wallet("pay", link(order, "payer-action"))

    captured = await merchant.capture(order["id"], "cap-1")
    assert captured.status_code == 201
    body = captured.json()
    assert body["status"] == "COMPLETED"
    assert body["payer"]["payer_id"] == "QYR5Z8XDVJNXQ"
    (capture,) = body["purchase_units"][0]["payments"]["captures"]
    assert (capture["status"], capture["amount"]) == (
        "COMPLETED",
        {"currency_code": "USD", "value": "12.34"},
    )
    assert (capture["custom_id"], capture["invoice_id"]) == ("c_1", "c_1")
    assert capture["supplementary_data"] == {"related_ids": {"order_id": order["id"]}}

    replay = await merchant.capture(order["id"], "cap-1")
    assert replay.status_code == 200
    assert replay.json()["purchase_units"][0]["payments"]["captures"][0]["id"] == capture["id"]
    second = await merchant.capture(order["id"], "cap-2")
    assert (second.status_code, second.json()["details"][0]["issue"]) == (
        422,
        "ORDER_ALREADY_CAPTURED",
    )
    assert [(m.kind, m.amount, m.trade_no, m.reference) for m in env.sandbox.ledger("c_1")] == [
        ("capture", 1234, order["id"], capture["id"])
    ]
    got = await merchant.call("GET", f"/v2/payments/captures/{capture['id']}")
    assert (got.status_code, got.json()["status"]) == (200, "COMPLETED")


async def test_one_completed_payment_per_invoice_id(env: Env, merchant: Merchant) -> None:
    await _captured(env, merchant, "c_2")
    twin = await merchant.created("c_2", request_id="another-request")
    await env.wallet("pay", link(twin, "payer-action"))
    refused = await merchant.capture(twin["id"], "cap-twin")
    assert refused.json()["details"][0]["issue"] == "DUPLICATE_INVOICE_ID"
    assert [m.kind for m in env.sandbox.ledger("c_2")] == ["capture"]


async def test_an_order_expires_three_hours_after_create(env: Env, merchant: Merchant) -> None:
    unapproved = await merchant.created("x_1")
    approved = await merchant.created("x_2")
    await env.wallet("pay", link(approved, "payer-action"))
    env.clock.advance(timedelta(hours=3) - timedelta(seconds=1))
    assert (await merchant.call("GET", f"/v2/checkout/orders/{unapproved['id']}")).json()[
        "status"
    ] == "PAYER_ACTION_REQUIRED"
    env.clock.advance(timedelta(seconds=1))
    late = await env.wallet("pay", link(unapproved, "payer-action"))
    assert (late.status_code, late.json()["code"]) == (409, "order_expired")
    voided = await merchant.call("GET", f"/v2/checkout/orders/{unapproved['id']}")
    assert voided.json()["status"] == "VOIDED"
    assert [item["rel"] for item in voided.json()["links"]] == ["self"]
    too_late = await merchant.capture(approved["id"], "cap-x")
    assert too_late.json()["details"][0]["issue"] == "ORDER_EXPIRED"
    trades = {t.out_trade_no: t for t in env.sandbox.trades(channel="paypal")}
    assert (trades["x_1"].status, trades["x_1"].closed_at) == ("VOIDED", START + timedelta(hours=3))
    assert env.sandbox.ledger() == []


async def test_refunds_partial_and_full_once_per_request_id(env: Env, merchant: Merchant) -> None:
    capture_id = await _captured(env, merchant, "r_1", "10.00")
    part = await merchant.refund(capture_id, "4.00", "rf-a")
    assert part.status_code == 201
    refund = part.json()
    assert (refund["status"], refund["amount"]["value"], refund["invoice_id"]) == (
        "COMPLETED",
        "4.00",
        "r_1",
    )
    assert link(refund, "up").endswith(f"/v2/payments/captures/{capture_id}")
    again = await merchant.refund(capture_id, "4.00", "rf-a")
    assert (again.status_code, again.json()["id"]) == (200, refund["id"])
    capture = (await merchant.call("GET", f"/v2/payments/captures/{capture_id}")).json()
    assert capture["status"] == "PARTIALLY_REFUNDED"

    over = await merchant.refund(capture_id, "6.01", "rf-b")
    assert over.json()["details"][0]["issue"] == "REFUND_AMOUNT_EXCEEDED"
    rest = await merchant.refund(capture_id, None, "rf-c")  # no amount: the rest
    assert rest.json()["amount"]["value"] == "6.00"
    done = await merchant.refund(capture_id, "0.01", "rf-d")
    assert done.json()["details"][0]["issue"] == "CAPTURE_FULLY_REFUNDED"
    got = await merchant.call("GET", f"/v2/payments/refunds/{refund['id']}")
    assert (got.status_code, got.json()["amount"]["value"]) == (200, "4.00")
    order = (await merchant.create("r_1")).json()  # the create's request id replays
    assert order["purchase_units"][0]["payments"]["captures"][0]["status"] == "REFUNDED"
    assert [(m.kind, m.amount, m.reference) for m in env.sandbox.ledger("r_1")] == [
        ("capture", 1000, capture_id),
        ("refund", 400, "rf-a"),
        ("refund", 600, "rf-c"),
    ]
    missing = await merchant.call("GET", "/v2/payments/refunds/NOPE")
    assert (missing.status_code, missing.json()["name"]) == (404, "RESOURCE_NOT_FOUND")


# -- the buyer ------------------------------------------------------------------------------


async def test_the_approval_page_approves_and_returns_to_the_merchant(
    env: Env, merchant: Merchant
) -> None:
    order = await merchant.created("a_1", "39.98")
    page = await env.http.get(link(order, "payer-action"))
    assert page.status_code == 200
    assert "39.98" in page.text
    assert "Approve" in page.text
    assert 'action="/sandbox/paypal/checkoutnow/approve"' in page.text
    approved = await env.http.post(
        f"{env.url}/paypal/checkoutnow/approve", data={"token": order["id"]}
    )
    assert approved.status_code == 303
    target = urlsplit(approved.headers["location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == RETURN_URL
    assert parse_qs(target.query) == {"token": [order["id"]], "PayerID": ["QYR5Z8XDVJNXQ"]}
    status = (await merchant.call("GET", f"/v2/checkout/orders/{order['id']}")).json()["status"]
    assert status == "APPROVED"
    twice = await env.http.post(
        f"{env.url}/paypal/checkoutnow/approve", data={"token": order["id"]}
    )
    assert twice.status_code == 409


async def test_cancel_returns_to_the_cancel_url_and_changes_nothing(
    env: Env, merchant: Merchant
) -> None:
    order = await merchant.created("a_2")
    cancelled = await env.http.post(
        f"{env.url}/paypal/checkoutnow/cancel", data={"token": order["id"]}
    )
    assert cancelled.status_code == 303
    assert cancelled.headers["location"] == f"{CANCEL_URL}&token={order['id']}"
    got = await merchant.call("GET", f"/v2/checkout/orders/{order['id']}")
    assert got.json()["status"] == "PAYER_ACTION_REQUIRED"
    unknown = await env.http.get(f"{env.url}/paypal/checkoutnow?token=NOSUCHORDER")
    assert unknown.status_code == 404


async def test_the_wallet_opens_and_approves_the_approve_link(env: Env, merchant: Merchant) -> None:
    order = await merchant.created("w_1")
    code = link(order, "payer-action")
    opened = await env.wallet("scan", code)
    assert opened.status_code == 200
    assert (opened.json()["status"], opened.json()["can_pay"]) == ("PAYER_ACTION_REQUIRED", True)
    paid = await env.wallet("pay", code)
    assert (paid.json()["status"], paid.json()["trade_no"], paid.json()["can_pay"]) == (
        "APPROVED",
        order["id"],
        False,
    )
    assert (paid.json()["out_trade_no"], paid.json()["amount"]) == ("w_1", 1234)
    again = await env.wallet("pay", code)
    assert (again.status_code, again.json()["code"]) == (409, "order_already_approved")
    assert env.sandbox.ledger() == []  # approving moves no money
    page = await env.http.get(f"{env.url}/wallet", params={"code": code})
    assert page.status_code == 200
    assert "APPROVED" in page.text


# -- records --------------------------------------------------------------------------------


async def test_trades_ledger_and_the_pacific_time_statement(env: Env, merchant: Merchant) -> None:
    capture_id = await _captured(env, merchant, "s_1", "20.00")
    await merchant.refund(capture_id, "5.00", "rf-s")
    await merchant.created("s_2")
    listed = (await env.http.get(f"{env.url}/trades", params={"channel": "paypal"})).json()
    assert [
        (t["out_trade_no"], t["status"], t["amount"], t["currency"], t["captured"], t["refunded"])
        for t in listed["trades"]
    ] == [
        ("s_1", "COMPLETED", 2000, "USD", 2000, 500),
        ("s_2", "PAYER_ACTION_REQUIRED", 1234, "USD", 0, 0),
    ]
    # 02:00 UTC on 24 November is 18:00 on the 23rd in Los Angeles.
    statement = await env.http.get(f"{env.url}/paypal/statements/2026-11-23")
    assert statement.headers["content-type"] == "text/csv; charset=utf-8"
    header, *rows = statement.text.splitlines()
    assert header == "at,channel,out_trade_no,trade_no,kind,amount,currency,reference"
    order_id = listed["trades"][0]["trade_no"]
    assert rows == [
        f"2026-11-23 18:00:00,paypal,s_1,{order_id},capture,2000,USD,{capture_id}",
        f"2026-11-23 18:00:00,paypal,s_1,{order_id},refund,500,USD,rf-s",
    ]
    next_day = await env.http.get(f"{env.url}/paypal/statements/2026-11-24")
    assert next_day.text.splitlines()[1:] == []


# -- faults ---------------------------------------------------------------------------------


async def test_a_create_error_creates_nothing(env: Env, merchant: Merchant) -> None:
    await merchant.fetch_token()  # the token endpoint takes no faults
    env.sandbox.set_faults(FaultSettings(create_error_rate=1.0))
    answer = await merchant.create("f_1")
    assert (answer.status_code, answer.json()["name"]) == (500, "INTERNAL_SERVER_ERROR")
    assert env.sandbox.trades(channel="paypal") == []


async def test_a_create_time_out_creates_the_order_and_holds_the_answer(
    env: Env, merchant: Merchant
) -> None:
    await merchant.fetch_token()
    env.sandbox.set_faults(FaultSettings(create_timeout_rate=1.0, timeout_hold_s=2.0))
    with pytest.raises(httpx.ReadTimeout):
        await merchant.call(
            "POST",
            "/v2/checkout/orders",
            {
                "intent": "CAPTURE",
                "purchase_units": [
                    {"invoice_id": "f_2", "amount": {"currency_code": "USD", "value": "1.00"}}
                ],
            },
            request_id="req-f_2",
            patience_s=0.25,
        )
    env.sandbox.set_faults(FaultSettings())
    (trade,) = env.sandbox.trades(channel="paypal")
    replay = await merchant.call(
        "POST", "/v2/checkout/orders", {"intent": "CAPTURE"}, request_id="req-f_2"
    )
    assert (replay.status_code, replay.json()["id"]) == (200, trade.trade_no)
    calls = [(c.method, c.code, c.held) for c in env.sandbox.calls() if c.channel == "paypal"]
    assert calls[-2:] == [
        ("POST /v2/checkout/orders", "201", True),
        ("POST /v2/checkout/orders", "200", False),
    ]


async def test_a_capture_time_out_captures_once(env: Env, merchant: Merchant) -> None:
    order_id = await _approved(env, merchant, "f_3")
    env.sandbox.set_faults(FaultSettings(capture_timeout_rate=1.0, timeout_hold_s=2.0))
    with pytest.raises(httpx.ReadTimeout):
        await merchant.call(
            "POST",
            f"/v2/checkout/orders/{order_id}/capture",
            {},
            request_id="cap-f_3",
            patience_s=0.25,
        )
    env.sandbox.set_faults(FaultSettings(capture_error_rate=1.0))
    failing = await merchant.capture(order_id, "cap-f_3")
    assert failing.status_code == 500
    env.sandbox.set_faults(FaultSettings())
    retried = await merchant.capture(order_id, "cap-f_3")
    assert (retried.status_code, retried.json()["status"]) == (200, "COMPLETED")
    assert [m.kind for m in env.sandbox.ledger("f_3")] == ["capture"]


async def test_replays_and_reads_meet_the_query_faults(env: Env, merchant: Merchant) -> None:
    order = await merchant.created("f_4")
    env.sandbox.set_faults(FaultSettings(query_error_rate=1.0))
    replay = await merchant.create("f_4")
    got = await merchant.call("GET", f"/v2/checkout/orders/{order['id']}")
    assert (replay.status_code, got.status_code) == (500, 500)
    fresh = await merchant.create("f_5")  # a new order meets the create faults only
    assert fresh.status_code == 201
