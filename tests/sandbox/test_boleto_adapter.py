"""payonce's boleto adapter against the sandbox PSP: what the contract suite does not reach.

The voucher's due date and expiry, a retried create, every charge status, close's answers,
refusals, and the webhook checks (signature, freshness, account, event kinds).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from boleto_harness import Psp, boleto_channel, walk_to
from sandbox_harness import Env

from payonce.adapters.providers.boleto import BoletoProvider
from payonce.bootstrap import SandboxLink, sandbox_providers
from payonce.domain.bank_days import SAO_PAULO
from payonce.domain.channels import Channel, Platform
from payonce.domain.money import Money
from payonce.domain.payment import ActionType
from payonce.errors import NotificationRejected, ProviderRejected, ProviderUnavailable
from payonce.ports.provider import TradeRequest, TradeState
from payonce.sandbox.faults import FaultSettings

pytestmark = pytest.mark.asyncio(loop_scope="session")

NOWHERE = "http://127.0.0.1:9"


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SAO_PAULO)


def provider(env: Env, *, timeout_s: float = 10.0) -> BoletoProvider:
    providers = sandbox_providers(
        SandboxLink(env.url, env.keys), public_url=NOWHERE, clock=env.clock, timeout_s=timeout_s
    )
    boleto = providers[Channel.BOLETO]
    assert isinstance(boleto, BoletoProvider)
    return boleto


def request(env: Env, out_trade_no: str, deadline: datetime | None = None) -> TradeRequest:
    return TradeRequest(
        out_trade_no=out_trade_no,
        amount=Money(3998, "BRL"),
        platform=Platform.PC,
        subject="Order tea",
        pay_deadline=deadline or env.clock.now() + timedelta(minutes=30),
    )


async def _paid(env: Env, out_trade_no: str) -> BoletoProvider:
    boleto = provider(env)
    created = await boleto.create(request(env, out_trade_no))
    assert (await env.wallet("pay", created.action.fields["barcode"])).status_code == 200
    confirm_at = boleto_channel(env).confirmation_at(out_trade_no)
    assert confirm_at is not None
    await walk_to(env, confirm_at)
    return boleto


async def test_the_voucher_is_due_on_the_deadlines_date_and_payable_through_a_business_day(
    env: Env,
) -> None:
    boleto = provider(env)
    # The order's deadline falls on a Saturday: due that day, payable through Monday.
    created = await boleto.create(request(env, "a_1", local("2026-11-28T10:00:00")))
    action = created.action
    assert action.type is ActionType.VOUCHER
    [charge] = (await Psp(env).by_code("a_1")).json()["data"]
    assert created.provider_trade_no == charge["id"]
    assert action.fields == {
        "digitable_line": charge["boleto"]["digitable_line"],
        "barcode": charge["boleto"]["barcode"],
        "due_date": "2026-11-28",
        "voucher_url": charge["boleto"]["url"],
    }
    assert action.expires_at == local("2026-12-01T00:00:00")
    # The default order deadline (30 minutes on, still Monday in São Paulo): due today.
    today = await boleto.create(request(env, "a_2"))
    assert today.action.fields["due_date"] == "2026-11-23"
    assert today.action.expires_at == local("2026-11-24T00:00:00")


async def test_a_create_retried_after_a_time_out_answers_the_same_voucher(env: Env) -> None:
    env.sandbox.set_faults(FaultSettings(create_timeout_rate=1.0, timeout_hold_s=1.0))
    with pytest.raises(ProviderUnavailable):
        await provider(env, timeout_s=0.3).create(request(env, "a_3"))
    env.sandbox.set_faults(FaultSettings())
    retried = await provider(env).create(request(env, "a_3"))
    [charge] = (await Psp(env).by_code("a_3")).json()["data"]
    assert retried.provider_trade_no == charge["id"]
    assert retried.action.fields["barcode"] == charge["boleto"]["barcode"]
    assert len(env.sandbox.trades("a_3")) == 1


async def test_a_create_with_another_amount_is_refused(env: Env) -> None:
    boleto = provider(env)
    await boleto.create(request(env, "a_4"))
    other = TradeRequest("a_4", Money(1, "BRL"), Platform.PC, "x", env.clock.now())
    with pytest.raises(ProviderRejected) as refused:
        await boleto.create(other)
    assert refused.value.provider_code == "code_conflict"


async def test_query_reads_every_charge_status(env: Env) -> None:
    boleto = provider(env)
    assert (await boleto.query("a_none")).state is TradeState.NOT_FOUND
    await boleto.create(request(env, "a_5"))
    assert (await boleto.query("a_5")).state is TradeState.OPEN
    paid = await _paid(env, "a_6")
    snapshot = await paid.query("a_6")
    assert (snapshot.state, snapshot.amount) == (TradeState.PAID, Money(3998, "BRL"))
    # Unpaid past its last payable day, the first voucher expired.
    assert (await boleto.query("a_5")).state is TradeState.CLOSED
    partly = await paid.refund("a_6", "rf_1", Money(1000, "BRL"))
    assert (partly.refund_no, partly.amount, partly.completed) == (
        "rf_1",
        Money(1000, "BRL"),
        True,
    )
    assert (await paid.query("a_6")).state is TradeState.PAID
    await paid.refund("a_6", "rf_2", Money(2998, "BRL"))
    assert (await paid.query("a_6")).state is TradeState.REFUNDED
    with pytest.raises(ProviderRejected) as spent:
        await paid.refund("a_6", "rf_3", Money(1, "BRL"))
    assert spent.value.provider_code == "charge_not_paid"  # nothing left: refunded in full
    with pytest.raises(ProviderRejected) as unknown:
        await paid.refund("a_none", "rf_4", Money(1, "BRL"))
    assert unknown.value.provider_code == "not_found"


async def test_close_refuses_an_open_voucher_and_reports_the_rest(env: Env) -> None:
    boleto = provider(env)
    # Never issued (an unanswered create that did nothing): nothing anyone could pay.
    assert (await boleto.close("a_7")).state is TradeState.NOT_FOUND
    assert [c.method for c in env.sandbox.calls("a_7")] == ["GET /charges"]
    await boleto.create(request(env, "a_8"))
    with pytest.raises(ProviderRejected) as refused:
        await boleto.close("a_8")
    assert refused.value.provider_code == "charge_not_cancellable"
    paid = await _paid(env, "a_9")
    assert (await paid.close("a_9")).state is TradeState.PAID
    assert (await boleto.close("a_8")).state is TradeState.CLOSED  # expired meanwhile
    assert [m.kind for m in env.sandbox.ledger("a_9")] == ["capture"]


async def test_a_wrong_key_is_a_refusal_and_an_outage_is_unknown(env: Env) -> None:
    settings = provider(env).settings
    wrong = BoletoProvider(replace(settings, api_key="sk_test_wrong"), env.clock)
    with pytest.raises(ProviderRejected) as refused:
        await wrong.query("a_10")
    assert refused.value.provider_code == "unauthorized"
    env.sandbox.set_faults(FaultSettings(query_error_rate=1.0))
    with pytest.raises(ProviderUnavailable):
        await provider(env).query("a_10")
    gone = BoletoProvider(replace(settings, api_url=f"{NOWHERE}/boleto/v1"), env.clock)
    with pytest.raises(ProviderUnavailable):
        await gone.create(request(env, "a_10"))


def _signed(env: Env, event: dict[str, Any], *, at: datetime | None = None) -> dict[str, Any]:
    body = json.dumps(event).encode()
    stamp = int((at or env.clock.now()).timestamp())
    secret = env.keys.boleto.webhook_secret.encode()
    digest = hmac.new(secret, str(stamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"headers": {"X-Boleto-Signature": f"t={stamp},v1={digest}"}, "body": body}


async def test_webhooks_are_read_by_the_charge_they_carry(env: Env) -> None:
    boleto = await _paid(env, "a_11")
    await boleto.refund("a_11", "rf_11", Money(3998, "BRL"))
    await env.sandbox.deliver_due()
    events = [d.notify_id for d in env.sandbox.deliveries("a_11") if d.attempt == 1]
    notes = []
    for event_id in events:
        outgoing = env.sandbox.notification("boleto", event_id)
        notes.append(boleto.parse_notification(outgoing.headers, outgoing.body))
    # charge.paid says PAID; charge.refunded carries the charge refunded in full.
    assert [(n.notify_id, n.state, n.amount) for n in notes] == [
        (events[0], TradeState.PAID, Money(3998, "BRL")),
        (events[1], TradeState.REFUNDED, Money(3998, "BRL")),
    ]
    assert {n.merchant_id for n in notes} == {env.keys.boleto.account_id}

    genuine = json.loads(env.sandbox.notification("boleto", events[0]).body)
    expected: list[tuple[dict[str, Any], str]] = [
        ({**genuine, "type": "account.updated"}, "unsupported_event"),
        ({**genuine, "data": {**genuine["data"], "status": "chargedback"}}, "malformed"),
        ({**genuine, "account": None}, "merchant_mismatch"),
        ({**genuine, "id": ""}, "malformed"),
    ]
    for event, reason in expected:
        with pytest.raises(NotificationRejected) as rejected:
            boleto.parse_notification(**_signed(env, event))
        assert rejected.value.reason == reason
    with pytest.raises(NotificationRejected) as early:
        boleto.parse_notification(
            **_signed(env, genuine, at=env.clock.now() + timedelta(minutes=6))
        )
    assert early.value.reason == "stale"
    assert (
        boleto.parse_notification(
            **_signed(env, genuine, at=env.clock.now() - timedelta(minutes=4))
        ).state
        is TradeState.PAID
    )


async def test_a_webhook_signature_is_checked_before_anything_else(env: Env) -> None:
    boleto = await _paid(env, "a_12")
    await env.sandbox.deliver_due()
    [delivery] = env.sandbox.deliveries("a_12")
    outgoing = env.sandbox.notification("boleto", delivery.notify_id)
    header = outgoing.headers["X-Boleto-Signature"]
    stamp, v1 = header.split(",")
    cases = {
        "unsigned": {},
        "unsupported_algorithm": {"X-Boleto-Signature": f"{stamp},v0=abc"},
        "malformed": {"X-Boleto-Signature": f"t=soon,{v1}"},
        "bad_signature": {"X-Boleto-Signature": f"{stamp},v1={'0' * 64}"},
    }
    # A stamp of non-ASCII digits ("²" passes str.isdigit) is malformed, not a crash.
    superscript = {"X-Boleto-Signature": f"t=1²,{v1}"}
    with pytest.raises(NotificationRejected) as odd:
        boleto.parse_notification(superscript, outgoing.body)
    assert odd.value.reason == "malformed"
    assert boleto.settings.webhook_secret not in repr(boleto.settings)
    assert boleto.settings.api_key not in repr(boleto.settings)
    for reason, headers in cases.items():
        with pytest.raises(NotificationRejected) as rejected:
            boleto.parse_notification(headers, outgoing.body)
        assert rejected.value.reason == reason
    # While the PSP rolls its secret it may send two v1 values: one matching is enough.
    rolled = {"x-boleto-signature": f"{stamp},v1={'0' * 64},{v1}"}
    assert boleto.parse_notification(rolled, outgoing.body).notify_id == delivery.notify_id
    with pytest.raises(NotificationRejected) as garbled:
        boleto.parse_notification(outgoing.headers, outgoing.body + b" ")
    assert garbled.value.reason == "bad_signature"
    assert boleto.acknowledge().status_code == 200
    assert boleto.refuse("stale").status_code == 400
