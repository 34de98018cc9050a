"""The provider contract: every channel's adapter, against the sandbox, keeps the same promises.

Create answers the platform's action; a query tells the truth before and after the shopper
opens and pays; close makes an unpaid trade unpayable (and reports a payment that won the race);
refunds are idempotent by their number; genuine notifications parse and every forged kind is
refused; a call that times out is an unknown outcome, never a failure.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import pytest_asyncio
from provider_kits import KITS, NOWHERE, Kit, KitEnv
from sandbox_harness import Stage, sandbox_on_stage

from payonce.adapters.clock import AdjustableClock
from payonce.domain.channels import Platform
from payonce.domain.money import Money
from payonce.domain.payment import Action
from payonce.errors import (
    NotificationRejected,
    ProviderRejected,
    ProviderRetryable,
    ProviderUnavailable,
)
from payonce.ports.provider import PaymentProvider, TradeRequest, TradeState
from payonce.sandbox import FaultSettings, SandboxKeys
from payonce.sandbox.faults import FORGERIES, Forgery

pytestmark = pytest.mark.asyncio(loop_scope="session")

AMOUNT = 1234
_numbers = itertools.count(1)


@pytest.fixture(params=sorted(KITS))
def kit(request: pytest.FixtureRequest) -> Kit:
    return KITS[request.param]


@pytest_asyncio.fixture(loop_scope="session")
async def kit_env(stage: Stage, keys: SandboxKeys, clock: AdjustableClock) -> AsyncIterator[KitEnv]:
    async with sandbox_on_stage(stage, keys, clock) as env:
        yield KitEnv(sandbox=env.sandbox, url=env.url, clock=clock, keys=keys, http=env.http)


def _request(kit: Kit, env: KitEnv, platform: Platform = Platform.PC) -> TradeRequest:
    return TradeRequest(
        out_trade_no=f"ct{next(_numbers):06d}{kit.channel.value[:2]}",
        amount=Money(AMOUNT, kit.currency),
        platform=platform,
        subject="Contract tea",
        pay_deadline=env.clock.now() + timedelta(minutes=30),
        return_url="http://127.0.0.1:9/pay/ord_contract",
    )


async def _paid(kit: Kit, env: KitEnv, provider: PaymentProvider) -> TradeRequest:
    """A trade the shopper paid and the merchant captured (when the channel needs that)."""
    request = _request(kit, env)
    created = await provider.create(request)
    number = created.provider_trade_no  # payonce records it and passes it back
    await kit.pay(env, created.action)
    snapshot = await provider.query(request.out_trade_no, provider_trade_no=number)
    assert snapshot.state is kit.after_pay
    if snapshot.state is TradeState.APPROVED:
        snapshot = await provider.capture(request.out_trade_no, provider_trade_no=number)
    assert snapshot.state is TradeState.PAID
    env.numbers[request.out_trade_no] = snapshot.provider_trade_no
    return request


async def _closable_age(kit: Kit, env: KitEnv) -> None:
    """Wait until the provider lets a trade this young be closed."""
    if kit.close_after:
        await env.sandbox.advance_clock(kit.close_after.total_seconds())


def _captures(env: KitEnv, kit: Kit, out_trade_no: str) -> list[tuple[str, int]]:
    return [
        (m.kind, m.amount)
        for m in env.sandbox.ledger(out_trade_no)
        if m.channel == kit.channel.value
    ]


async def test_create_answers_each_platforms_action(kit: Kit, kit_env: KitEnv) -> None:
    provider = kit_env.provider(kit.channel)
    assert provider.channel is kit.channel
    for platform, (action_type, field) in kit.actions.items():
        assert provider.supports(platform, kit.currency)
        created = await provider.create(_request(kit, kit_env, platform))
        assert created.action.type is action_type
        assert created.action.fields[field]
        assert created.action.expires_at is not None
    assert not provider.supports(Platform.PC, "JPY")


async def test_query_before_and_after_the_shopper_opens_the_trade(
    kit: Kit, kit_env: KitEnv
) -> None:
    provider = kit_env.provider(kit.channel)
    request = _request(kit, kit_env)
    created = await provider.create(request)
    assert (await provider.query(request.out_trade_no)).state is kit.before_scan
    await kit_env.wallet("scan", kit.code(created.action))
    opened = await provider.query(request.out_trade_no)
    assert opened.state is TradeState.OPEN
    assert opened.amount in (None, request.amount)
    assert _captures(kit_env, kit, request.out_trade_no) == []


async def test_a_paid_trade_is_captured_exactly_once(kit: Kit, kit_env: KitEnv) -> None:
    provider = kit_env.provider(kit.channel)
    request = await _paid(kit, kit_env, provider)
    again = await provider.capture(request.out_trade_no)
    assert again.state is TradeState.PAID
    queried = await provider.query(request.out_trade_no)
    assert (queried.state, queried.amount) == (TradeState.PAID, request.amount)
    assert _captures(kit_env, kit, request.out_trade_no) == [("capture", AMOUNT)]


async def test_close_makes_an_unpaid_trade_unpayable(kit: Kit, kit_env: KitEnv) -> None:
    provider = kit_env.provider(kit.channel)
    request = _request(kit, kit_env)
    created = await provider.create(request)
    await kit_env.wallet("scan", kit.code(created.action))
    if not kit.closable:
        with pytest.raises(ProviderRejected):
            await provider.close(request.out_trade_no)
        return
    await _closable_age(kit, kit_env)
    assert (await provider.close(request.out_trade_no)).state is TradeState.CLOSED
    await _late_shopper_moves_no_money(kit, kit_env, provider, request, created.action)


async def _late_shopper_moves_no_money(
    kit: Kit, env: KitEnv, provider: PaymentProvider, request: TradeRequest, action: Action
) -> None:
    """After a close, the shopper's late attempt is refused, or (PayPal) takes no money."""
    late = await env.http.post(f"{env.url}/wallet/pay", json={"code": kit.code(action)})
    if kit.close_blocks_the_shopper:
        assert late.status_code >= 400
        assert (await provider.query(request.out_trade_no)).state in (
            TradeState.CLOSED,
            TradeState.NOT_FOUND,
        )
    else:
        # The approval lapses unused: closing again still finds nothing captured.
        assert (await provider.close(request.out_trade_no)).state is TradeState.CLOSED
    await env.sandbox.advance_clock(86400)
    assert _captures(env, kit, request.out_trade_no) == []


