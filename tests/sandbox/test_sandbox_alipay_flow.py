"""The unmodified python-alipay-sdk against the sandbox: the trade's whole life on the wire."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import parse_qsl

import pytest
from sandbox_harness import START, Env

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _token(qr_code: str) -> str:
    match = re.fullmatch(r"http://127\.0\.0\.1:\d+/sandbox/alipay/qr/([0-9a-f]{24})", qr_code)
    assert match is not None, qr_code
    return match.group(1)


async def test_precreate_scan_pay_refund(env: Env) -> None:
    sdk = env.sdk()
    created = await env.call(
        sdk.api_alipay_trade_precreate, subject="Tea x2", out_trade_no="pay_1", total_amount="39.98"
    )
    qr = created["qr_code"]
    assert qr == f"{env.url}/alipay/qr/{_token(qr)}"
    assert created == {"code": "10000", "msg": "Success", "out_trade_no": "pay_1", "qr_code": qr}

    before_scan = await env.call(sdk.api_alipay_trade_query, out_trade_no="pay_1")
    assert before_scan == {
        "code": "40004",
        "msg": "Business Failed",
        "sub_code": "ACQ.TRADE_NOT_EXIST",
        "sub_msg": "交易不存在 (trade does not exist)",
        "out_trade_no": "pay_1",
    }

    scanned = await env.wallet("scan", qr)
    assert scanned.status_code == 200
    trade_no = scanned.json()["trade_no"]
    # 28 digits: the China date, 22001, the sandbox instance's start instant, a sequence.
    assert re.fullmatch(r"2026112422001\d{7}00000001", trade_no)
    assert scanned.json()["status"] == "WAIT_BUYER_PAY"

    waiting = await env.call(sdk.api_alipay_trade_query, out_trade_no="pay_1")
    assert waiting == {
        "code": "10000",
        "msg": "Success",
        "trade_no": trade_no,
        "out_trade_no": "pay_1",
        "buyer_logon_id": "sho***@sandbox.com",
        "trade_status": "WAIT_BUYER_PAY",
        "total_amount": "39.98",
        "buyer_pay_amount": "0.00",
        "point_amount": "0.00",
        "invoice_amount": "0.00",
        "receipt_amount": "0.00",
        "buyer_user_id": "2088102177846880",
    }

    env.clock.advance(timedelta(minutes=1))
    paid = await env.wallet("pay", qr)
    assert paid.status_code == 200
    assert paid.json()["status"] == "TRADE_SUCCESS"

    success = await env.call(sdk.api_alipay_trade_query, trade_no=trade_no)
    assert success["trade_status"] == "TRADE_SUCCESS"
    assert success["buyer_pay_amount"] == "39.98"
    assert success["send_pay_date"] == "2026-11-24 10:01:00"
    assert success["fund_bill_list"] == [{"amount": "39.98", "fund_channel": "ALIPAYACCOUNT"}]

    refund_args = {"refund_amount": "39.98", "out_trade_no": "pay_1", "out_request_no": "r1"}
    first = await env.call(sdk.api_alipay_trade_refund, **refund_args)
    second = await env.call(sdk.api_alipay_trade_refund, **refund_args)
    assert first["code"] == second["code"] == "10000"
    assert (first["fund_change"], second["fund_change"]) == ("Y", "N")
    assert first["refund_fee"] == second["refund_fee"] == "39.98"

    movements = [(m.kind, m.amount, m.trade_no) for m in env.sandbox.ledger()]
    assert movements == [("capture", 3998, trade_no), ("refund", 3998, trade_no)]
    ledger = (await env.http.get(f"{env.url}/ledger")).json()["movements"]
    assert [(m["kind"], m["amount"], m["currency"]) for m in ledger] == [
        ("capture", 3998, "CNY"),
        ("refund", 3998, "CNY"),
    ]
    trades = (await env.http.get(f"{env.url}/trades", params={"out_trade_no": "pay_1"})).json()
    assert trades["trades"] == [
        {
            "channel": "alipay",
            "out_trade_no": "pay_1",
            "trade_no": trade_no,
            "status": "TRADE_CLOSED",
            "amount": 3998,
            "currency": "CNY",
            "subject": "Tea x2",
            "created_at": START.isoformat(),
            "paid_at": (START + timedelta(minutes=1)).isoformat(),
            "closed_at": (START + timedelta(minutes=1)).isoformat(),
            "captured": 3998,
            "refunded": 3998,
        }
    ]


async def test_same_out_trade_no_gives_the_same_qr_and_a_new_amount_is_refused(env: Env) -> None:
    sdk = env.sdk()
    first = await env.call(
        sdk.api_alipay_trade_precreate, subject="Tea", out_trade_no="pay_2", total_amount="10.00"
    )
    again = await env.call(
        sdk.api_alipay_trade_precreate, subject="Tea", out_trade_no="pay_2", total_amount="10.00"
    )
    changed = await env.call(
        sdk.api_alipay_trade_precreate, subject="Tea", out_trade_no="pay_2", total_amount="10.01"
    )
    assert again == first
    assert changed["code"] == "40004"
    assert changed["sub_code"] == "ACQ.CONTEXT_INCONSISTENT"
    assert len(env.sandbox.orders()) == 1


async def test_close_before_scan_is_not_exist_and_cancel_blocks_the_code(env: Env) -> None:
    sdk = env.sdk()
    created = await env.call(
        sdk.api_alipay_trade_precreate, subject="Tea", out_trade_no="pay_3", total_amount="5.00"
    )
    closed = await env.call(sdk.api_alipay_trade_close, out_trade_no="pay_3")
    assert (closed["code"], closed["sub_code"]) == ("40004", "ACQ.TRADE_NOT_EXIST")
    # As on the real Alipay, the pending code survives a close that found no trade.
    page = await env.http.get(f"{env.url}/wallet", params={"code": created["qr_code"]})
    assert page.status_code == 200
    assert 'data-testid="status">NOT_SCANNED<' in page.text

    cancelled = await env.call(sdk.api_alipay_trade_cancel, out_trade_no="pay_3")
    assert cancelled == {
        "code": "10000",
        "msg": "Success",
        "retry_flag": "N",
        "action": "close",
        "out_trade_no": "pay_3",
    }
    for action in ("scan", "pay"):
        refused = await env.wallet(action, created["qr_code"])
        assert refused.status_code == 409
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["code"] == "order_cancelled"
    again = await env.call(
        sdk.api_alipay_trade_precreate, subject="Tea", out_trade_no="pay_3", total_amount="5.00"
    )
    assert again["sub_code"] == "ACQ.TRADE_HAS_CLOSE"
    assert env.sandbox.trades() == []
    assert env.sandbox.ledger() == []


async def test_close_after_scan_closes_and_pay_is_refused(env: Env) -> None:
    sdk = env.sdk()
    created = await env.call(
        sdk.api_alipay_trade_precreate, subject="Tea", out_trade_no="pay_4", total_amount="5.00"
    )
    trade_no = (await env.wallet("scan", created["qr_code"])).json()["trade_no"]
    closed = await env.call(sdk.api_alipay_trade_close, out_trade_no="pay_4")
    assert closed == {
        "code": "10000",
        "msg": "Success",
        "trade_no": trade_no,
        "out_trade_no": "pay_4",
    }
    assert (await env.call(sdk.api_alipay_trade_close, trade_no=trade_no))["code"] == "10000"
    query = await env.call(sdk.api_alipay_trade_query, out_trade_no="pay_4")
    assert query["trade_status"] == "TRADE_CLOSED"
    refused = await env.wallet("pay", created["qr_code"])
    assert (refused.status_code, refused.json()["code"]) == (409, "trade_closed")
    assert env.sandbox.ledger() == []


async def test_close_of_a_paid_trade_is_a_status_error(env: Env) -> None:
    sdk = env.sdk()
    created = await env.call(
        sdk.api_alipay_trade_precreate, subject="Tea", out_trade_no="pay_5", total_amount="5.00"
    )
    assert (await env.wallet("pay", created["qr_code"])).status_code == 200
    closed = await env.call(sdk.api_alipay_trade_close, out_trade_no="pay_5")
    assert (closed["code"], closed["sub_code"]) == ("40004", "ACQ.TRADE_STATUS_ERROR")
    assert "paid" in closed["sub_msg"]
    again = await env.wallet("pay", created["qr_code"])
    assert (again.status_code, again.json()["code"]) == (409, "trade_already_paid")
    assert [m.kind for m in env.sandbox.ledger()] == ["capture"]


async def test_cancel_of_a_paid_trade_refunds_it_in_full(env: Env) -> None:
    sdk = env.sdk()
    created = await env.call(
        sdk.api_alipay_trade_precreate, subject="Tea", out_trade_no="pay_6", total_amount="8.00"
    )
    await env.wallet("pay", created["qr_code"])
    partial = await env.call(
        sdk.api_alipay_trade_refund, refund_amount="3.00", out_trade_no="pay_6"
    )
    assert (partial["fund_change"], partial["refund_fee"]) == ("Y", "3.00")
    cancelled = await env.call(sdk.api_alipay_trade_cancel, out_trade_no="pay_6")
    assert (cancelled["code"], cancelled["action"], cancelled["retry_flag"]) == (
        "10000",
        "refund",
        "N",
    )
    assert [(m.kind, m.amount) for m in env.sandbox.ledger()] == [
        ("capture", 800),
        ("refund", 300),
        ("refund", 500),
    ]
    assert env.sandbox.net_captured("alipay", "pay_6") == 0
    assert env.sandbox.trades()[0].status == "TRADE_CLOSED"
    again = await env.call(sdk.api_alipay_trade_cancel, out_trade_no="pay_6")
    assert again["action"] == "close"
    assert len(env.sandbox.ledger()) == 3


async def test_refund_rules(env: Env) -> None:
    sdk = env.sdk()
    created = await env.call(
        sdk.api_alipay_trade_precreate, subject="Tea", out_trade_no="pay_7", total_amount="10.00"
    )
    scanned = await env.wallet("scan", created["qr_code"])
    unpaid = await env.call(sdk.api_alipay_trade_refund, refund_amount="1.00", out_trade_no="pay_7")
    assert unpaid["sub_code"] == "ACQ.TRADE_STATUS_ERROR"
    await env.wallet("pay", created["qr_code"])

    r1 = await env.call(
        sdk.api_alipay_trade_refund, refund_amount="4.00", out_trade_no="pay_7", out_request_no="a"
    )
    too_much = await env.call(
        sdk.api_alipay_trade_refund, refund_amount="6.01", out_trade_no="pay_7", out_request_no="b"
    )
    reused = await env.call(
        sdk.api_alipay_trade_refund, refund_amount="5.00", out_trade_no="pay_7", out_request_no="a"
    )
    r2 = await env.call(
        sdk.api_alipay_trade_refund,
        refund_amount="6.00",
        trade_no=scanned.json()["trade_no"],
        out_request_no="b",
    )
    assert (r1["refund_fee"], r1["fund_change"]) == ("4.00", "Y")
    assert too_much["sub_code"] == "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL"
    assert reused["sub_code"] == "ACQ.CONTEXT_INCONSISTENT"
    assert (r2["refund_fee"], r2["fund_change"]) == ("10.00", "Y")
    after_close = await env.call(
        sdk.api_alipay_trade_refund, refund_amount="0.01", out_trade_no="pay_7", out_request_no="c"
    )
    assert after_close["sub_code"] == "ACQ.TRADE_STATUS_ERROR"

    found = await env.call(
        sdk.api_alipay_trade_fastpay_refund_query, out_request_no="b", out_trade_no="pay_7"
    )
    assert (found["refund_amount"], found["refund_status"], found["total_amount"]) == (
        "6.00",
        "REFUND_SUCCESS",
        "10.00",
    )
    missing = await env.call(
        sdk.api_alipay_trade_fastpay_refund_query, out_request_no="zz", out_trade_no="pay_7"
    )
    assert set(missing) == {"code", "msg", "trade_no", "out_trade_no"}
    assert [(m.kind, m.amount, m.reference) for m in env.sandbox.ledger()] == [
        ("capture", 1000, scanned.json()["trade_no"]),
        ("refund", 400, "a"),
        ("refund", 600, "b"),
    ]
    assert env.sandbox.trades()[0].status == "TRADE_CLOSED"


async def test_wap_launch_url_and_app_order_string_are_codes(env: Env) -> None:
    sdk = env.sdk()
    query = sdk.api_alipay_trade_wap_pay(
        subject="Mobile tea", out_trade_no="pay_8", total_amount="1.50", return_url="http://shop/r"
    )
    launch_url = f"{env.gateway}?{query}"
    cashier = await env.http.get(launch_url)
    assert cashier.status_code == 200
    assert "Mobile tea" in cashier.text
    assert "¥1.50" in cashier.text
    paid = await env.wallet("pay", launch_url)
    assert (paid.status_code, paid.json()["status"], paid.json()["amount"]) == (
        200,
        "TRADE_SUCCESS",
        150,
    )
    reopened = await env.http.get(launch_url)
    assert 'data-testid="status">TRADE_SUCCESS<' in reopened.text

    order_string = sdk.api_alipay_trade_app_pay(
        subject="App tea", out_trade_no="pay_9", total_amount="2.00"
    )
    assert (await env.wallet("scan", order_string)).json()["status"] == "WAIT_BUYER_PAY"
    assert (await env.wallet("pay", order_string)).json()["status"] == "TRADE_SUCCESS"

    tampered = order_string.replace("2.00", "0.01")
    refused = await env.wallet("pay", tampered)
    assert (refused.status_code, refused.json()["code"], refused.json()["title"]) == (
        422,
        "invalid_code",
        "isv.invalid-signature",
    )
    other_amount = sdk.api_alipay_trade_app_pay(
        subject="App tea", out_trade_no="pay_9", total_amount="3.00"
    )
    conflict = await env.wallet("scan", other_amount)
    assert (conflict.status_code, conflict.json()["code"]) == (409, "context_inconsistent")
    bad_page = await env.http.get(launch_url.replace("1.50", "0.01"))
    assert bad_page.status_code == 400
    assert "isv.invalid-signature" in bad_page.text
    assert [(m.out_trade_no, m.amount) for m in env.sandbox.ledger()] == [
        ("pay_8", 150),
        ("pay_9", 200),
    ]
    products = {o.out_trade_no: o.product_code for o in env.sandbox.orders()}
    assert products == {"pay_8": "QUICK_WAP_WAY", "pay_9": "QUICK_MSECURITY_PAY"}


async def test_pay_deadline_and_qr_expiry(env: Env) -> None:
    sdk = env.sdk()
    timed = await env.call(
        sdk.api_alipay_trade_precreate,
        subject="Tea",
        out_trade_no="pay_11",
        total_amount="3.00",
        time_expire="2026-11-24 10:30:00",
    )
    plain = await env.call(
        sdk.api_alipay_trade_precreate, subject="Tea", out_trade_no="pay_12", total_amount="3.00"
    )
    await env.wallet("scan", timed["qr_code"])
    env.clock.advance(timedelta(minutes=30))
    late = await env.wallet("pay", timed["qr_code"])
    assert (late.status_code, late.json()["code"]) == (409, "pay_deadline_passed")
    query = await env.call(sdk.api_alipay_trade_query, out_trade_no="pay_11")
    assert query["trade_status"] == "TRADE_CLOSED"
    assert env.sandbox.trades("pay_11")[0].closed_at == START + timedelta(minutes=30)

    env.clock.advance(timedelta(minutes=90))
    expired = await env.wallet("scan", plain["qr_code"])
    assert (expired.status_code, expired.json()["code"]) == (409, "code_expired")
    assert env.sandbox.ledger() == []


async def test_a_wap_payment_returns_the_shopper_with_a_signed_return(env: Env) -> None:
    sdk = env.sdk()
    query = sdk.api_alipay_trade_wap_pay(
        subject="Mobile tea",
        out_trade_no="pay_10",
        total_amount="1.50",
        return_url="http://shop.test/pay/ord_1?x=1",
    )
    launch_url = f"{env.gateway}?{query}"
    assert (await env.wallet("scan", launch_url)).json()["return_url"] is None
    paid = (await env.wallet("pay", launch_url)).json()
    back, _, signed = paid["return_url"].partition("?x=1&")
    assert back == "http://shop.test/pay/ord_1"
    params = dict(parse_qsl(signed))
    assert params["method"] == "alipay.trade.wap.pay.return"
    assert (params["out_trade_no"], params["total_amount"]) == ("pay_10", "1.50")
    assert params["trade_no"] == paid["trade_no"]
    signature = params.pop("sign")
    assert sdk.verify(params, signature)  # the merchant's SDK accepts Alipay's signature
    assert not sdk.verify({**params, "total_amount": "0.01"}, signature)
