"""The sweeper: with every notification and every poll lost, a paid trade is still found."""

from __future__ import annotations

from datetime import timedelta

from payonce.domain.ids import PaymentId
from payonce.sandbox.faults import FaultSettings
from payonce.service.sweeper import sweep
from tests.integration.conftest import Live
from tests.integration.test_channels import _scan_and_pay


async def _paid_unheard(live: Live) -> tuple[dict[str, object], dict[str, object]]:
    """An Alipay trade paid in the wallet whose notifications are all dropped."""
    live.sandbox.set_faults(FaultSettings(notify_drop_rate=1.0))
    order = await live.create_order()
    applied = await live.apply(order, "alipay", "pc")
    assert applied.status_code == 201, applied.text
    await _scan_and_pay(live, applied.json()["action"]["qr_code"])
    assert (await live.order(order))["status"] == "UNPAID"
    return order, applied.json()


def _queries(live: Live, out_trade_no: object) -> int:
    return sum(1 for c in live.sandbox.calls(str(out_trade_no)) if c.method.endswith("query"))


async def test_with_notifications_and_poll_job_lost_the_sweeper_finds_the_payment(
    live: Live,
) -> None:
    deps = live.container.deps
    order, payment = await _paid_unheard(live)
    async with deps.storage.transaction() as uow:
        await uow.polls.finish(PaymentId(str(payment["id"])))  # the poll job is lost

    assert await sweep(deps) == 0  # changed moments ago: not the sweeper's yet
    live.clock.advance(deps.policy.sweep_after)
    assert await sweep(deps) == 1
    assert (await live.order(order))["status"] == "READY_FOR_SHIPMENT"
    assert _queries(live, payment["out_trade_no"]) == 1
    async with deps.storage.transaction() as uow:
        assert await uow.polls.get(PaymentId(str(payment["id"]))) is None  # settled: no polls
    live.clock.advance(deps.policy.sweep_after * 10)
    assert await sweep(deps) == 0
    assert _queries(live, payment["out_trade_no"]) == 1


async def test_a_poll_job_nobody_ran_is_taken_over_by_the_sweeper_and_watched_again(
    live: Live,
) -> None:
    deps = live.container.deps
    live.sandbox.set_faults(FaultSettings(notify_drop_rate=1.0))
    order = await live.create_order()
    applied = await live.apply(order, "alipay", "pc")
    assert applied.status_code == 201, applied.text
    payment_id = PaymentId(applied.json()["id"])

    # The workers are gone: the first poll was due long ago and nobody took it.
    live.clock.advance(deps.policy.sweep_after + deps.policy.sweep_overdue)
    assert await sweep(deps) == 1
    assert (await live.order(order))["status"] == "UNPAID"  # unscanned, still open
    async with deps.storage.transaction() as uow:
        job = await uow.polls.get(payment_id)
    assert job is not None
    assert job.due_at > live.clock.now()  # watched again by a poll job
    assert await sweep(deps) == 0  # and so no longer the sweeper's


async def test_the_sweeper_leaves_watched_trades_alone(live: Live) -> None:
    deps = live.container.deps
    _, payment = await _paid_unheard(live)
    live.clock.advance(deps.policy.sweep_after - timedelta(seconds=1))
    async with deps.storage.transaction() as uow:
        await uow.polls.schedule(
            PaymentId(str(payment["id"])),
            payment["order_id"],  # type: ignore[arg-type]
            due_at=live.clock.now() + timedelta(minutes=1),
            attempts=3,
        )
    live.clock.advance(timedelta(seconds=2))
    assert await sweep(deps) == 0
    assert _queries(live, payment["out_trade_no"]) == 0
