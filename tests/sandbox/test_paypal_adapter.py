"""payonce's PayPal adapter against the sandbox: tokens, lookups by request id, the unhappy paths.

The provider contract (test_provider_contract.py) holds every adapter to the same promises;
these are the ones only PayPal has: OAuth tokens on the injected clock, an order found again by
replaying its create, captures and refunds that time out, and webhooks it acknowledges unread.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import replace
from datetime import timedelta

import pytest
from paypal_merchant import Merchant
from sandbox_harness import START, Env, Stage, sandbox_on_stage

from payonce.adapters.clock import AdjustableClock
from payonce.adapters.providers.paypal import PaypalProvider
from payonce.bootstrap import SandboxLink, sandbox_providers
from payonce.domain.channels import Channel, Platform
from payonce.domain.money import Money
from payonce.domain.payment import ActionType
from payonce.errors import (
    NotificationRejected,
    ProviderRejected,
    ProviderRetryable,
    ProviderUnavailable,
)
from payonce.ports.provider import TradeRequest, TradeState
from payonce.sandbox import FaultSettings, SandboxKeys
from payonce.sandbox.signing import load_private_key, sign_rsa2

pytestmark = pytest.mark.asyncio(loop_scope="session")

PUBLIC = "http://127.0.0.1:9"  # nothing listens: deliveries are read from the sandbox's log
USD = Money(1234, "USD")


def _provider(env: Env, *, timeout_s: float = 10.0) -> PaypalProvider:
    providers = sandbox_providers(
        SandboxLink(env.url, env.keys), public_url=PUBLIC, clock=env.clock, timeout_s=timeout_s
    )
    provider = providers[Channel.PAYPAL]
    assert isinstance(provider, PaypalProvider)
    return provider


def _request(env: Env, number: str, amount: Money = USD) -> TradeRequest:
    return TradeRequest(
        out_trade_no=number,
        amount=amount,
        platform=Platform.WAP,
        subject="Tea",
        pay_deadline=env.clock.now() + timedelta(minutes=30),
        return_url="https://shop.example/pay/ord_1",
    )


def _methods(env: Env) -> list[str]:
    return [call.method for call in env.sandbox.calls() if call.channel == "paypal"]


async def test_create_answers_the_approve_link_as_a_redirect(env: Env) -> None:
    provider = _provider(env)
    assert [provider.supports(p, "USD") for p in Platform] == [True, True, True]
    assert not provider.supports(Platform.PC, "JPY")
    created = await provider.create(_request(env, "ad_1"))
    (trade,) = env.sandbox.trades(channel="paypal")
    assert created.provider_trade_no == trade.trade_no
    assert created.action.type is ActionType.REDIRECT_URL
    assert created.action.fields == {
        "redirect_url": f"{env.url}/paypal/checkoutnow?token={trade.trade_no}",
        "fallback_url": "https://shop.example/pay/ord_1",
    }
    assert created.action.expires_at == START + timedelta(minutes=30)
    with pytest.raises(ProviderRejected):
        await provider.create(_request(env, "ad_2", Money(100, "JPY")))


async def test_one_token_until_it_nears_expiry_and_the_webhook_pointed_at_payonce(
    env: Env, merchant: Merchant
) -> None:
    provider = _provider(env)
    await provider.create(_request(env, "ad_3"))
    await provider.query("ad_3")
    await provider.query("ad_3")
    assert _methods(env) == [
        "POST /v1/oauth2/token",
        "PATCH /v1/notifications/webhooks/{id}",
        "POST /v2/checkout/orders",
        "POST /v2/checkout/orders",
        "POST /v2/checkout/orders",
    ]
    webhook = await merchant.call("GET", f"/v1/notifications/webhooks/{env.keys.paypal.webhook_id}")
    assert webhook.json()["url"] == f"{PUBLIC}/api/notify/paypal"
    env.clock.advance(timedelta(hours=9) - timedelta(seconds=61))
    await provider.query("ad_3")
    assert _methods(env)[-1] == "POST /v2/checkout/orders"
    env.clock.advance(timedelta(seconds=1))  # within a minute of expiry: renewed first
    await provider.query("ad_3")
    assert _methods(env)[-4:-1] == [
        "POST /v2/checkout/orders",
        "POST /v1/oauth2/token",
        "PATCH /v1/notifications/webhooks/{id}",
    ]


async def test_a_refused_token_is_replaced_once_and_the_call_made_again(
    stage: Stage, keys: SandboxKeys, clock: AdjustableClock
) -> None:
    async with sandbox_on_stage(stage, keys, clock) as first:
        provider = _provider(first)
        await provider.create(_request(first, "ad_4"))
    # A restarted sandbox knows neither the token nor the order.
    async with sandbox_on_stage(stage, keys, clock) as second:
        assert (await provider.query("ad_4")).state is TradeState.NOT_FOUND
        assert [(c.method, c.code) for c in second.sandbox.calls()] == [
            ("POST /v2/checkout/orders", "401"),
            ("POST /v1/oauth2/token", "200"),
            ("PATCH /v1/notifications/webhooks/{id}", "200"),
            ("POST /v2/checkout/orders", "400"),
        ]


async def test_wrong_client_credentials_are_a_refusal(env: Env) -> None:
    provider = PaypalProvider(replace(_provider(env).settings, client_secret="wrong"), env.clock)
    with pytest.raises(ProviderRejected) as refused:
        await provider.create(_request(env, "ad_5"))
    assert refused.value.provider_code == "invalid_client"
    assert env.sandbox.trades(channel="paypal") == []


async def test_a_create_that_timed_out_is_found_by_its_request_id(env: Env) -> None:
    provider = _provider(env, timeout_s=0.3)
    await provider.query("warm-up")  # the token, before the fault
    env.sandbox.set_faults(FaultSettings(create_timeout_rate=1.0, timeout_hold_s=1.0))
    with pytest.raises(ProviderUnavailable):
        await provider.create(_request(env, "ad_6"))
    env.sandbox.set_faults(FaultSettings())
    found = await provider.query("ad_6")
    (trade,) = env.sandbox.trades(channel="paypal")
    assert (found.state, found.provider_trade_no, found.amount) == (
        TradeState.OPEN,
        trade.trade_no,
        USD,
    )


async def test_a_create_that_failed_is_not_found_and_lookups_create_nothing(env: Env) -> None:
    provider = _provider(env)
    await provider.query("warm-up")
    env.sandbox.set_faults(FaultSettings(create_error_rate=1.0))
    with pytest.raises(ProviderUnavailable):
        await provider.create(_request(env, "ad_7"))
    env.sandbox.set_faults(FaultSettings())
    assert (await provider.query("ad_7")).state is TradeState.NOT_FOUND
    assert (await provider.close("ad_7")).state is TradeState.CLOSED
    assert (await provider.capture("ad_7")).state is TradeState.NOT_FOUND
    assert env.sandbox.trades(channel="paypal") == []


async def test_a_capture_that_timed_out_is_not_made_twice(env: Env) -> None:
    provider = _provider(env)
    created = await provider.create(_request(env, "ad_8"))
    await env.wallet("pay", created.action.fields["redirect_url"])
    assert (await provider.query("ad_8")).state is TradeState.APPROVED
    env.sandbox.set_faults(FaultSettings(capture_timeout_rate=1.0, timeout_hold_s=1.0))
    with pytest.raises(ProviderUnavailable) as unanswered:
        await _provider(env, timeout_s=0.3).capture("ad_8")
    assert not isinstance(unanswered.value, ProviderRetryable)  # it may have been done
    env.sandbox.set_faults(FaultSettings(capture_error_rate=1.0))
    assert (await provider.query("ad_8")).state is TradeState.PAID
    assert (await provider.capture("ad_8")).state is TradeState.PAID  # no capture call made
    assert [m.kind for m in env.sandbox.ledger("ad_8")] == ["capture"]


async def test_an_expired_order_is_closed_and_cannot_be_captured(env: Env) -> None:
    provider = _provider(env)
    created = await provider.create(_request(env, "ad_9"))
    await env.wallet("pay", created.action.fields["redirect_url"])
    env.clock.advance(timedelta(hours=3))
    assert (await provider.query("ad_9")).state is TradeState.CLOSED
    assert (await provider.capture("ad_9")).state is TradeState.CLOSED
    assert env.sandbox.ledger() == []


async def test_close_decides_never_to_capture_and_the_approval_lapses(env: Env) -> None:
    """PayPal cannot void an order: the buyer may still approve it, and no money moves."""
    provider = _provider(env)
    created = await provider.create(_request(env, "ad_10"))
    assert (await provider.close("ad_10")).state is TradeState.CLOSED
    late = await env.wallet("pay", created.action.fields["redirect_url"])
    assert late.json()["status"] == "APPROVED"  # PayPal lets the buyer approve...
    assert (await provider.query("ad_10")).state is TradeState.APPROVED
    assert (await provider.close("ad_10")).state is TradeState.CLOSED
    env.clock.advance(timedelta(hours=3))
    assert (await provider.query("ad_10")).state is TradeState.CLOSED  # ...and it lapses
    assert env.sandbox.ledger() == []


async def test_refunds_by_number_in_part_and_in_full(env: Env) -> None:
    provider = _provider(env)
    with pytest.raises(ProviderRejected):
        await provider.refund("ad_11", "rf_0", USD)  # no such order
    created = await provider.create(_request(env, "ad_11"))
    with pytest.raises(ProviderRejected) as early:
        await provider.refund("ad_11", "rf_0", USD)
    assert early.value.provider_code == "ORDER_NOT_CAPTURED"
    await env.wallet("pay", created.action.fields["redirect_url"])
    assert (await provider.capture("ad_11")).state is TradeState.PAID
    first = await provider.refund("ad_11", "rf_1", Money(234, "USD"))
    assert (first.amount, first.completed) == (Money(234, "USD"), True)
    with pytest.raises(ProviderRejected) as reused:
        await provider.refund("ad_11", "rf_1", Money(1000, "USD"))
    assert reused.value.provider_code == "REQUEST_ID_REUSED"
    assert (await provider.query("ad_11")).state is TradeState.PAID  # partly refunded
    with pytest.raises(ProviderRejected) as over:
        await provider.refund("ad_11", "rf_2", Money(1001, "USD"))
    assert over.value.provider_code == "REFUND_AMOUNT_EXCEEDED"
    await provider.refund("ad_11", "rf_3", Money(1000, "USD"))
    assert (await provider.query("ad_11")).state is TradeState.REFUNDED
    assert (await provider.close("ad_11")).state is TradeState.REFUNDED
    assert [(m.kind, m.amount, m.reference) for m in env.sandbox.ledger("ad_11")][1:] == [
        ("refund", 234, "rf_1"),
        ("refund", 1000, "rf_3"),
    ]


async def test_a_refund_that_errs_moves_no_money(env: Env) -> None:
    provider = _provider(env)
    created = await provider.create(_request(env, "ad_12"))
    await env.wallet("pay", created.action.fields["redirect_url"])
    await provider.capture("ad_12")
    env.sandbox.set_faults(FaultSettings(refund_error_rate=1.0))
    with pytest.raises(ProviderUnavailable):
        await provider.refund("ad_12", "rf_1", USD)
    assert [m.kind for m in env.sandbox.ledger("ad_12")] == ["capture"]


async def test_after_paypal_forgets_the_create_request_id_the_order_id_still_finds_it(
    env: Env,
) -> None:
    """PayPal keeps a create's request id six hours; the order id we record, for years."""
    provider = _provider(env)
    created = await provider.create(_request(env, "ad_13"))
    await env.wallet("pay", created.action.fields["redirect_url"])
    await provider.capture("ad_13")
    env.clock.advance(timedelta(hours=6))
    assert (await provider.query("ad_13")).state is TradeState.NOT_FOUND
    order_id = created.provider_trade_no
    assert order_id is not None
    found = await provider.query("ad_13", provider_trade_no=order_id)
    assert (found.state, found.provider_trade_no) == (TradeState.PAID, order_id)
    refund = await provider.refund("ad_13", "rf_late", USD, provider_trade_no=order_id)
    assert (refund.amount, refund.completed) == (USD, True)
    assert [m.kind for m in env.sandbox.ledger("ad_13")] == ["capture", "refund"]
    with pytest.raises(ProviderUnavailable, match="is not ad_14"):  # another trade's order
        await provider.query("ad_14", provider_trade_no=order_id)


