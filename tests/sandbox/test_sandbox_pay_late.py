"""A provider whose clock runs behind: ``pay_late_by_s`` lets a shopper pay after the deadline.

With the fault at 5 s, every channel still takes a wallet payment 1 s past the trade's pay
deadline (Alipay's and WeChat's time_expire, PayPal's approval window, a boleto's last payable
day), the money is in the ledger, and the automatic timeout-close waits the 5 s too. At 0 (the
default) the same payment is refused and nothing moves.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import pytest_asyncio
from provider_kits import KITS, Kit, KitEnv
from sandbox_harness import Stage, sandbox_on_stage

from payonce.adapters.clock import AdjustableClock
from payonce.domain.channels import Channel, Platform
from payonce.domain.money import Money
from payonce.domain.payment import Action
from payonce.ports.provider import PaymentProvider, TradeRequest, TradeState
from payonce.sandbox import FaultSettings, SandboxKeys

pytestmark = pytest.mark.asyncio(loop_scope="session")

_numbers = itertools.count(1)


@pytest.fixture(params=sorted(KITS))
def kit(request: pytest.FixtureRequest) -> Kit:
    return KITS[request.param]


@pytest_asyncio.fixture(loop_scope="session")
async def kit_env(stage: Stage, keys: SandboxKeys, clock: AdjustableClock) -> AsyncIterator[KitEnv]:
    async with sandbox_on_stage(stage, keys, clock) as env:
        yield KitEnv(sandbox=env.sandbox, url=env.url, clock=clock, keys=keys, http=env.http)


async def _late_by(env: KitEnv, seconds: float) -> None:
    """Set the fault the way an operator does: through the sandbox's PUT /faults."""
    answer = await env.http.put(f"{env.url}/faults", json={"pay_late_by_s": seconds})
    assert answer.status_code == 200, answer.text
    assert answer.json()["pay_late_by_s"] == seconds


async def _trade(kit: Kit, env: KitEnv) -> tuple[PaymentProvider, TradeRequest, Action]:
    """A trade the shopper has opened, whose action expires at the provider's pay deadline."""
    provider = env.provider(kit.channel)
    # PayPal's deadline is its own three-hour approval window: ask for more, it answers that.
    wanted = timedelta(hours=4) if kit.channel is Channel.PAYPAL else timedelta(minutes=30)
    request = TradeRequest(
        out_trade_no=f"lt{next(_numbers):06d}{kit.channel.value[:2]}",
        amount=Money(1234, kit.currency),
        platform=Platform.PC,
        subject="Late tea",
        pay_deadline=env.clock.now() + wanted,
    )
    created = await provider.create(request)
    env.numbers[request.out_trade_no] = created.provider_trade_no
    await env.wallet("scan", kit.code(created.action))
    return provider, request, created.action


async def _past_deadline(env: KitEnv, action: Action, seconds: float) -> None:
    assert action.expires_at is not None
    await env.sandbox.advance_clock((action.expires_at - env.clock.now()).total_seconds())
    await env.sandbox.advance_clock(seconds)


async def test_a_payment_one_second_late_is_taken_when_the_clock_runs_5_s_behind(
    kit: Kit, kit_env: KitEnv
) -> None:
    await _late_by(kit_env, 5)
    provider, request, action = await _trade(kit, kit_env)
    await _past_deadline(kit_env, action, 1)
    await kit.pay(kit_env, action)  # the wallet answers 200 (boleto: then the clearing)
    if kit.after_pay is TradeState.APPROVED:
        assert (await provider.capture(request.out_trade_no)).state is TradeState.PAID
    assert [(m.kind, m.amount) for m in kit_env.sandbox.ledger(request.out_trade_no)] == [
        ("capture", 1234)
    ]
    assert (await provider.query(request.out_trade_no)).state is TradeState.PAID


async def test_a_payment_one_second_late_is_refused_by_a_provider_on_time(
    kit: Kit, kit_env: KitEnv
) -> None:
    provider, request, action = await _trade(kit, kit_env)
    assert kit_env.sandbox.faults.pay_late_by_s == 0.0
    await _past_deadline(kit_env, action, 1)
    refused = await kit_env.http.post(f"{kit_env.url}/wallet/pay", json={"code": kit.code(action)})
    assert refused.status_code == 409, refused.text
    await kit_env.sandbox.advance_clock(10 * 86400)  # nothing was paid, nothing will clear
    assert kit_env.sandbox.ledger(request.out_trade_no) == []
    number = kit_env.numbers[request.out_trade_no]
    closed = await provider.query(request.out_trade_no, provider_trade_no=number)
    assert closed.state is TradeState.CLOSED


async def test_the_timeout_close_waits_as_long(kit: Kit, kit_env: KitEnv) -> None:
    await _late_by(kit_env, 5)
    provider, request, action = await _trade(kit, kit_env)
    await _past_deadline(kit_env, action, 4)
    assert (await provider.query(request.out_trade_no)).state is TradeState.OPEN
    view = await kit_env.wallet("scan", kit.code(action))
    assert view.json()["can_pay"] is True
    await kit_env.sandbox.advance_clock(1)
    assert (await provider.query(request.out_trade_no)).state is TradeState.CLOSED
    refused = await kit_env.http.post(f"{kit_env.url}/wallet/pay", json={"code": kit.code(action)})
    assert refused.status_code == 409, refused.text
    [listed] = kit_env.sandbox.trades(request.out_trade_no)
    assert listed.closed_at == action.expires_at + timedelta(seconds=5)


async def test_the_setting_is_never_negative() -> None:
    with pytest.raises(ValueError, match="greater than or equal"):
        FaultSettings(pay_late_by_s=-1)
    assert FaultSettings().pay_late_by_s == 0.0
