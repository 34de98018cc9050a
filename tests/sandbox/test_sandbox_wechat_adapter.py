"""The WeChat Pay adapter against the sandbox, beyond the shared contract.

What the contract cannot reach (it closes at once, and WeChat refuses to close an order in its
first five minutes): closing after five minutes, unopened, scanned and paid. Also each
platform's action, every trade state, refunds, and how each failure is classified.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from wechat_harness import WechatEnv

from payonce.adapters.providers.wechat import CLOSE_TOO_SOON, WechatProvider
from payonce.bootstrap import SandboxLink, sandbox_providers
from payonce.domain.channels import Channel, Platform
from payonce.domain.money import Money
from payonce.domain.payment import ActionType
from payonce.errors import ProviderRejected, ProviderUnavailable
from payonce.ports.provider import TradeRequest, TradeState
from payonce.sandbox import FaultSettings, WechatCredentials
from payonce.sandbox.wechat import WechatChannel

pytestmark = pytest.mark.asyncio(loop_scope="session")

NOWHERE = "http://127.0.0.1:9"
RETURN_URL = "http://127.0.0.1:9/pay/ord_adapter"


def _provider(wechat: WechatEnv, *, timeout_s: float = 10.0, **changes: Any) -> WechatProvider:
    link = SandboxLink(wechat.env.url, wechat.env.keys)
    providers = sandbox_providers(
        link, public_url=NOWHERE, clock=wechat.env.clock, timeout_s=timeout_s
    )
    provider = providers[Channel.WECHAT]
    assert isinstance(provider, WechatProvider)
    if changes:
        return WechatProvider(replace(provider.settings, **changes), wechat.env.clock)
    return provider


def _request(
    wechat: WechatEnv,
    out_trade_no: str,
    platform: Platform = Platform.PC,
    *,
    deadline: timedelta = timedelta(minutes=30),
    return_url: str | None = RETURN_URL,
) -> TradeRequest:
    return TradeRequest(
        out_trade_no=out_trade_no,
        amount=Money(1234, "CNY"),
        platform=platform,
        subject="Adapter tea",
        pay_deadline=wechat.env.clock.now() + deadline,
        return_url=return_url,
    )


def _captures(wechat: WechatEnv, out_trade_no: str) -> list[tuple[str, int]]:
    return [(m.kind, m.amount) for m in wechat.env.sandbox.ledger(out_trade_no)]


async def test_close_is_refused_for_five_minutes_then_makes_the_trade_unpayable(
    wechat: WechatEnv,
) -> None:
    provider = _provider(wechat)
    created = await provider.create(_request(wechat, "a_close_1"))
    with pytest.raises(ProviderRejected) as refused:
        await provider.close("a_close_1")
    assert refused.value.provider_code == CLOSE_TOO_SOON
    assert (await provider.query("a_close_1")).state is TradeState.OPEN
    wechat.env.clock.advance(timedelta(minutes=5))
    assert (await provider.close("a_close_1")).state is TradeState.CLOSED
    late = await wechat.env.wallet("pay", created.action.fields["qr_code"])
    assert late.status_code == 409
    assert (await provider.query("a_close_1")).state is TradeState.CLOSED
    assert (await provider.close("a_close_1")).state is TradeState.CLOSED  # again: same answer
    assert _captures(wechat, "a_close_1") == []


async def test_close_of_a_scanned_trade_after_five_minutes(wechat: WechatEnv) -> None:
    provider = _provider(wechat)
    created = await provider.create(_request(wechat, "a_close_2", Platform.APP))
    await wechat.env.wallet("scan", created.action.fields["prepay_id"])
    wechat.env.clock.advance(timedelta(minutes=7))
    assert (await provider.close("a_close_2")).state is TradeState.CLOSED
    late = await wechat.env.wallet("pay", created.action.fields["prepay_id"])
    assert late.status_code == 409
    assert _captures(wechat, "a_close_2") == []


@pytest.mark.parametrize("after", [timedelta(0), timedelta(minutes=6)])
async def test_close_of_a_paid_trade_reports_the_payment(
    wechat: WechatEnv, after: timedelta
) -> None:
    provider = _provider(wechat)
    created = await provider.create(_request(wechat, "a_close_3"))
    await wechat.env.wallet("pay", created.action.fields["qr_code"])
    wechat.env.clock.advance(after)
    closed = await provider.close("a_close_3")
    assert (closed.state, closed.amount) == (TradeState.PAID, Money(1234, "CNY"))
    assert closed.provider_trade_no == wechat.env.sandbox.trades("a_close_3")[0].trade_no
    assert _captures(wechat, "a_close_3") == [("capture", 1234)]


async def test_close_of_a_trade_wechat_never_had(wechat: WechatEnv) -> None:
    assert (await _provider(wechat).close("a_never_created")).state is TradeState.NOT_FOUND


async def test_an_h5_order_names_the_shoppers_ip(wechat: WechatEnv) -> None:
    provider = _provider(wechat)
    request = replace(_request(wechat, "a_ip_1", Platform.WAP), shopper_ip="203.0.113.7")
    await provider.create(request)
    channel = wechat.env.sandbox.channel("wechat")
    assert isinstance(channel, WechatChannel)
    named = channel.terms("a_ip_1")
    assert named is not None
    assert named.payer_client_ip == "203.0.113.7"
    await provider.create(replace(request, out_trade_no="a_ip_2", shopper_ip=None))
    fallback = channel.terms("a_ip_2")
    assert fallback is not None
    assert fallback.payer_client_ip == provider.settings.h5_payer_ip


async def test_each_platform_gets_its_action(wechat: WechatEnv) -> None:
    provider = _provider(wechat)
    now = wechat.env.clock.now()
    pc = (await provider.create(_request(wechat, "a_act_pc", deadline=timedelta(hours=3)))).action
    assert pc.type is ActionType.QR_CODE
    assert pc.fields["qr_code"].startswith("weixin://wxpay/bizpayurl?pr=")
    assert pc.expires_at == now + timedelta(hours=2)  # a code_url lasts two hours

    wap = (await provider.create(_request(wechat, "a_act_wap", Platform.WAP))).action
    assert wap.type is ActionType.LAUNCH_URL
    assert wap.fields["launch_url"].startswith(f"{wechat.env.url}/wechat/h5/checkmweb?")
    assert wap.fields["fallback_url"] == RETURN_URL
    assert wap.expires_at == now + timedelta(minutes=5)  # an h5_url lasts five minutes
    bare = await provider.create(_request(wechat, "a_act_wap2", Platform.WAP, return_url=None))
    assert set(bare.action.fields) == {"launch_url"}

    app = (await provider.create(_request(wechat, "a_act_app", Platform.APP))).action
    assert app.type is ActionType.APP_ORDER
    assert app.expires_at == now + timedelta(minutes=30)  # the order's deadline comes first
    fields = app.fields
    assert set(fields) == {
        "prepay_id",
        "appid",
        "partnerid",
        "prepayid",
        "package",
        "noncestr",
        "timestamp",
        "sign",
    }
    creds = wechat.credentials
    assert (fields["appid"], fields["partnerid"], fields["package"]) == (
        creds.appid,
        creds.mchid,
        "Sign=WXPay",
    )
    assert fields["prepayid"] == fields["prepay_id"]
    assert fields["timestamp"] == str(int(now.timestamp()))
    # The WeChat app checks the signed pay request before it pays.
    paid = await wechat.env.wallet("pay", json.dumps(fields))
    assert (paid.status_code, paid.json()["out_trade_no"]) == (200, "a_act_app")
    for number in ("a_act_pc", "a_act_wap", "a_act_wap2"):
        assert (await provider.query(number)).state is TradeState.OPEN


async def test_query_tells_every_state(wechat: WechatEnv) -> None:
    provider = _provider(wechat)
    assert (await provider.query("a_state_none")).state is TradeState.NOT_FOUND
    declined = await provider.create(_request(wechat, "a_state_err"))
    await wechat.env.http.post(
        f"{wechat.env.url}/wechat/wallet/decline", json={"code": declined.action.fields["qr_code"]}
    )
    assert (await provider.query("a_state_err")).state is TradeState.CLOSED  # PAYERROR
    await provider.create(_request(wechat, "a_state_exp", deadline=timedelta(minutes=1)))
    paid = await provider.create(_request(wechat, "a_state_paid"))
    await wechat.env.wallet("pay", paid.action.fields["qr_code"])
    snapshot = await provider.query("a_state_paid")
    assert (snapshot.state, snapshot.amount) == (TradeState.PAID, Money(1234, "CNY"))
    assert snapshot.provider_trade_no is not None
    assert len(snapshot.provider_trade_no) == 28
    assert await provider.capture("a_state_paid") == snapshot
    wechat.env.clock.advance(timedelta(minutes=1))
    assert (await provider.query("a_state_exp")).state is TradeState.CLOSED
    await provider.refund("a_state_paid", "a_rf_state", Money(1234, "CNY"))
    assert (await provider.query("a_state_paid")).state is TradeState.REFUNDED


async def test_refunds_and_their_refusals(wechat: WechatEnv) -> None:
    provider = _provider(wechat)
    paid = await provider.create(_request(wechat, "a_refund1"))
    await wechat.env.wallet("pay", paid.action.fields["qr_code"])
    await provider.create(_request(wechat, "a_refund2"))

    wechat.env.sandbox.set_faults(FaultSettings(refund_error_rate=1.0))
    with pytest.raises(ProviderUnavailable):
        await provider.refund("a_refund1", "a_rf_1", Money(234, "CNY"))
    wechat.env.sandbox.set_faults(FaultSettings())
    assert _captures(wechat, "a_refund1") == [("capture", 1234)]

    result = await provider.refund("a_refund1", "a_rf_1", Money(234, "CNY"))
    assert (result.refund_no, result.amount, result.completed) == (
        "a_rf_1",
        Money(234, "CNY"),
        True,
    )
    with pytest.raises(ProviderRejected) as too_much:
        await provider.refund("a_refund1", "a_rf_2", Money(1001, "CNY"))
    assert too_much.value.provider_code == "INVALID_REQUEST"
    with pytest.raises(ProviderRejected) as unpaid:
        await provider.refund("a_refund2", "a_rf_3", Money(1, "CNY"))
    assert unpaid.value.provider_code == "INVALID_REQUEST"
    with pytest.raises(ProviderRejected) as unknown:
        await provider.refund("a_refund_none", "a_rf_4", Money(1, "CNY"))
    assert unknown.value.provider_code == "ORDER_NOT_EXIST"
    assert _captures(wechat, "a_refund1") == [("capture", 1234), ("refund", 234)]


async def test_a_refusal_of_our_signature_is_definite(wechat: WechatEnv) -> None:
    stranger = WechatCredentials.generate()
    provider = _provider(wechat, merchant_private_key_pem=stranger.merchant_private_key_pem)
    with pytest.raises(ProviderRejected) as refused:
        await provider.create(_request(wechat, "a_signed"))
    assert refused.value.provider_code == "SIGN_ERROR"
    assert wechat.env.sandbox.trades() == []


async def test_an_answer_we_cannot_verify_is_an_unknown_outcome(wechat: WechatEnv) -> None:
    stranger = WechatCredentials.generate()
    provider = _provider(wechat, platform_public_key_pem=stranger.platform_public_key_pem)
    with pytest.raises(ProviderUnavailable, match="failed to verify the signature"):
        await provider.create(_request(wechat, "a_unverif"))
    # It was unknown indeed: WeChat took the order.
    assert [t.status for t in wechat.env.sandbox.trades("a_unverif")] == ["NOTPAY"]


async def test_outages_are_unknown_outcomes(wechat: WechatEnv) -> None:
    with pytest.raises(ProviderUnavailable, match="ConnectionError"):
        await _provider(wechat, gateway_url=NOWHERE).query("a_outage")
    provider = _provider(wechat, timeout_s=0.3)
    wechat.env.sandbox.set_faults(FaultSettings(create_error_rate=1.0))
    with pytest.raises(ProviderUnavailable, match="SYSTEM_ERROR"):
        await provider.create(_request(wechat, "a_outage"))
    wechat.env.sandbox.set_faults(FaultSettings(close_timeout_rate=1.0, timeout_hold_s=1.0))
    with pytest.raises(ProviderUnavailable, match="Timeout"):
        await provider.close("a_outage")
    wechat.env.sandbox.set_faults(FaultSettings(query_error_rate=1.0))
    with pytest.raises(ProviderUnavailable):
        await provider.capture("a_outage")