# -- webhooks -------------------------------------------------------------------------------


async def _events(env: Env, provider: PaypalProvider, number: str) -> dict[str, str]:
    """Approve, capture and refund one trade; the event type → notify id of what was sent."""
    created = await provider.create(_request(env, number))
    await env.wallet("pay", created.action.fields["redirect_url"])
    await provider.capture(number)
    await provider.refund(number, "rf", Money(100, "USD"))
    await env.sandbox.deliver_due()
    return {
        json.loads(d.body)["event_type"]: d.notify_id
        for d in env.sandbox.deliveries(number)
        if d.fault is None
    }


async def test_webhooks_parse_to_approval_and_capture_and_others_are_acknowledged(
    env: Env,
) -> None:
    provider = _provider(env)
    events = await _events(env, provider, "wh_1")
    (trade,) = env.sandbox.trades(channel="paypal")
    parsed = {}
    for event_type in ("CHECKOUT.ORDER.APPROVED", "PAYMENT.CAPTURE.COMPLETED"):
        outgoing = env.sandbox.notification("paypal", events[event_type])
        parsed[event_type] = provider.parse_notification(outgoing.headers, outgoing.body)
    approved, completed = parsed.values()
    assert (approved.state, approved.out_trade_no, approved.provider_trade_no) == (
        TradeState.APPROVED,
        "wh_1",
        trade.trade_no,
    )
    assert (completed.state, completed.amount, completed.provider_trade_no) == (
        TradeState.PAID,
        USD,
        trade.trade_no,
    )
    assert completed.notify_id == events["PAYMENT.CAPTURE.COMPLETED"]
    assert completed.merchant_id == env.keys.paypal.merchant_id

    refunded = env.sandbox.notification("paypal", events["PAYMENT.CAPTURE.REFUNDED"])
    with pytest.raises(NotificationRejected) as ignored:
        provider.parse_notification(refunded.headers, refunded.body)
    assert ignored.value.reason == "ignored"
    assert provider.refuse("ignored") == provider.acknowledge()
    assert (provider.acknowledge().status_code, provider.acknowledge().body) == (200, b"")
    assert provider.refuse("bad_signature").status_code == 400


