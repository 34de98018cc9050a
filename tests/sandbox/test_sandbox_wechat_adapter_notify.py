"""The WeChat Pay adapter's notification checks: every way a notification is refused, and replies.

Notifications come from the sandbox (genuine ones), or are made here with the platform's real
keys, so that only the adapter's own checks can stop them.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from wechat_harness import WechatEnv

from payonce.adapters.providers.wechat import WechatProvider
from payonce.bootstrap import SandboxLink, sandbox_providers
from payonce.domain.channels import Channel, Platform
from payonce.domain.money import Money
from payonce.errors import NotificationRejected
from payonce.ports.provider import TradeRequest, TradeState
from payonce.sandbox import WechatCredentials
from payonce.sandbox.notifier import Outgoing
from payonce.sandbox.signing import load_private_key
from payonce.sandbox.wechat_wire import dumps, encrypt_resource, signed_headers

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _provider(wechat: WechatEnv) -> WechatProvider:
    link = SandboxLink(wechat.env.url, wechat.env.keys)
    provider = sandbox_providers(
        link, public_url="http://127.0.0.1:9", clock=wechat.env.clock, timeout_s=10.0
    )[Channel.WECHAT]
    assert isinstance(provider, WechatProvider)
    return provider


async def _genuine(wechat: WechatEnv, provider: WechatProvider, number: str) -> Outgoing:
    """A paid trade's notification, as WeChat would send it now."""
    created = await provider.create(
        TradeRequest(
            out_trade_no=number,
            amount=Money(1234, "CNY"),
            platform=Platform.PC,
            subject="Notified tea",
            pay_deadline=wechat.env.clock.now() + timedelta(minutes=30),
        )
    )
    await wechat.env.wallet("pay", created.action.fields["qr_code"])
    await wechat.env.sandbox.deliver_due()  # to nowhere: the id is in the delivery log
    [delivery] = wechat.env.sandbox.deliveries(number)
    return wechat.env.sandbox.notification("wechat", delivery.notify_id)


def _resource(creds: WechatCredentials, **changes: Any) -> dict[str, Any]:
    return {
        "appid": creds.appid,
        "mchid": creds.mchid,
        "out_trade_no": "p_made_1",
        "transaction_id": "4200000000202611240000000001",
        "trade_type": "NATIVE",
        "trade_state": "SUCCESS",
        "success_time": "2026-11-24T10:00:00+08:00",
        "amount": {"total": 1234, "currency": "CNY", "payer_total": 1234},
        **changes,
    }


def _made(
    creds: WechatCredentials,
    resource: dict[str, Any],
    *,
    at: datetime,
    event_type: str = "TRANSACTION.SUCCESS",
    apiv3_key: str | None = None,
    body: bytes | None = None,
) -> tuple[dict[str, str], bytes]:
    """A notification signed and encrypted with the platform's and merchant's real keys."""
    sealed = encrypt_resource(
        apiv3_key or creds.apiv3_key,
        dumps(resource),
        nonce="0123456789ab",
        associated_data="transaction",
    )
    envelope = {
        "id": "EV-made-0001",
        "create_time": "2026-11-24T10:00:00+08:00",
        "resource_type": "encrypt-resource",
        "event_type": event_type,
        "resource": {"original_type": "transaction", **sealed},
    }
    content = dumps(envelope) if body is None else body
    signer = load_private_key(creds.platform_private_key_pem)
    headers = signed_headers(signer, creds.platform_public_key_id, content, at=at, nonce="N" * 32)
    return headers, content


async def test_a_genuine_notification_parses_with_headers_in_any_case(wechat: WechatEnv) -> None:
    provider = _provider(wechat)
    outgoing = await _genuine(wechat, provider, "p_genuine1")
    lowered = {name.lower(): value for name, value in outgoing.headers.items()}
    note = provider.parse_notification(lowered, outgoing.body)  # as FastAPI hands them over
    assert note == provider.parse_notification(outgoing.headers, outgoing.body)
    assert (note.channel, note.out_trade_no, note.state, note.amount) == (
        Channel.WECHAT,
        "p_genuine1",
        TradeState.PAID,
        Money(1234, "CNY"),
    )
    assert note.notify_id == json.loads(outgoing.body)["id"]
    assert note.merchant_id == wechat.credentials.mchid
    assert note.provider_trade_no == wechat.env.sandbox.trades("p_genuine1")[0].trade_no


async def test_a_notification_is_fresh_for_five_minutes_either_way(wechat: WechatEnv) -> None:
    provider = _provider(wechat)
    outgoing = await _genuine(wechat, provider, "p_fresh01")
    wechat.env.clock.advance(timedelta(minutes=5))
    assert provider.parse_notification(outgoing.headers, outgoing.body).out_trade_no == "p_fresh01"
    wechat.env.clock.advance(timedelta(seconds=1))
    with pytest.raises(NotificationRejected) as stale:
        provider.parse_notification(outgoing.headers, outgoing.body)
    assert stale.value.reason == "stale"
    creds = wechat.credentials
    future = wechat.env.clock.now() + timedelta(minutes=5, seconds=1)
    headers, body = _made(creds, _resource(creds), at=future)
    with pytest.raises(NotificationRejected) as early:
        provider.parse_notification(headers, body)
    assert early.value.reason == "stale"


