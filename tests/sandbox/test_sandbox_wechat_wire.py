"""WeChat Pay's v3 wire in the sandbox: signed calls and answers, orders, close, refunds, codes."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sandbox_harness import START
from wechat_harness import WechatEnv, answer_verifies, authorization
from wechatpayv3 import WeChatPayType

from payonce.sandbox.credentials import rsa_key_pair
from payonce.sandbox.signing import load_private_key, sign_rsa2

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _order(wechat: WechatEnv, out_trade_no: str, total: int = 3998, **extra: object) -> dict:
    return {
        "appid": wechat.credentials.appid,
        "mchid": wechat.credentials.mchid,
        "description": "Tea",
        "out_trade_no": out_trade_no,
        "notify_url": "http://127.0.0.1:9/notify",
        "amount": {"total": total, "currency": "CNY"},
        **extra,
    }


def _query_target(wechat: WechatEnv, out_trade_no: str) -> str:
    return f"/v3/pay/transactions/out-trade-no/{out_trade_no}?mchid={wechat.credentials.mchid}"


async def test_a_native_order_exists_from_create_and_every_answer_is_signed(
    wechat: WechatEnv,
) -> None:
    code_url = await wechat.native("w_native", 3998)
    assert code_url.startswith("weixin://wxpay/bizpayurl?pr=")
    status, answer = await wechat.call(wechat.sdk().query, out_trade_no="w_native")
    assert status == 200
    assert answer == {
        "appid": wechat.credentials.appid,
        "mchid": wechat.credentials.mchid,
        "out_trade_no": "w_native",
        "trade_state": "NOTPAY",
        "trade_state_desc": "订单未支付",
        "amount": {"total": 3998, "currency": "CNY"},
    }
    raw = await wechat.raw("GET", _query_target(wechat, "w_native"))
    assert raw.status_code == 200
    assert raw.headers["content-type"] == "application/json; charset=utf-8"
    assert answer_verifies(wechat.credentials, raw)
    assert raw.headers["Wechatpay-Timestamp"] == str(int(START.timestamp()))
    [listed] = wechat.env.sandbox.trades("w_native")
    assert (listed.channel, listed.status, listed.amount, listed.trade_no) == (
        "wechat",
        "NOTPAY",
        3998,
        "",
    )
    assert wechat.env.sandbox.ledger("w_native") == []


async def test_h5_and_app_orders_answer_their_codes(wechat: WechatEnv) -> None:
    scene = {"payer_client_ip": "203.0.113.9", "h5_info": {"type": "Wap"}}
    h5 = await wechat.raw(
        "POST", "/v3/pay/transactions/h5", _order(wechat, "w_h5_a", scene_info=scene)
    )
    assert h5.status_code == 200, h5.text
    h5_url = h5.json()["h5_url"]
    assert h5_url.startswith(f"{wechat.env.url}/wechat/h5/checkmweb?prepay_id=wx20261124100000")
    page = await wechat.env.http.get(h5_url)
    assert page.status_code == 200
    assert "w_h5_a" in page.text

    status, app = await wechat.call(
        wechat.sdk().pay,
        description="Tea",
        out_trade_no="w_app_0",
        amount={"total": 100},
        pay_type=WeChatPayType.APP,
    )
    assert status == 200
    assert app["prepay_id"].startswith("wx20261124100000")
    assert len(app["prepay_id"]) == 36

    missing_scene = await wechat.raw("POST", "/v3/pay/transactions/h5", _order(wechat, "w_h5_b"))
    assert missing_scene.status_code == 400
    assert missing_scene.json()["code"] == "PARAM_ERROR"
    unknown_kind = await wechat.raw("POST", "/v3/pay/transactions/jsapi", _order(wechat, "w_jsapi"))
    assert (unknown_kind.status_code, unknown_kind.json()["code"]) == (404, "NOT_FOUND")
    assert [t.out_trade_no for t in wechat.env.sandbox.trades()] == ["w_h5_a", "w_app_0"]


@pytest.mark.parametrize(
    "broken",
    ["other_key", "other_serial", "other_mchid", "other_body", "no_header", "other_scheme"],
)
async def test_a_call_whose_signature_fails_is_refused_with_sign_error(
    wechat: WechatEnv, broken: str
) -> None:
    body = json.dumps(_order(wechat, "w_sign")).encode()
    target = "/v3/pay/transactions/native"
    signing: dict[str, str] = {}
    if broken == "other_key":
        signing["private_key_pem"] = rsa_key_pair()[0]
    elif broken == "other_serial":
        signing["serial_no"] = "0" * 40
    elif broken == "other_mchid":
        signing["mchid"] = "1900000001"
    header = authorization(wechat.credentials, "POST", target, body, **signing)
    content = body
    if broken == "other_body":
        content = json.dumps(_order(wechat, "w_sign", total=1)).encode()
    elif broken == "other_scheme":
        header = header.replace("WECHATPAY2-SHA256-RSA2048", "WECHATPAY2-SM2-WITH-SM3", 1)
    headers = {"Content-Type": "application/json"}
    if broken != "no_header":
        headers["Authorization"] = header
    response = await wechat.env.http.post(
        f"{wechat.gateway}{target}", content=content, headers=headers
    )
    assert response.status_code == 401
    assert response.json()["code"] == "SIGN_ERROR"
    assert answer_verifies(wechat.credentials, response)  # refusals are signed too
    assert wechat.env.sandbox.trades() == []
    [call] = wechat.env.sandbox.calls()
    assert (call.method, call.code, call.sub_code) == (
        "POST /v3/pay/transactions/native",
        "401",
        "SIGN_ERROR",
    )


async def test_a_repeated_create_answers_the_same_code_and_other_terms_are_refused(
    wechat: WechatEnv,
) -> None:
    first = await wechat.native("w_dupe", 3998)
    assert await wechat.native("w_dupe", 3998) == first
    other = await wechat.raw(
        "POST", "/v3/pay/transactions/native", _order(wechat, "w_dupe", total=100)
    )
    assert (other.status_code, other.json()["code"]) == (400, "INVALID_REQUEST")
    assert len(wechat.env.sandbox.trades("w_dupe")) == 1

    await wechat.env.wallet("pay", first)
    paid = await wechat.raw("POST", "/v3/pay/transactions/native", _order(wechat, "w_dupe"))
    assert (paid.status_code, paid.json()["code"]) == (400, "ORDERPAID")


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"appid": "wx0000000000000001"}, "INVALID_REQUEST"),
        ({"mchid": "1900000001"}, "INVALID_REQUEST"),
        ({"amount": {"total": 100, "currency": "USD"}}, "PARAM_ERROR"),
        ({"amount": {"total": 39.98}}, "PARAM_ERROR"),
        ({"amount": {"total": 0}}, "PARAM_ERROR"),
        ({"out_trade_no": "w_1"}, "PARAM_ERROR"),
        ({"notify_url": "ftp://example.com/"}, "PARAM_ERROR"),
        ({"time_expire": "2026-11-24 10:30:00"}, "PARAM_ERROR"),
        ({"time_expire": "2026-11-24T09:59:59+08:00"}, "PARAM_ERROR"),
    ],
)
async def test_a_create_with_bad_terms_is_refused(
    wechat: WechatEnv, change: dict[str, object], code: str
) -> None:
    response = await wechat.raw(
        "POST", "/v3/pay/transactions/native", {**_order(wechat, "w_bad_terms"), **change}
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == code
    assert wechat.env.sandbox.trades() == []


async def test_a_query_of_an_unknown_order_or_for_another_merchant(wechat: WechatEnv) -> None:
    status, answer = await wechat.call(wechat.sdk().query, out_trade_no="w_none")
    assert (status, answer["code"]) == (404, "ORDER_NOT_EXIST")
    await wechat.native("w_query")
    other = await wechat.raw("GET", "/v3/pay/transactions/out-trade-no/w_query?mchid=1900000001")
    assert (other.status_code, other.json()["code"]) == (400, "INVALID_REQUEST")


async def test_a_paid_order_is_found_by_its_transaction_id_too(wechat: WechatEnv) -> None:
    transaction_id = await wechat.paid("w_paid", 3998)
    assert len(transaction_id) == 28
    assert transaction_id.startswith("42000")
    status, by_id = await wechat.call(wechat.sdk().query, transaction_id=transaction_id)
    assert status == 200
    assert by_id == {
        "appid": wechat.credentials.appid,
        "mchid": wechat.credentials.mchid,
        "out_trade_no": "w_paid",
        "transaction_id": transaction_id,
        "trade_type": "NATIVE",
        "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功",
        "bank_type": "OTHERS",
        "success_time": "2026-11-24T10:00:00+08:00",
        "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
        "amount": {
            "total": 3998,
            "currency": "CNY",
            "payer_total": 3998,
            "payer_currency": "CNY",
        },
    }
    _status, by_number = await wechat.call(wechat.sdk().query, out_trade_no="w_paid")
    assert by_number == by_id


async def test_close_is_refused_for_five_minutes_then_closes_for_good(
    wechat: WechatEnv,
) -> None:
    code_url = await wechat.native("w_close")
    status, refused = await wechat.call(wechat.sdk().close, "w_close")
    assert (status, refused["code"]) == (400, "CLOSE_TOO_SOON")
    wechat.env.clock.advance(timedelta(minutes=5) - timedelta(seconds=1))
    status, refused = await wechat.call(wechat.sdk().close, "w_close")
    assert (status, refused["code"]) == (400, "CLOSE_TOO_SOON")
    assert (await wechat.env.wallet("scan", code_url)).status_code == 200  # still payable

    wechat.env.clock.advance(timedelta(seconds=1))
    closed = await wechat.raw(
        "POST",
        "/v3/pay/transactions/out-trade-no/w_close/close",
        {"mchid": wechat.credentials.mchid},
    )
    assert (closed.status_code, closed.content) == (204, b"")
    assert answer_verifies(wechat.credentials, closed)
    assert await wechat.call(wechat.sdk().close, "w_close") == (204, None)  # twice is once
    _status, answer = await wechat.call(wechat.sdk().query, out_trade_no="w_close")
    assert answer["trade_state"] == "CLOSED"
    late = await wechat.env.wallet("pay", code_url)
    assert (late.status_code, late.json()["code"]) == (409, "trade_closed")
    again = await wechat.raw("POST", "/v3/pay/transactions/native", _order(wechat, "w_close"))
    assert (again.status_code, again.json()["code"]) == (400, "ORDER_CLOSED")
    assert wechat.env.sandbox.ledger("w_close") == []


async def test_close_of_a_paid_or_unknown_order(wechat: WechatEnv) -> None:
    await wechat.paid("w_close_paid")
    wechat.env.clock.advance(timedelta(minutes=10))
    status, answer = await wechat.call(wechat.sdk().close, "w_close_paid")
    assert (status, answer["code"]) == (400, "ORDERPAID")
    status, answer = await wechat.call(wechat.sdk().close, "w_never")
    assert (status, answer["code"]) == (404, "ORDER_NOT_EXIST")
    assert [m.kind for m in wechat.env.sandbox.ledger("w_close_paid")] == ["capture"]


async def test_a_refund_is_made_once_per_refund_number(wechat: WechatEnv) -> None:
    transaction_id = await wechat.paid("w_refund", 3998)
    sdk = wechat.sdk()
    amount = {"refund": 1000, "total": 3998, "currency": "CNY"}
    status, first = await wechat.call(
        sdk.refund, out_refund_no="rf_a", amount=amount, out_trade_no="w_refund"
    )
    assert status == 200
    assert first["status"] == "SUCCESS"
    assert (first["out_refund_no"], first["out_trade_no"], first["transaction_id"]) == (
        "rf_a",
        "w_refund",
        transaction_id,
    )
    assert (first["amount"]["refund"], first["amount"]["total"]) == (1000, 3998)
    _status, second = await wechat.call(
        sdk.refund, out_refund_no="rf_a", amount=amount, transaction_id=transaction_id
    )
    assert second == first
    _status, queried = await wechat.call(sdk.query_refund, "rf_a")
    assert queried == first
    _status, trade = await wechat.call(sdk.query, out_trade_no="w_refund")
    assert trade["trade_state"] == "REFUND"
    movements = [(m.kind, m.amount, m.reference) for m in wechat.env.sandbox.ledger("w_refund")]
    assert movements == [("capture", 3998, transaction_id), ("refund", 1000, "rf_a")]


@pytest.mark.parametrize(
    ("out_trade_no", "refund", "total", "status", "code"),
    [
        ("w_rf_paid", 2000, 3998, 400, "INVALID_REQUEST"),  # rf_x reused with another amount
        ("w_rf_paid", 3000, 3998, 400, "INVALID_REQUEST"),  # more than is left
        ("w_rf_paid", 100, 100, 400, "PARAM_ERROR"),  # not the order's total
        ("w_rf_open", 100, 3998, 400, "INVALID_REQUEST"),  # not paid
        ("w_rf_none", 100, 3998, 404, "RESOURCE_NOT_EXISTS"),
    ],
)
async def test_refunds_wechat_refuses(
    wechat: WechatEnv, out_trade_no: str, refund: int, total: int, status: int, code: str
) -> None:
    await wechat.paid("w_rf_paid", 3998)
    await wechat.native("w_rf_open", 3998)
    sdk = wechat.sdk()
    done = await wechat.call(
        sdk.refund,
        out_refund_no="rf_x",
        amount={"refund": 1000, "total": 3998, "currency": "CNY"},
        out_trade_no="w_rf_paid",
    )
    assert done[0] == 200
    number = "rf_x" if refund == 2000 else "rf_y"
    answer = await wechat.call(
        sdk.refund,
        out_refund_no=number,
        amount={"refund": refund, "total": total, "currency": "CNY"},
        out_trade_no=out_trade_no,
    )
    assert (answer[0], answer[1]["code"]) == (status, code)
    assert [m.amount for m in wechat.env.sandbox.ledger() if m.kind == "refund"] == [1000]
    missing = await wechat.call(sdk.query_refund, "rf_none")
    assert (missing[0], missing[1]["code"]) == (404, "RESOURCE_NOT_EXISTS")


async def test_an_order_past_its_time_expire_closes_and_cannot_be_paid(
    wechat: WechatEnv,
) -> None:
    code_url = await wechat.native("w_expire", time_expire="2026-11-24T10:10:00+08:00")
    wechat.env.clock.advance(timedelta(minutes=10))
    late = await wechat.env.wallet("pay", code_url)
    assert (late.status_code, late.json()["code"]) == (409, "pay_deadline_passed")
    _status, answer = await wechat.call(wechat.sdk().query, out_trade_no="w_expire")
    assert answer["trade_state"] == "CLOSED"
    [listed] = wechat.env.sandbox.trades("w_expire")
    assert (listed.status, listed.closed_at) == ("CLOSED", START + timedelta(minutes=10))
    assert wechat.env.sandbox.ledger() == []
    assert wechat.env.sandbox.deliveries() == []  # WeChat notifies successes only


async def test_an_h5_link_lasts_five_minutes_and_a_repeated_create_answers_a_fresh_one(
    wechat: WechatEnv,
) -> None:
    order = _order(
        wechat,
        "w_h5_exp",
        scene_info={"payer_client_ip": "203.0.113.9", "h5_info": {"type": "Wap"}},
    )
    first = (await wechat.raw("POST", "/v3/pay/transactions/h5", order)).json()["h5_url"]
    wechat.env.clock.advance(timedelta(minutes=5))
    expired = await wechat.env.wallet("pay", first)
    assert (expired.status_code, expired.json()["code"]) == (409, "code_expired")
    fresh = (await wechat.raw("POST", "/v3/pay/transactions/h5", order)).json()["h5_url"]
    assert fresh != first
    paid = await wechat.env.wallet("pay", fresh)
    assert (paid.status_code, paid.json()["status"]) == (200, "SUCCESS")
    unknown = await wechat.env.wallet("pay", fresh.replace("package=", "package=9"))
    assert (unknown.status_code, unknown.json()["code"]) == (422, "code_unknown")


async def test_an_app_pays_with_its_signed_pay_request_or_the_prepay_id(
    wechat: WechatEnv,
) -> None:
    prepay_ids = []
    for number in ("w_app_1", "w_app_2"):
        status, answer = await wechat.call(
            wechat.sdk().pay,
            description="Tea",
            out_trade_no=number,
            amount={"total": 500},
            pay_type=WeChatPayType.APP,
        )
        assert status == 200
        prepay_ids.append(answer["prepay_id"])
    creds = wechat.credentials
    request = {
        "appid": creds.appid,
        "partnerid": creds.mchid,
        "prepayid": prepay_ids[0],
        "package": "Sign=WXPay",
        "noncestr": "5K8264ILTKCH16CQ2502SI8ZNMTM67VS",
        "timestamp": "1795485600",
    }
    message = f"{creds.appid}\n1795485600\n5K8264ILTKCH16CQ2502SI8ZNMTM67VS\n{prepay_ids[0]}\n"
    request["sign"] = sign_rsa2(load_private_key(creds.merchant_private_key_pem), message)
    forged = await wechat.env.wallet("pay", json.dumps({**request, "prepayid": prepay_ids[1]}))
    assert (forged.status_code, forged.json()["code"]) == (422, "invalid_signature")
    paid = await wechat.env.wallet("pay", json.dumps(request))
    assert (paid.status_code, paid.json()["out_trade_no"]) == (200, "w_app_1")
    by_id = await wechat.env.wallet("pay", prepay_ids[1])
    assert (by_id.status_code, by_id.json()["out_trade_no"]) == (200, "w_app_2")
    assert [m.out_trade_no for m in wechat.env.sandbox.ledger()] == ["w_app_1", "w_app_2"]


async def test_a_declined_payment_is_payerror_and_moves_nothing(wechat: WechatEnv) -> None:
    code_url = await wechat.native("w_decline")
    declined = await wechat.env.http.post(
        f"{wechat.env.url}/wechat/wallet/decline", json={"code": code_url}
    )
    assert (declined.status_code, declined.json()["status"]) == (200, "PAYERROR")
    _status, answer = await wechat.call(wechat.sdk().query, out_trade_no="w_decline")
    assert (answer["trade_state"], answer["trade_state_desc"]) == ("PAYERROR", "支付失败")
    again = await wechat.env.wallet("pay", code_url)
    assert (again.status_code, again.json()["code"]) == (409, "payment_failed")
    assert wechat.env.sandbox.ledger() == []
    assert wechat.env.sandbox.deliveries() == []


async def test_the_call_log_shows_each_call_and_its_answer(wechat: WechatEnv) -> None:
    await wechat.native("w_logs")
    await wechat.call(wechat.sdk().close, "w_logs")
    await wechat.call(wechat.sdk().query, out_trade_no="w_nope")
    calls = [
        (c.method, c.app_id, c.out_trade_no, c.code, c.sub_code, c.held)
        for c in wechat.env.sandbox.calls()
    ]
    mchid = wechat.credentials.mchid
    assert calls == [
        ("POST /v3/pay/transactions/native", mchid, "w_logs", "200", None, False),
        (
            "POST /v3/pay/transactions/out-trade-no/{out_trade_no}/close",
            mchid,
            "w_logs",
            "400",
            "CLOSE_TOO_SOON",
            False,
        ),
        (
            "GET /v3/pay/transactions/out-trade-no/{out_trade_no}",
            mchid,
            "w_nope",
            "404",
            "ORDER_NOT_EXIST",
            False,
        ),
    ]
