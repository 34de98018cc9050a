"""Injected faults: time-outs after the work is done, system errors, and replay under a seed."""

from __future__ import annotations

import urllib.error

import pytest
from sandbox_harness import Env

from payonce.sandbox import FaultSettings

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_create_time_out_still_creates_the_order(env: Env) -> None:
    env.sandbox.set_faults(FaultSettings(create_timeout_rate=1.0, timeout_hold_s=2.0))
    impatient = env.sdk(timeout=0.25)
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        await env.call(
            impatient.api_alipay_trade_precreate,
            subject="Tea",
            out_trade_no="f_1",
            total_amount="12.00",
        )
    orders = (await env.http.get(f"{env.url}/orders", params={"out_trade_no": "f_1"})).json()
    (order,) = orders["orders"]
    assert (order["amount"], order["trade_no"], order["blocked"]) == (1200, None, False)

    env.sandbox.set_faults(FaultSettings())
    again = await env.precreate("f_1", "12.00")
    assert again["qr_code"] == order["code"]
    assert (await env.wallet("scan", order["code"])).status_code == 200
    trades = (await env.http.get(f"{env.url}/trades", params={"out_trade_no": "f_1"})).json()
    assert [(t["status"], t["amount"]) for t in trades["trades"]] == [("WAIT_BUYER_PAY", 1200)]


async def test_a_refund_time_out_still_moves_the_money_once(env: Env) -> None:
    created = await env.precreate("f_2", "5.00")
    await env.wallet("pay", created["qr_code"])
    env.sandbox.set_faults(FaultSettings(refund_timeout_rate=1.0, timeout_hold_s=2.0))
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        await env.call(
            env.sdk(timeout=0.25).api_alipay_trade_refund,
            refund_amount="5.00",
            out_trade_no="f_2",
            out_request_no="rf",
        )
    env.sandbox.set_faults(FaultSettings())
    retry = await env.call(
        env.sdk().api_alipay_trade_refund,
        refund_amount="5.00",
        out_trade_no="f_2",
        out_request_no="rf",
    )
    assert (retry["code"], retry["fund_change"], retry["refund_fee"]) == ("10000", "N", "5.00")
    assert [m.kind for m in env.sandbox.ledger("f_2")] == ["capture", "refund"]


async def test_a_query_error_is_a_signed_system_error(env: Env) -> None:
    await env.precreate("f_3", "1.00")
    env.sandbox.set_faults(FaultSettings(query_error_rate=1.0))
    answer = await env.call(env.sdk().api_alipay_trade_query, out_trade_no="f_3")
    assert answer == {
        "code": "20000",
        "msg": "Service Currently Unavailable",
        "sub_code": "ACQ.SYSTEM_ERROR",
        "sub_msg": "系统错误 (system busy)",
    }


async def _query_pattern(env: Env, seed: int) -> list[str]:
    env.sandbox.set_faults(FaultSettings(seed=seed, query_error_rate=0.5))
    sdk = env.sdk()
    codes = []
    for _ in range(16):
        answer = await env.call(sdk.api_alipay_trade_query, out_trade_no="f_4")
        codes.append(answer["code"])
    return codes


async def test_seeded_faults_replay_exactly(env: Env) -> None:
    await env.precreate("f_4", "1.00")
    first = await _query_pattern(env, seed=7)
    second = await _query_pattern(env, seed=7)
    other = await _query_pattern(env, seed=8)
    assert first == second
    assert set(first) == {"20000", "40004"}
    assert other != first


async def test_fault_settings_are_validated(env: Env) -> None:
    for bad in (
        {"notify_drop_rate": 1.5},
        {"notify_delay_s": [5, 1]},
        {"surprise": True},
    ):
        response = await env.http.put(f"{env.url}/faults", json=bad)
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "invalid_request"
    put = await env.http.put(f"{env.url}/faults", json={"seed": 7, "query_error_rate": 0.2})
    got = await env.http.get(f"{env.url}/faults")
    assert put.json() == got.json()
    assert got.json()["seed"] == 7
    assert got.json()["query_error_rate"] == 0.2
    assert got.json()["channels"] == {}
    rates = {k: v for k, v in got.json().items() if k.endswith("_rate")}
    assert {k for k, v in rates.items() if v} == {"query_error_rate"}
    assert got.json()["timeout_hold_s"] == 30.0


async def test_a_channel_override_applies_to_that_channel_only(env: Env) -> None:
    settings = {"seed": 3, "channels": {"alipay": {"query_error_rate": 1.0}}}
    put = await env.http.put(f"{env.url}/faults", json=settings)
    assert put.status_code == 200
    assert put.json()["channels"]["alipay"]["query_error_rate"] == 1.0
    faults = env.sandbox.faults
    assert faults.rate("query_error", "alipay") == 1.0
    assert faults.rate("query_error", "wechat") == 0.0
    assert faults.rate("query_error") == 0.0


async def test_the_call_log_shows_what_the_merchant_asked_and_got(env: Env) -> None:
    env.sandbox.set_faults(FaultSettings(close_timeout_rate=1.0, timeout_hold_s=0.0))
    created = await env.precreate("f_5", "1.00")
    await env.wallet("scan", created["qr_code"])
    await env.call(env.sdk().api_alipay_trade_close, out_trade_no="f_5")
    await env.call(env.sdk().api_alipay_trade_query, out_trade_no="nope")
    calls = [(c.method, c.out_trade_no, c.code, c.sub_code, c.held) for c in env.sandbox.calls()]
    assert calls == [
        ("alipay.trade.precreate", "f_5", "10000", None, False),
        ("alipay.trade.close", "f_5", "10000", None, True),
        ("alipay.trade.query", "nope", "40004", "ACQ.TRADE_NOT_EXIST", False),
    ]
    listed = (await env.http.get(f"{env.url}/calls", params={"out_trade_no": "f_5"})).json()
    assert [c["method"] for c in listed["calls"]] == [
        "alipay.trade.precreate",
        "alipay.trade.close",
    ]