@pytest.mark.parametrize(
    ("header", "value", "reason"),
    [
        ("Wechatpay-Signature", None, "unsigned"),
        ("Wechatpay-Signature-Type", None, "unsupported_algorithm"),
        ("Wechatpay-Signature-Type", "WECHATPAY2-SM2-WITH-SM3", "unsupported_algorithm"),
        ("Wechatpay-Serial", "PUB_KEY_ID_0000000000000000000000000000", "bad_signature"),
        ("Wechatpay-Serial", "5157F09EFDC096DE15EBE81A47057A7232F1B8E1", "bad_signature"),
        ("Wechatpay-Timestamp", "1795485601", "bad_signature"),
        ("Wechatpay-Nonce", "another-nonce", "bad_signature"),
        ("Wechatpay-Signature", "not base64 at all!", "bad_signature"),
    ],
)
async def test_a_notification_with_a_header_missing_or_changed_is_refused(
    wechat: WechatEnv, header: str, value: str | None, reason: str
) -> None:
    provider = _provider(wechat)
    outgoing = await _genuine(wechat, provider, "p_header1")
    headers = dict(outgoing.headers)
    if value is None:
        del headers[header]
    else:
        headers[header] = value
    with pytest.raises(NotificationRejected) as rejected:
        provider.parse_notification(headers, outgoing.body)
    assert rejected.value.reason == reason


async def test_a_notification_whose_body_changed_is_refused(wechat: WechatEnv) -> None:
    provider = _provider(wechat)
    outgoing = await _genuine(wechat, provider, "p_body_01")
    envelope = json.loads(outgoing.body)
    envelope["summary"] = "changed"
    for body, reason in (
        (dumps(envelope), "bad_signature"),
        (outgoing.body + b" ", "bad_signature"),
        (b"\xff\xfe not json", "malformed"),
        (b"[]", "malformed"),
        (dumps({**envelope, "resource": "plain"}), "malformed"),
    ):
        with pytest.raises(NotificationRejected) as rejected:
            provider.parse_notification(outgoing.headers, body)
        assert rejected.value.reason == reason, body


async def test_validly_signed_notifications_our_checks_refuse(wechat: WechatEnv) -> None:
    provider = _provider(wechat)
    creds = wechat.credentials
    now = wechat.env.clock.now()
    other_key = WechatCredentials.generate().apiv3_key
    cases: list[tuple[tuple[dict[str, str], bytes], str]] = [
        (_made(creds, _resource(creds), at=now, apiv3_key=other_key), "bad_signature"),
        (_made(creds, _resource(creds), at=now, event_type="REFUND.SUCCESS"), "unsupported_event"),
        (_made(creds, _resource(creds, mchid="1900009999"), at=now), "merchant_mismatch"),
        (_made(creds, _resource(creds, appid="wx0000000000000000"), at=now), "merchant_mismatch"),
        (_made(creds, _resource(creds, trade_state="NOTPAY"), at=now), "malformed"),
        (_made(creds, _resource(creds, out_trade_no=""), at=now), "malformed"),
        (_made(creds, _resource(creds, amount={"total": "12.34"}), at=now), "amount_mismatch"),
        (
            _made(creds, _resource(creds, amount={"total": 1234, "currency": "XYZ"}), at=now),
            "amount_mismatch",
        ),
        (_made(creds, _resource(creds), at=now, body=b"{}"), "malformed"),
    ]
    for (headers, body), reason in cases:
        with pytest.raises(NotificationRejected) as rejected:
            provider.parse_notification(headers, body)
        assert rejected.value.reason == reason, body
    # The same notification, untouched, is accepted: the refusals above are the checks' doing.
    headers, body = _made(creds, _resource(creds), at=now)
    note = provider.parse_notification(headers, body)
    assert (note.notify_id, note.out_trade_no, note.amount) == (
        "EV-made-0001",
        "p_made_1",
        Money(1234, "CNY"),
    )


async def test_the_replies_wechat_reads(wechat: WechatEnv) -> None:
    provider = _provider(wechat)
    ack = provider.acknowledge()
    assert (ack.status_code, json.loads(ack.body), ack.media_type) == (
        200,
        {"code": "SUCCESS", "message": "OK"},
        "application/json",
    )
    no = provider.refuse("bad_signature")
    assert (no.status_code, json.loads(no.body), no.media_type) == (
        400,
        {"code": "FAIL", "message": "bad_signature"},
        "application/json",
    )