async def test_close_of_an_unopened_trade_closes_it_for_good(kit: Kit, kit_env: KitEnv) -> None:
    provider = kit_env.provider(kit.channel)
    request = _request(kit, kit_env)
    created = await provider.create(request)
    await _closable_age(kit, kit_env)
    if not kit.closable:  # a voucher, once issued, stays payable: the refusal says so
        with pytest.raises(ProviderRejected):
            await provider.close(request.out_trade_no)
        assert (await provider.query(request.out_trade_no)).state is TradeState.OPEN
        return
    assert (await provider.close(request.out_trade_no)).state is TradeState.CLOSED
    await _late_shopper_moves_no_money(kit, kit_env, provider, request, created.action)


async def test_close_of_a_paid_trade_reports_the_payment(kit: Kit, kit_env: KitEnv) -> None:
    provider = kit_env.provider(kit.channel)
    request = await _paid(kit, kit_env, provider)
    await _closable_age(kit, kit_env)
    assert (await provider.close(request.out_trade_no)).state is TradeState.PAID
    assert _captures(kit_env, kit, request.out_trade_no) == [("capture", AMOUNT)]


async def test_a_refund_is_made_once_per_refund_number(kit: Kit, kit_env: KitEnv) -> None:
    provider = kit_env.provider(kit.channel)
    request = await _paid(kit, kit_env, provider)
    first = await provider.refund(
        request.out_trade_no,
        "rf_1",
        request.amount,
        provider_trade_no=kit_env.numbers[request.out_trade_no],
    )
    second = await provider.refund(
        request.out_trade_no,
        "rf_1",
        request.amount,
        provider_trade_no=kit_env.numbers[request.out_trade_no],
    )
    assert (first.refund_no, first.amount, first.completed) == ("rf_1", request.amount, True)
    assert (second.refund_no, second.amount) == ("rf_1", request.amount)
    assert _captures(kit_env, kit, request.out_trade_no) == [
        ("capture", AMOUNT),
        ("refund", AMOUNT),
    ]
    # Asked later, the provider reports the payment given back, never "closed, unpaid".
    number = kit_env.numbers[request.out_trade_no]
    queried = await provider.query(request.out_trade_no, provider_trade_no=number)
    assert queried.state is TradeState.REFUNDED


