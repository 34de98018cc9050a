"""Reconciliation against the provider's statement: a lost capture is found and repaired, a
refund payonce never asked for is found and reported."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from payonce.domain.channels import Channel
from payonce.domain.ids import PaymentId
from payonce.domain.money import Money
from payonce.domain.payment import PaymentStatus
from payonce.sandbox.faults import FaultRates, FaultSettings
from payonce.service import outbox
from payonce.service.reconcile import BreakKind, DailyReconciliation, reconcile
from tests.integration.conftest import Live
from tests.integration.test_channels import _approve, _scan_and_pay, ready
from tests.integration.test_extra_captures import _alipay_scanned_then_paypal


async def test_a_day_with_a_lost_capture_and_a_foreign_refund(live: Live) -> None:
    deps = live.container.deps
    alipay = deps.providers[Channel.ALIPAY]
    day = live.clock.now().date()  # 16:00 in China: the same calendar day there

    # A normal payment, that someone later refunds in part from the provider's dashboard.
    normal = await live.create_order()
    normal_pay = (await live.apply(normal, "alipay", "pc")).json()
    await _scan_and_pay(live, normal_pay["action"]["qr_code"])
    assert (await ready(live, normal))["status"] == "READY_FOR_SHIPMENT"
    await alipay.refund(normal_pay["out_trade_no"], "DASHBOARD-1", Money(1000, "CNY"))

    # A payment whose notifications and poll job were all lost.
    live.sandbox.set_faults(FaultSettings(notify_drop_rate=1.0))
    lost = await live.create_order()
    lost_pay = (await live.apply(lost, "alipay", "pc")).json()
    async with deps.storage.transaction() as uow:
        await uow.polls.finish(PaymentId(lost_pay["id"]))
    await _scan_and_pay(live, lost_pay["action"]["qr_code"])
    assert (await live.order(lost))["status"] == "UNPAID"

    live.clock.advance(timedelta(days=1))  # the day has ended in China: its bill is ready
    result = await reconcile(deps, Channel.ALIPAY, day)

    assert (result.lines, result.matched) == (3, 1)
    by_kind = {b.kind: b for b in result.breaks}
    assert set(by_kind) == {BreakKind.CAPTURE_UNRECORDED, BreakKind.REFUND_UNRECORDED}
    repaired = by_kind[BreakKind.CAPTURE_UNRECORDED]
    assert (repaired.out_trade_no, repaired.repaired) == (lost_pay["out_trade_no"], True)
    foreign = by_kind[BreakKind.REFUND_UNRECORDED]
    assert (foreign.out_trade_no, foreign.reference, foreign.amount) == (
        normal_pay["out_trade_no"],
        "DASHBOARD-1",
        1000,
    )
    assert foreign.repaired is False
    assert result.remaining == (foreign,)
    assert (await live.order(lost))["status"] == "READY_FOR_SHIPMENT"

    again = await reconcile(deps, Channel.ALIPAY, day)  # repaired: only the refund is left
    assert [b.kind for b in again.breaks] == [BreakKind.REFUND_UNRECORDED]
    assert again.matched == 2
    # The repair asked, it did not refund or capture anything itself.
    assert [m.kind for m in live.sandbox.ledger(lost_pay["out_trade_no"])] == ["capture"]


async def test_the_worker_reconciles_each_channel_s_previous_day_once(live: Live) -> None:
    deps = live.container.deps
    live.sandbox.set_faults(FaultSettings(notify_drop_rate=1.0))
    lost = await live.create_order()
    lost_pay = (await live.apply(lost, "alipay", "pc")).json()
    async with deps.storage.transaction() as uow:
        await uow.polls.finish(PaymentId(lost_pay["id"]))
    await _scan_and_pay(live, lost_pay["action"]["qr_code"])
    daily = DailyReconciliation()

    def statements() -> int:
        return sum(1 for c in live.sandbox.calls() if "bill" in c.method or "report" in c.method)

    assert await daily(deps) == 0  # the day before today is reconciled: nothing of ours there
    before = statements()
    assert (await live.order(lost))["status"] == "UNPAID"
    # The next day past noon UTC: today (in every zone) has ended and is reconciled, once.
    live.clock.advance(timedelta(days=1, hours=4, minutes=1))
    assert await daily(deps) == 0
    assert (await live.order(lost))["status"] == "READY_FOR_SHIPMENT"
    assert await daily(deps) == 0
    assert statements() > before
    after = statements()
    assert await daily(deps) == 0
    assert statements() == after  # each channel's day is reconciled once


async def test_a_capture_we_hold_that_the_statement_does_not_show_is_reported(
    live: Live,
) -> None:
    deps = live.container.deps
    day = live.clock.now().date()
    order = await live.create_order()
    opened = (await live.apply(order, "alipay", "pc")).json()
    # Our record says paid (a bug, a bad hand edit): the provider never took this money.
    async with deps.storage.transaction() as uow:
        payment = await uow.payments.get(PaymentId(opened["id"]))
        assert payment is not None
        await uow.payments.update(
            replace(
                payment,
                status=PaymentStatus.PAID,
                version=payment.version + 1,
                paid_at=live.clock.now(),
            ),
            expected_version=payment.version,
        )
    live.clock.advance(timedelta(days=1))
    result = await reconcile(deps, Channel.ALIPAY, day)
    assert (result.lines, result.matched) == (0, 0)
    [missing] = result.breaks
    assert (missing.kind, missing.out_trade_no, missing.repaired) == (
        BreakKind.CAPTURE_MISSING,
        opened["out_trade_no"],
        False,
    )
    # Another day, or another channel, does not show it.
    assert (await reconcile(deps, Channel.ALIPAY, day - timedelta(days=1))).breaks == ()
    assert (await reconcile(deps, Channel.WECHAT, day)).breaks == ()


async def test_an_extra_capture_whose_refund_kept_failing_is_refunded_by_reconciliation(
    live: Live,
) -> None:
    deps = live.container.deps
    day = live.clock.now().date()
    order, alipay, paypal = await _alipay_scanned_then_paypal(live)
    await _approve(live, paypal["action"]["redirect_url"])
    live.sandbox.set_faults(
        FaultSettings(
            pay_after_close_rate=1.0, channels={"alipay": FaultRates(refund_error_rate=1.0)}
        )
    )
    assert (await live.wallet("pay", alipay["action"]["qr_code"])).status_code == 200
    await live.sandbox.deliver_due()
    await outbox.deliver_due(deps)  # the refund is refused: retried later by the relay
    assert [m.kind for m in live.sandbox.ledger(alipay["out_trade_no"])] == ["capture"]

    live.sandbox.set_faults(FaultSettings())
    live.clock.advance(timedelta(days=1))
    result = await reconcile(deps, Channel.ALIPAY, day)
    [extra] = result.breaks
    assert (extra.kind, extra.out_trade_no, extra.repaired) == (
        BreakKind.EXTRA_NOT_REFUNDED,
        alipay["out_trade_no"],
        True,
    )
    assert [m.kind for m in live.sandbox.ledger(alipay["out_trade_no"])] == ["capture", "refund"]
    await outbox.deliver_due(deps)  # the relay's retry now finds it refunded: no second refund
    assert [m.kind for m in live.sandbox.ledger(alipay["out_trade_no"])] == ["capture", "refund"]
    again = await reconcile(deps, Channel.ALIPAY, day)
    assert again.breaks == ()
    assert (await live.order(order))["paid_payment_id"] == paypal["id"]