async def test_webhooks_are_refused_unless_signed_for_us_and_fresh(env: Env) -> None:
    provider = _provider(env)
    events = await _events(env, provider, "wh_2")
    outgoing = env.sandbox.notification("paypal", events["PAYMENT.CAPTURE.COMPLETED"])
    headers, body = dict(outgoing.headers), outgoing.body

    def reason(changed_headers: dict[str, str], changed_body: bytes = body) -> str:
        with pytest.raises(NotificationRejected) as refused:
            provider.parse_notification(changed_headers, changed_body)
        return refused.value.reason

    unsigned = {k: v for k, v in headers.items() if k != "PAYPAL-TRANSMISSION-SIG"}
    assert reason(unsigned) == "unsigned"
    assert reason({**headers, "PAYPAL-AUTH-ALGO": "SHA1withRSA"}) == "unsupported_algorithm"
    assert reason({**headers, "PAYPAL-TRANSMISSION-SIG": "not base64!"}) == "bad_signature"
    assert reason(headers, body.replace(b'"12.34"', b'"0.01"')) == "bad_signature"
    # Signed for another subscription: our webhook id makes the signature fail.
    other = PaypalProvider(replace(provider.settings, webhook_id="8PT597110X687430L"), env.clock)
    with pytest.raises(NotificationRejected) as foreign:
        other.parse_notification(headers, body)
    assert foreign.value.reason == "bad_signature"

    # Freshness: five minutes either way of our clock.
    env.clock.advance(timedelta(minutes=5))
    assert provider.parse_notification(headers, body).state is TradeState.PAID
    env.clock.advance(timedelta(seconds=1))
    assert reason(headers) == "stale"


