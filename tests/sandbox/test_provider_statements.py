"""Statements through each channel's own protocol: every adapter's ``statement(day)``.

A day with a capture and a refund states exactly those two movements, as the sandbox's ledger
has them; a day runs midnight to midnight in the channel's zone (China for Alipay and WeChat,
Pacific for PayPal, São Paulo for boleto); an open day is not ready; an ended quiet day is empty.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, time, timedelta

import pytest
import pytest_asyncio
from provider_kits import KITS, Kit, KitEnv
from sandbox_harness import Stage, sandbox_on_stage
from statement_harness import ZONES, after, expected, local, pay, refund, walk_to

from payonce.adapters.clock import AdjustableClock
from payonce.domain.channels import Channel
from payonce.domain.money import Money
from payonce.errors import ProviderUnavailable
from payonce.sandbox import SandboxKeys

pytestmark = pytest.mark.asyncio(loop_scope="session")

# Every channel's local day after the sandbox's start (2026-11-24 02:00 UTC).
DAY = date(2026, 11, 25)


@pytest.fixture(params=sorted(KITS))
def kit(request: pytest.FixtureRequest) -> Kit:
    return KITS[request.param]


@pytest_asyncio.fixture(loop_scope="session")
async def kit_env(stage: Stage, keys: SandboxKeys, clock: AdjustableClock) -> AsyncIterator[KitEnv]:
    async with sandbox_on_stage(stage, keys, clock) as env:
        yield KitEnv(sandbox=env.sandbox, url=env.url, clock=clock, keys=keys, http=env.http)


async def test_a_day_with_a_capture_and_a_refund_states_exactly_those(
    kit: Kit, kit_env: KitEnv
) -> None:
    provider = kit_env.provider(kit.channel)
    await walk_to(kit_env, local(kit, DAY, time(10, 0)))
    paid = await pay(kit, kit_env, provider)
    # A boleto is captured when the clearing confirms it, business days later, at 09:00.
    [capture] = kit_env.sandbox.ledger(paid.request.out_trade_no)
    day = capture.at.astimezone(ZONES[kit.channel]).date()
    await walk_to(kit_env, local(kit, day, time(15, 0)))
    await refund(provider, paid, "rf_part_1", 500)
    await after(kit_env, kit, day)

    lines = await provider.statement(day)

    assert lines == expected(kit, kit_env, paid.request.out_trade_no)
    captured, refunded = lines
    assert (captured.kind, captured.out_trade_no) == ("capture", paid.request.out_trade_no)
    assert captured.amount == Money(1234, kit.currency)
    assert captured.at == capture.at
    if kit.channel is Channel.PAYPAL:
        assert captured.provider_trade_no is None  # the report does not name the order
        assert captured.reference != paid.number  # it names the capture
    else:
        assert captured.provider_trade_no == captured.reference == paid.number
    assert (refunded.kind, refunded.reference) == ("refund", "rf_part_1")
    assert refunded.amount == Money(500, kit.currency)
    assert refunded.at == local(kit, day, time(15, 0))
    assert all(line.at.utcoffset() == timedelta(0) for line in lines)


async def test_a_day_runs_from_local_midnight_to_local_midnight(kit: Kit, kit_env: KitEnv) -> None:
    provider = kit_env.provider(kit.channel)
    if kit.channel is Channel.BOLETO:
        # The capture happens at the clearing's 09:00; the refunds show the boundary.
        await walk_to(kit_env, local(kit, DAY, time(10, 0)))
        paid = await pay(kit, kit_env, provider)
        [capture] = kit_env.sandbox.ledger(paid.request.out_trade_no)
        day = capture.at.astimezone(ZONES[kit.channel]).date()
        await walk_to(kit_env, local(kit, day, time(23, 30)))
        await refund(provider, paid, "rf_late", 300)
    else:
        day = DAY
        await walk_to(kit_env, local(kit, day, time(23, 30)))
        paid = await pay(kit, kit_env, provider)
    await walk_to(kit_env, local(kit, day + timedelta(days=1), time(0, 30)))
    await refund(provider, paid, "rf_early", 200)
    await after(kit_env, kit, day + timedelta(days=1))

    ledger = expected(kit, kit_env, paid.request.out_trade_no)
    that_day, next_day = ledger[:-1], ledger[-1:]
    assert [line.at for line in that_day][-1] == local(kit, day, time(23, 30))
    assert await provider.statement(day) == that_day
    assert await provider.statement(day + timedelta(days=1)) == next_day
    assert await provider.statement(day - timedelta(days=1)) == []


async def test_an_open_day_is_not_ready(kit: Kit, kit_env: KitEnv) -> None:
    provider = kit_env.provider(kit.channel)
    await walk_to(kit_env, local(kit, DAY, time(23, 59, 0)))
    with pytest.raises(ProviderUnavailable):
        await provider.statement(DAY)
    with pytest.raises(ProviderUnavailable):
        await provider.statement(DAY + timedelta(days=3))
    await after(kit_env, kit, DAY)
    assert await provider.statement(DAY) == []


async def test_a_statement_that_cannot_be_fetched_is_unavailable(kit: Kit, kit_env: KitEnv) -> None:
    await after(kit_env, kit, DAY)
    provider = kit_env.provider(kit.channel, base="http://127.0.0.1:9/sandbox")
    with pytest.raises(ProviderUnavailable):
        await provider.statement(DAY)


async def test_each_merchant_reads_its_own_protocol(kit_env: KitEnv) -> None:
    """The statement calls are the channels' own, logged like every other merchant call."""
    await walk_to(
        kit_env, max(local(kit, DAY + timedelta(days=1), time(0)) for kit in KITS.values())
    )
    for kit in KITS.values():
        await kit_env.provider(kit.channel).statement(DAY)
    methods = {(call.channel, call.method, call.code) for call in kit_env.sandbox.calls()}
    assert ("alipay", "alipay.data.dataservice.bill.downloadurl.query", "10000") in methods
    # An ended day without a trade has no WeChat bill at all.
    assert ("wechat", "GET /v3/bill/tradebill", "400") in methods
    assert ("paypal", "GET /v1/reporting/transactions", "200") in methods
    assert ("boleto", "GET /statements/{date}", "200") in methods
