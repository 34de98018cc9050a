"""The gateway's wire rules: signatures both ways, app ids, methods, GET and POST, brace safety."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlencode

import pytest
from alipay.exceptions import AliPayException
from sandbox_harness import Env

from payonce.sandbox import AlipayCredentials

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _signed_query(env: Env, method: str, biz: dict[str, str]) -> str:
    sdk = env.sdk()
    query: str = sdk.sign_data(sdk.build_body(method, biz))
    return query


async def _raw(env: Env, query: str) -> tuple[str, dict[str, object]]:
    response = await env.http.get(f"{env.gateway}?{query}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json;charset=utf-8"
    return response.text, json.loads(response.text)


async def test_a_tampered_request_is_refused_with_a_signed_invalid_signature(env: Env) -> None:
    biz = {"out_trade_no": "w_1", "total_amount": "100.00", "subject": "Tea"}
    query = _signed_query(env, "alipay.trade.precreate", biz)
    tampered = query.replace("100.00", "0.01")
    assert tampered != query
    text, body = await _raw(env, tampered)
    # The SDK's own check of the answer: the signature covers the exact inner text.
    verified = env.sdk()._verify_and_return_sync_response(text, "alipay_trade_precreate_response")
    assert verified == {
        "code": "40002",
        "msg": "Invalid Arguments",
        "sub_code": "isv.invalid-signature",
        "sub_msg": "验签出错 (invalid signature)",
    }
    assert set(body) == {"alipay_trade_precreate_response", "sign"}
    assert env.sandbox.orders() == []

    untouched_text, _ = await _raw(env, query)
    answer = env.sdk()._verify_and_return_sync_response(
        untouched_text, "alipay_trade_precreate_response"
    )
    assert answer["code"] == "10000"


async def test_a_request_signed_with_another_key_is_refused(env: Env) -> None:
    stranger = AlipayCredentials.generate(app_id=env.credentials.app_id)
    impostor = env.sdk()
    impostor._app_private_key = env.sdk(credentials=stranger).app_private_key
    answer = await env.call(impostor.api_alipay_trade_query, out_trade_no="w_2")
    assert (answer["code"], answer["sub_code"]) == ("40002", "isv.invalid-signature")


async def test_an_unknown_app_id_is_answered_unsigned(env: Env) -> None:
    other = AlipayCredentials(
        app_id="2021000000000000",
        seller_id=env.credentials.seller_id,
        app_private_key_pem=env.credentials.app_private_key_pem,
        app_public_key_pem=env.credentials.app_public_key_pem,
        alipay_private_key_pem=env.credentials.alipay_private_key_pem,
        alipay_public_key_pem=env.credentials.alipay_public_key_pem,
    )
    with pytest.raises(AliPayException) as raised:
        await env.call(env.sdk(credentials=other).api_alipay_trade_query, out_trade_no="w_3")
    message = str(raised.value)
    assert message.startswith("AliPayException: code:40002, message:")
    body = json.loads(message.split("message:", 1)[1])
    assert body == {
        "alipay_trade_query_response": {
            "code": "40002",
            "msg": "Invalid Arguments",
            "sub_code": "isv.invalid-app-id",
            "sub_msg": "无效的AppID参数",
        }
    }


async def test_an_unknown_method_is_invalid(env: Env) -> None:
    sdk = env.sdk()
    answer = await env.call(sdk.server_api, "alipay.trade.teleport", {"out_trade_no": "w_4"})
    assert answer == {
        "code": "40002",
        "msg": "Invalid Arguments",
        "sub_code": "isv.invalid-method",
        "sub_msg": "不存在的方法名",
    }


async def test_post_form_is_accepted_like_get(env: Env) -> None:
    biz = {"out_trade_no": "w_5", "total_amount": "1.00", "subject": "Tea"}
    params = dict(parse_qsl(_signed_query(env, "alipay.trade.precreate", biz)))
    common = {k: v for k, v in params.items() if k != "biz_content"}
    # Common parameters in the query string, biz_content in the form body, as Alipay's SDKs do.
    response = await env.http.post(
        f"{env.gateway}?{urlencode(common)}",
        content=urlencode({"biz_content": params["biz_content"]}),
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    answer = env.sdk()._verify_and_return_sync_response(
        response.text, "alipay_trade_precreate_response"
    )
    assert (answer["code"], answer["out_trade_no"]) == ("10000", "w_5")


async def test_braces_never_appear_inside_strings_of_an_answer(env: Env) -> None:
    sdk = env.sdk()
    answer = await env.call(
        sdk.api_alipay_trade_precreate,
        subject="{Tea}",
        out_trade_no="w_6",
        total_amount="1.00",
        timeout_express="{1h}",
    )
    assert answer["code"] == "40004"
    assert answer["sub_code"] == "ACQ.INVALID_PARAMETER"
    assert answer["sub_msg"] == "时间参数无效 (invalid timeout_express '{1h}')"
    text, _ = await _raw(
        env,
        _signed_query(
            env,
            "alipay.trade.precreate",
            {"out_trade_no": "w_6", "total_amount": "1", "subject": "x", "timeout_express": "}"},
        ),
    )
    assert "\\u007d" in text


async def test_invalid_business_content_is_refused(env: Env) -> None:
    sdk = env.sdk()
    for amount in ("0", "-1", "1.001", "abc", "100000000.01"):
        answer = await env.call(
            sdk.api_alipay_trade_precreate, subject="Tea", out_trade_no="w_7", total_amount=amount
        )
        assert (answer["code"], answer["sub_code"]) == ("40004", "ACQ.INVALID_PARAMETER"), amount
    bad_no = await env.call(
        sdk.api_alipay_trade_precreate, subject="Tea", out_trade_no="a b", total_amount="1"
    )
    assert bad_no["sub_code"] == "ACQ.INVALID_PARAMETER"
    assert env.sandbox.orders() == []
