"""How apply treats boleto, a channel that cannot close its trades.

The same voucher on a repeat and on another platform, and unanswered creates settled by query.
A voucher cannot be closed, so payonce never issues a second one while the first can be paid.
"""

from __future__ import annotations

from typing import Any

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


async def test_another_platform_is_shown_the_same_voucher(live: Live) -> None:
    order = await live.create_order(currency="BRL")
    on_pc = (await live.apply(order, "boleto", "pc")).json()
    # A voucher cannot be closed, so a second one could be paid too: the first is shown again.
    on_wap = await live.apply(order, "boleto", "wap")
    assert on_wap.status_code == 200
    assert (on_wap.json()["id"], on_wap.json()["action"]) == (on_pc["id"], on_pc["action"])
    assert len(await live.payments(order)) == 1
    assert len(await live.sandbox_trades()) == 1

    paid = await live.wallet("pay", on_pc["action"]["digitable_line"])
    assert paid.status_code == 200, paid.text
    await _clear_all(live, [on_pc])
    final = await live.order(order)
    assert (final["status"], final["paid_payment_id"]) == ("READY_FOR_SHIPMENT", on_pc["id"])
    assert [(m.kind, m.amount) for m in live.sandbox.ledger()] == [("capture", 3998)]


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
