"""How apply treats boleto, a channel that cannot close its trades.

The same voucher on a repeat, a second voucher beside the first (whose payment is an extra
capture), and unanswered creates settled by query.

These pin today's behaviour: at-most-once on boleto rests on refunding the extra capture, which
payonce announces (``payment.extra_captured``) but does not yet make.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from payonce.domain.events import Topic
from payonce.sandbox.faults import FaultRates, FaultSettings
from tests.integration.conftest import Live, LiveFactory


async def _clear_all(live: Live, payments: list[dict[str, Any]]) -> None:
    """Walk the clock day by day until every voucher paid at the bank has been confirmed."""
    for _ in range(10):
        await live.sandbox.advance_clock(86400)
        if all(live.sandbox.ledger(p["out_trade_no"]) for p in payments):
            return
    raise AssertionError("not every boleto was confirmed within ten days")


async def test_a_repeated_apply_shows_the_same_voucher(live: Live) -> None:
    order = await live.create_order(currency="BRL")
    first = await live.apply(order, "boleto", "pc")
    again = await live.apply(order, "boleto", "pc")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["action"] == first.json()["action"]
    assert len(await live.sandbox_trades(first.json()["out_trade_no"])) == 1
    assert len(await live.payments(order)) == 1


async def test_a_second_voucher_is_issued_beside_the_first_and_only_one_pays_the_order(
    live: Live,
) -> None:
    order = await live.create_order(currency="BRL")
    on_pc = (await live.apply(order, "boleto", "pc")).json()
    # Another platform is not a reuse, and a voucher cannot be closed: a second one is issued.
    on_wap = await live.apply(order, "boleto", "wap")
    assert on_wap.status_code == 201
    on_wap_payment = on_wap.json()
    assert [p["status"] for p in await live.payments(order)] == ["PAYING", "PAYING"]

    for payment in (on_pc, on_wap_payment):
        paid = await live.wallet("pay", payment["action"]["digitable_line"])
        assert paid.status_code == 200, paid.text
    await _clear_all(live, [on_pc, on_wap_payment])

    # Seed 0 clears the first payment in 3 business days, the second in 1: the wap one wins.
    final = await live.order(order)
    assert (final["status"], final["paid_payment_id"]) == (
        "READY_FOR_SHIPMENT",
        on_wap_payment["id"],
    )
    by_id = {p["id"]: p for p in await live.payments(order)}
    assert (by_id[on_wap_payment["id"]]["status"], by_id[on_wap_payment["id"]]["applied"]) == (
        "PAID",
        True,
    )
    assert (by_id[on_pc["id"]]["status"], by_id[on_pc["id"]]["applied"]) == ("PAID", False)
    captures = [
        (m.kind, m.amount)
        for p in (on_pc, on_wap_payment)
        for m in live.sandbox.ledger(p["out_trade_no"])
    ]
    assert captures == [("capture", 3998), ("capture", 3998)]
    async with live.container.deps.storage.transaction() as uow:
        waiting = await uow.outbox.due(
            now=live.clock.now() + timedelta(days=365), limit=10, order_id=order["id"]
        )
    # The extra capture is announced, and nothing takes it yet: no refund was made.
    assert [(e.event.topic, e.event.payment_id) for e in waiting] == [
        (Topic.PAYMENT_EXTRA_CAPTURED, on_pc["id"])
    ]
    assert all(m.kind == "capture" for m in live.sandbox.ledger())


async def test_a_create_that_erred_is_settled_by_the_next_apply(live: Live) -> None:
    order = await live.create_order(currency="BRL")
    live.sandbox.set_faults(FaultSettings(channels={"boleto": FaultRates(create_error_rate=1.0)}))
    refused = await live.apply(order, "boleto", "pc")
    assert (refused.status_code, refused.json()["code"]) == (409, "payment_outcome_unknown")
    live.sandbox.set_faults(FaultSettings())

    retried = await live.apply(order, "boleto", "pc")
    assert retried.status_code == 201, retried.text
    [new, old] = await live.payments(order)
    # The PSP never issued the first voucher: nothing to cancel, it is closed as never opened.
    assert (old["status"], new["status"]) == ("CLOSED", "PAYING")
    assert new["id"] == retried.json()["id"]
    assert [t["out_trade_no"] for t in await live.sandbox_trades()] == [new["out_trade_no"]]


async def test_a_create_that_timed_out_after_issuing_leaves_an_unseen_voucher_open(
    start_live: LiveFactory,
) -> None:
    live = await start_live(provider_timeout_s=0.3)
    order = await live.create_order(currency="BRL")
    live.sandbox.set_faults(
        FaultSettings(channels={"boleto": FaultRates(create_timeout_rate=1.0)}, timeout_hold_s=1.0)
    )
    refused = await live.apply(order, "boleto", "pc")
    assert (refused.status_code, refused.json()["code"]) == (409, "payment_outcome_unknown")
    live.sandbox.set_faults(FaultSettings())

    retried = await live.apply(order, "boleto", "pc")
    assert retried.status_code == 201, retried.text
    [new, old] = await live.payments(order)
    # The query found the first voucher open, but its line never reached payonce (a query does
    # not carry the action), and it cannot be closed: a second voucher is issued. Nobody saw the
    # first one; it lapses at its due date.
    assert (old["status"], old["action"]) == ("PAYING", None)
    assert new["status"] == "PAYING"
    trades = {t["out_trade_no"]: t["status"] for t in await live.sandbox_trades()}
    assert trades == {old["out_trade_no"]: "pending", new["out_trade_no"]: "pending"}