async def test_a_signed_body_that_is_not_an_event_is_malformed(env: Env) -> None:
    provider = _provider(env)
    key = load_private_key(env.keys.paypal.webhook_private_key_pem)

    def signed(body: bytes) -> dict[str, str]:
        message = f"t-1|2026-11-24T02:00:00Z|{env.keys.paypal.webhook_id}|{zlib.crc32(body)}"
        return {
            "paypal-transmission-id": "t-1",
            "paypal-transmission-time": "2026-11-24T02:00:00Z",
            "paypal-transmission-sig": sign_rsa2(key, message),
            "paypal-auth-algo": "SHA256withRSA",
        }

    for body in (b"not json", b"[]", b'{"id": "WH-1", "resource": {}}'):
        with pytest.raises(NotificationRejected) as refused:
            provider.parse_notification(signed(body), body)
        assert refused.value.reason == "malformed"
    no_number = json.dumps(
        {
            "id": "WH-2",
            "event_type": "PAYMENT.CAPTURE.COMPLETED",
            "resource": {"amount": {"currency_code": "USD", "value": "1.00"}},
        }
    ).encode()
    with pytest.raises(NotificationRejected) as refused:
        provider.parse_notification(signed(no_number), no_number)
    assert refused.value.reason == "malformed"


async def test_a_payee_that_is_not_us_is_a_merchant_mismatch(env: Env) -> None:
    provider = _provider(env)
    events = await _events(env, provider, "wh_3")
    forged = env.sandbox.notification(
        "paypal", events["PAYMENT.CAPTURE.COMPLETED"], "other_merchant"
    )
    with pytest.raises(NotificationRejected) as refused:
        provider.parse_notification(forged.headers, forged.body)
    assert refused.value.reason == "merchant_mismatch"
