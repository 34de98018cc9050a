"""When the money moved: every adapter reports ``paid_at`` from its protocol's own field.

Alipay's ``send_pay_date`` / ``gmt_payment`` (China time), WeChat's ``success_time``, PayPal's
capture ``create_time`` and the boleto PSP's ``paid_at`` (when the shopper paid at the bank, not
the clearing's confirmation days later) all become the same aware UTC instant, on the sandbox's
clock, in queries, closes, captures and notifications alike.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
from provider_kits import KITS, Kit, KitEnv
from sandbox_harness import Stage, sandbox_on_stage

from payonce.adapters.clock import AdjustableClock
from payonce.domain.channels import Platform
from payonce.domain.money import Money
from payonce.ports.provider import PaymentProvider, TradeRequest, TradeState
from payonce.sandbox import SandboxKeys

pytestmark = pytest.mark.asyncio(loop_scope="session")

_numbers = itertools.count(1)


@pytest.fixture(params=sorted(KITS))
def kit(request: pytest.FixtureRequest) -> Kit:
    return KITS[request.param]


@pytest_asyncio.fixture(loop_scope="session")
async def kit_env(stage: Stage, keys: SandboxKeys, clock: AdjustableClock) -> AsyncIterator[KitEnv]:
    async with sandbox_on_stage(stage, keys, clock) as env:
        yield KitEnv(sandbox=env.sandbox, url=env.url, clock=clock, keys=keys, http=env.http)


async def _paid(kit: Kit, env: KitEnv, provider: PaymentProvider) -> tuple[TradeRequest, datetime]:
    """A trade the shopper paid (and the merchant captured), and when the money was taken."""
    # A few seconds past the minute, so a time read at the wrong precision shows.
    await env.sandbox.advance_clock(7)
    request = TradeRequest(
        out_trade_no=f"pa{next(_numbers):06d}{kit.channel.value[:2]}",
        amount=Money(1234, kit.currency),
        platform=Platform.PC,
        subject="Paid-at tea",
        pay_deadline=env.clock.now() + timedelta(minutes=30),
        return_url="http://127.0.0.1:9/pay/ord_paid_at",
    )
    created = await provider.create(request)
    paid_at = env.clock.now()  # the shopper pays now (boleto: at the bank, confirmed later)
    await kit.pay(env, created.action)
    if kit.after_pay is TradeState.APPROVED:
        # PayPal takes the money when the merchant captures, a little later.
        await env.sandbox.advance_clock(3)
        paid_at = env.clock.now()
        captured = await provider.capture(
            request.out_trade_no, provider_trade_no=created.provider_trade_no
        )
        assert (captured.state, captured.paid_at) == (TradeState.PAID, paid_at)
    return request, paid_at


async def test_a_paid_trade_says_when_it_was_paid(kit: Kit, kit_env: KitEnv) -> None:
    provider = kit_env.provider(kit.channel)
    request, paid_at = await _paid(kit, kit_env, provider)
    assert paid_at.tzinfo is UTC
    await kit_env.sandbox.advance_clock(60)  # the answer says then, not now

    queried = await provider.query(request.out_trade_no)
    assert (queried.state, queried.paid_at) == (TradeState.PAID, paid_at)
    assert queried.paid_at is not None
    assert queried.paid_at.utcoffset() == timedelta(0)
    captured = await provider.capture(request.out_trade_no)
    assert (captured.state, captured.paid_at) == (TradeState.PAID, paid_at)
    closed = await provider.close(request.out_trade_no)
    assert (closed.state, closed.paid_at) == (TradeState.PAID, paid_at)


async def test_an_unpaid_trade_has_no_paid_at(kit: Kit, kit_env: KitEnv) -> None:
    provider = kit_env.provider(kit.channel)
    request = TradeRequest(
        out_trade_no=f"pa{next(_numbers):06d}{kit.channel.value[:2]}",
        amount=Money(1234, kit.currency),
        platform=Platform.PC,
        subject="Unpaid tea",
        pay_deadline=kit_env.clock.now() + timedelta(minutes=30),
    )
    created = await provider.create(request)
    await kit_env.wallet("scan", kit.code(created.action))
    assert (await provider.query(request.out_trade_no)).paid_at is None


async def test_the_payment_notification_says_when_it_was_paid(kit: Kit, kit_env: KitEnv) -> None:
    provider = kit_env.provider(kit.channel)
    request, paid_at = await _paid(kit, kit_env, provider)
    await kit_env.sandbox.deliver_due()
    notes = []
    for channel, notify_id in kit_env.sandbox.notifications(request.out_trade_no):
        outgoing = kit_env.sandbox.notification(channel, notify_id)
        notes.append(provider.parse_notification(outgoing.headers, outgoing.body))
    paid = [note for note in notes if note.state is TradeState.PAID]
    assert paid, f"no notification says {request.out_trade_no} is paid"
    assert {note.paid_at for note in paid} == {paid_at}
    # PayPal's approval moved no money: it says no paid_at.
    assert all(note.paid_at is None for note in notes if note.state is TradeState.APPROVED)


async def test_a_boleto_is_paid_when_the_shopper_paid_not_when_it_was_confirmed(
    kit_env: KitEnv,
) -> None:
    provider = kit_env.provider(KITS["boleto"].channel)
    request, paid_at = await _paid(KITS["boleto"], kit_env, provider)
    confirmed = [m.at for m in kit_env.sandbox.ledger(request.out_trade_no)]
    assert len(confirmed) == 1
    assert confirmed[0] - paid_at >= timedelta(hours=9)  # a business day later, at least
    assert (await provider.query(request.out_trade_no)).paid_at == paid_at


async def test_wire_times_are_read_as_utc() -> None:
    from payonce.adapters.providers.alipay import parse_alipay_time
    from payonce.adapters.providers.boleto import parse_psp_time
    from payonce.adapters.providers.paypal_http import parse_paypal_time
    from payonce.adapters.providers.wechat import parse_wechat_time

    moment = datetime(2026, 11, 24, 2, 0, 7, tzinfo=UTC)
    assert parse_alipay_time("2026-11-24 10:00:07") == moment
    assert parse_wechat_time("2026-11-24T10:00:07+08:00") == moment
    assert parse_paypal_time("2026-11-24T02:00:07Z") == moment
    assert parse_paypal_time("2026-11-23T18:00:07-0800") == moment
    assert parse_psp_time("2026-11-24T02:00:07Z") == moment
    with pytest.raises(ValueError, match="offset"):
        parse_wechat_time("2026-11-24T10:00:07")