async def _genuine(kit: Kit, env: KitEnv, provider: PaymentProvider) -> tuple[TradeRequest, str]:
    """A paid trade and the id of the notification that says so."""
    request = await _paid(kit, env, provider)
    await env.sandbox.deliver_due()
    for delivery in env.sandbox.deliveries(request.out_trade_no):
        if delivery.fault is not None:
            continue
        outgoing = env.sandbox.notification(kit.channel.value, delivery.notify_id)
        note = provider.parse_notification(outgoing.headers, outgoing.body)
        if note.state is TradeState.PAID:
            return request, delivery.notify_id
    raise AssertionError(f"no {kit.channel} notification says {request.out_trade_no} is paid")


async def test_genuine_notifications_parse_to_the_trade(kit: Kit, kit_env: KitEnv) -> None:
    provider = kit_env.provider(kit.channel)
    request, notify_id = await _genuine(kit, kit_env, provider)
    outgoing = kit_env.sandbox.notification(kit.channel.value, notify_id)
    note = provider.parse_notification(outgoing.headers, outgoing.body)
    assert note.channel is kit.channel
    assert (note.notify_id, note.out_trade_no) == (notify_id, request.out_trade_no)
    assert (note.state, note.amount) == (TradeState.PAID, request.amount)
    assert note.merchant_id == provider.merchant_id


@pytest.mark.parametrize("forgery", FORGERIES)
async def test_every_forged_kind_is_refused(kit: Kit, kit_env: KitEnv, forgery: Forgery) -> None:
    provider = kit_env.provider(kit.channel)
    request, notify_id = await _genuine(kit, kit_env, provider)
    forged = kit_env.sandbox.notification(kit.channel.value, notify_id, forgery)
    genuine = kit_env.sandbox.notification(kit.channel.value, notify_id)
    assert forged.body != genuine.body or forged.headers != genuine.headers
    try:
        note = provider.parse_notification(forged.headers, forged.body)
    except NotificationRejected:
        return
    # Validly signed but untrue: the adapter cannot know, the match against our record must,
    # and the lie is there for it to see.
    if forgery == "changed_amount":
        assert note.amount != request.amount
        assert note.merchant_id == provider.merchant_id
    else:
        assert forgery == "other_merchant"
        assert note.merchant_id != provider.merchant_id


async def test_a_create_that_times_out_is_unknown_not_failed(kit: Kit, kit_env: KitEnv) -> None:
    provider = kit_env.provider(kit.channel, timeout_s=0.3)
    kit_env.sandbox.set_faults(FaultSettings(create_timeout_rate=1.0, timeout_hold_s=1.0))
    request = _request(kit, kit_env)
    with pytest.raises(ProviderUnavailable) as unanswered:
        await provider.create(request)
    assert not isinstance(unanswered.value, ProviderRetryable)  # it may have been done


