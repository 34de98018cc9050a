"""WeChat Pay's books in the sandbox: ledger, trade listing, statement days (+08:00) and faults."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from sandbox_harness import START
from wechat_harness import WechatEnv, answer_verifies

from payonce.sandbox import FaultSettings

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_the_ledger_the_trade_listing_and_the_statement(wechat: WechatEnv) -> None:
    paid = await wechat.paid("b_paid1", 3998)
    await wechat.native("b_open1", 500)
    status, _refund = await wechat.call(
        wechat.sdk().refund,
        out_refund_no="b_rf_1",
        amount={"refund": 998, "total": 3998, "currency": "CNY"},
        out_trade_no="b_paid1",
    )
    assert status == 200
    # 23:59:59 in China is still the 24th; a second later is the 25th.
    wechat.env.clock.advance(timedelta(hours=13, minutes=59, seconds=59))
    late = await wechat.paid("b_late1", 100, time_expire="2026-11-25T10:00:00+08:00")
    wechat.env.clock.advance(timedelta(seconds=1))
    later = await wechat.paid("b_next1", 200, time_expire="2026-11-25T10:00:00+08:00")

    url = wechat.env.url
    ledger = (await wechat.env.http.get(f"{url}/ledger")).json()["movements"]
    assert [(m["out_trade_no"], m["kind"], m["amount"], m["reference"]) for m in ledger] == [
        ("b_paid1", "capture", 3998, paid),
        ("b_paid1", "refund", 998, "b_rf_1"),
        ("b_late1", "capture", 100, late),
        ("b_next1", "capture", 200, later),
    ]
    assert {(m["channel"], m["currency"]) for m in ledger} == {("wechat", "CNY")}
    assert wechat.env.sandbox.net_captured("wechat", "b_paid1") == 3000

    trades = (await wechat.env.http.get(f"{url}/trades", params={"channel": "wechat"})).json()
    listed = {t["out_trade_no"]: t for t in trades["trades"]}
    assert listed["b_paid1"] == {
        "channel": "wechat",
        "out_trade_no": "b_paid1",
        "trade_no": paid,
        "status": "REFUND",
        "amount": 3998,
        "currency": "CNY",
        "subject": "Tea",
        "created_at": START.isoformat(),
        "paid_at": START.isoformat(),
        "closed_at": None,
        "captured": 3998,
        "refunded": 998,
    }
    # Unpaid past its default two hours: closed by WeChat itself, never captured.
    assert [listed["b_open1"][k] for k in ("status", "trade_no", "closed_at", "captured")] == [
        "CLOSED",
        "",
        (START + timedelta(hours=2)).isoformat(),
        0,
    ]
    one = (await wechat.env.http.get(f"{url}/trades", params={"out_trade_no": "b_late1"})).json()
    assert [t["status"] for t in one["trades"]] == ["SUCCESS"]

    day = (await wechat.env.http.get(f"{url}/wechat/statements/2026-11-24")).text
    assert day.splitlines() == [
        "at,channel,out_trade_no,trade_no,kind,amount,currency,reference",
        f"2026-11-24 10:00:00,wechat,b_paid1,{paid},capture,3998,CNY,{paid}",
        f"2026-11-24 10:00:00,wechat,b_paid1,{paid},refund,998,CNY,b_rf_1",
        f"2026-11-24 23:59:59,wechat,b_late1,{late},capture,100,CNY,{late}",
    ]
    next_day = (await wechat.env.http.get(f"{url}/wechat/statements/2026-11-25")).text
    assert next_day.splitlines()[1:] == [
        f"2026-11-25 00:00:00,wechat,b_next1,{later},capture,200,CNY,{later}"
    ]
    alipay_day = (await wechat.env.http.get(f"{url}/alipay/statements/2026-11-24")).text
    assert alipay_day.splitlines()[1:] == []


async def test_a_create_that_times_out_still_creates_the_order(wechat: WechatEnv) -> None:
    wechat.env.sandbox.set_faults(FaultSettings(create_timeout_rate=1.0, timeout_hold_s=2.0))
    impatient = wechat.sdk(timeout=0.25)
    with pytest.raises(requests.Timeout):
        await wechat.call(
            impatient.pay, description="Tea", out_trade_no="b_tout1", amount={"total": 1200}
        )
    wechat.env.sandbox.set_faults(FaultSettings())
    _status, answer = await wechat.call(wechat.sdk().query, out_trade_no="b_tout1")
    assert answer["trade_state"] == "NOTPAY"
    [call, _query] = wechat.env.sandbox.calls("b_tout1")
    assert (call.code, call.held) == ("200", True)
    # The merchant asks again with the same terms and gets the order's one code.
    code_url = await wechat.native("b_tout1", 1200)
    assert (await wechat.env.wallet("pay", code_url)).status_code == 200
    assert [m.kind for m in wechat.env.sandbox.ledger("b_tout1")] == ["capture"]


async def test_a_create_error_is_a_signed_system_error_and_creates_nothing(
    wechat: WechatEnv,
) -> None:
    wechat.env.sandbox.set_faults(FaultSettings(create_error_rate=1.0))
    failed = await wechat.raw(
        "POST",
        "/v3/pay/transactions/native",
        {
            "appid": wechat.credentials.appid,
            "mchid": wechat.credentials.mchid,
            "description": "Tea",
            "out_trade_no": "b_err01",
            "notify_url": "http://127.0.0.1:9/notify",
            "amount": {"total": 100},
        },
    )
    assert failed.status_code == 500
    assert failed.json() == {"code": "SYSTEM_ERROR", "message": "系统错误 (system busy, try again)"}
    assert answer_verifies(wechat.credentials, failed)
    wechat.env.sandbox.set_faults(FaultSettings())
    status, _answer = await wechat.call(wechat.sdk().query, out_trade_no="b_err01")
    assert status == 404


async def test_a_refund_time_out_still_refunds_once(wechat: WechatEnv) -> None:
    await wechat.paid("b_rtout", 500)
    wechat.env.sandbox.set_faults(FaultSettings(refund_timeout_rate=1.0, timeout_hold_s=2.0))
    amount = {"refund": 500, "total": 500, "currency": "CNY"}
    with pytest.raises(requests.Timeout):
        await wechat.call(
            wechat.sdk(timeout=0.25).refund,
            out_refund_no="b_rf_t",
            amount=amount,
            out_trade_no="b_rtout",
        )
    wechat.env.sandbox.set_faults(FaultSettings())
    status, again = await wechat.call(
        wechat.sdk().refund, out_refund_no="b_rf_t", amount=amount, out_trade_no="b_rtout"
    )
    assert (status, again["status"], again["amount"]["refund"]) == (200, "SUCCESS", 500)
    assert [m.kind for m in wechat.env.sandbox.ledger("b_rtout")] == ["capture", "refund"]


async def test_close_and_query_faults(wechat: WechatEnv) -> None:
    code_url = await wechat.native("b_cfault")
    wechat.env.clock.advance(timedelta(minutes=6))
    wechat.env.sandbox.set_faults(FaultSettings(close_error_rate=1.0))
    status, answer = await wechat.call(wechat.sdk().close, "b_cfault")
    assert (status, answer["code"]) == (500, "SYSTEM_ERROR")
    wechat.env.sandbox.set_faults(FaultSettings(query_timeout_rate=1.0, timeout_hold_s=2.0))
    with pytest.raises(requests.Timeout):
        await wechat.call(wechat.sdk(timeout=0.25).query, out_trade_no="b_cfault")
    wechat.env.sandbox.set_faults(FaultSettings(close_timeout_rate=1.0, timeout_hold_s=2.0))
    with pytest.raises(requests.Timeout):
        await wechat.call(wechat.sdk(timeout=0.25).close, "b_cfault")
    wechat.env.sandbox.set_faults(FaultSettings())
    _status, answer = await wechat.call(wechat.sdk().query, out_trade_no="b_cfault")
    assert answer["trade_state"] == "CLOSED"  # the timed-out close took effect
    assert (await wechat.env.wallet("pay", code_url)).status_code == 409


async def test_the_shopper_can_pay_in_the_instant_before_a_close(wechat: WechatEnv) -> None:
    await wechat.native("b_race1", 700)
    wechat.env.clock.advance(timedelta(minutes=5))
    wechat.env.sandbox.set_faults(FaultSettings(pay_before_close_rate=1.0))
    status, answer = await wechat.call(wechat.sdk().close, "b_race1")
    assert (status, answer["code"]) == (400, "ORDERPAID")
    assert [(m.kind, m.amount) for m in wechat.env.sandbox.ledger("b_race1")] == [("capture", 700)]
    assert wechat.env.sandbox.trades("b_race1")[0].status == "SUCCESS"
    assert wechat.env.sandbox.faults.rate("pay_before_close", "wechat") == 1.0


async def _query_pattern(wechat: WechatEnv, seed: int) -> list[int]:
    wechat.env.sandbox.set_faults(FaultSettings(seed=seed, query_error_rate=0.5))
    sdk = wechat.sdk()
    return [(await wechat.call(sdk.query, out_trade_no="b_seed1"))[0] for _ in range(16)]


async def test_seeded_faults_replay_exactly(wechat: WechatEnv) -> None:
    await wechat.native("b_seed1")
    first = await _query_pattern(wechat, seed=7)
    second = await _query_pattern(wechat, seed=7)
    other = await _query_pattern(wechat, seed=8)
    assert first == second
    assert set(first) == {200, 500}
    assert other != first