async def test_a_provider_that_cannot_be_reached_is_retryable(kit: Kit, kit_env: KitEnv) -> None:
    provider = kit_env.provider(kit.channel, base=f"{NOWHERE}/sandbox")
    with pytest.raises(ProviderRetryable):
        await provider.create(_request(kit, kit_env))
    with pytest.raises(ProviderRetryable):
        await provider.query("ct_nowhere")


async def test_a_query_that_errs_is_unknown(kit: Kit, kit_env: KitEnv) -> None:
    provider = kit_env.provider(kit.channel)
    request = _request(kit, kit_env)
    await provider.create(request)
    kit_env.sandbox.set_faults(FaultSettings(query_error_rate=1.0))
    with pytest.raises(ProviderUnavailable):
        await provider.query(request.out_trade_no)


async def test_a_refund_that_timed_out_after_refunding_is_not_refunded_twice(
    kit: Kit, kit_env: KitEnv
) -> None:
    provider = kit_env.provider(kit.channel)
    request = await _paid(kit, kit_env, provider)
    kit_env.sandbox.set_faults(FaultSettings(refund_timeout_rate=1.0, timeout_hold_s=1.0))
    impatient = kit_env.provider(kit.channel, timeout_s=0.3)
    with pytest.raises(ProviderUnavailable) as unanswered:
        await impatient.refund(
            request.out_trade_no,
            "rf_t",
            request.amount,
            provider_trade_no=kit_env.numbers[request.out_trade_no],
        )
    assert not isinstance(unanswered.value, ProviderRetryable)  # it was done
    kit_env.sandbox.set_faults(FaultSettings())
    retried = await provider.refund(
        request.out_trade_no,
        "rf_t",
        request.amount,
        provider_trade_no=kit_env.numbers[request.out_trade_no],
    )
    assert retried.amount == request.amount
    assert _captures(kit_env, kit, request.out_trade_no) == [
        ("capture", AMOUNT),
        ("refund", AMOUNT),
    ]


async def test_each_days_statement_lists_exactly_that_days_ledger(
    kit: Kit, kit_env: KitEnv
) -> None:
    provider = kit_env.provider(kit.channel)
    first = await _paid(kit, kit_env, provider)
    second = await _paid(kit, kit_env, provider)
    await provider.refund(
        first.out_trade_no,
        "st_1",
        first.amount,
        provider_trade_no=kit_env.numbers[first.out_trade_no],
    )
    await kit_env.sandbox.advance_clock(86400)
    third = await _paid(kit, kit_env, provider)
    await provider.refund(
        second.out_trade_no,
        "st_2",
        Money(234, kit.currency),
        provider_trade_no=kit_env.numbers[second.out_trade_no],
    )

    zone = kit_env.sandbox.channel(kit.channel.value).statement_zone
    ledger = [m for m in kit_env.sandbox.ledger() if m.channel == kit.channel.value]
    assert {m.out_trade_no for m in ledger} == {
        first.out_trade_no,
        second.out_trade_no,
        third.out_trade_no,
    }
    days = sorted({m.at.astimezone(zone).date() for m in ledger})
    assert len(days) >= 2
    listed = 0
    for day in [*days, days[-1] + timedelta(days=1)]:
        response = await kit_env.http.get(f"{kit_env.url}/{kit.channel.value}/statements/{day}")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        header, *rows = response.text.splitlines()
        assert header == "at,channel,out_trade_no,trade_no,kind,amount,currency,reference"
        expected = [
            (m.out_trade_no, m.kind, str(m.amount), m.currency)
            for m in ledger
            if m.at.astimezone(zone).date() == day
        ]
        got = [tuple(row.split(",")[i] for i in (2, 4, 5, 6)) for row in rows]
        assert got == expected
        listed += len(rows)
    assert listed == len(ledger)
    assert sorted((m.kind, m.amount) for m in ledger) == [
        ("capture", AMOUNT),
        ("capture", AMOUNT),
        ("capture", AMOUNT),
        ("refund", 234),
        ("refund", AMOUNT),
    ]
