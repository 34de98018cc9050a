"""Expiry: an order past its deadline closes its trades at the provider, then itself; a payment
that comes after the deadline is refunded (or, by setting, reopens the order)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from payonce.domain.outcomes import LateCaptures
from payonce.sandbox.faults import FaultSettings
from payonce.service import outbox
from payonce.service.context import Policy
from payonce.service.expiry import expire_due
from tests.integration.conftest import Live, LiveFactory


async def _to_deadline(live: Live, order: dict[str, object], *, plus_s: float = 0) -> None:
    deadline = datetime.fromisoformat(str((await live.order(order))["expires_at"]))
    live.clock.advance(deadline - live.clock.now() + timedelta(seconds=plus_s))


async def test_an_expired_order_closes_its_open_trade_at_the_provider_then_closes(
    live: Live,
) -> None:
    deps = live.container.deps
    order = await live.create_order()
    applied = await live.apply(order, "wechat", "pc")
    assert applied.status_code == 201, applied.text
    out_trade_no = applied.json()["out_trade_no"]

    assert await expire_due(deps) == 0  # not yet due
    await _to_deadline(live, order)
    assert await expire_due(deps) == 1

    assert (await live.order(order))["status"] == "CLOSED"
    [payment] = await live.payments(order)
    assert payment["status"] == "CLOSED"
    [trade] = await live.sandbox_trades(out_trade_no)
    assert trade["status"] == "CLOSED"
    methods = [call.method for call in live.sandbox.calls(out_trade_no)]
    # Closed, then asked once more: a close can race a payment the provider already took.
    assert methods == [
        "POST /v3/pay/transactions/native",
        "POST /v3/pay/transactions/out-trade-no/{out_trade_no}/close",
        "GET /v3/pay/transactions/out-trade-no/{out_trade_no}",
    ]
    assert await expire_due(deps) == 0  # closed once
    refused = await live.apply(order, "alipay", "pc")
    assert (refused.status_code, refused.json()["code"]) == (409, "order_closed")
    assert not live.sandbox.ledger()


async def test_a_trade_that_will_not_close_yet_keeps_its_order_open_and_is_tried_again(
    live: Live,
) -> None:
    deps = live.container.deps
    order = await live.create_order()
    applied = await live.apply(order, "alipay", "pc")
    assert applied.status_code == 201, applied.text
    await _to_deadline(live, order)
    live.sandbox.set_faults(FaultSettings(close_error_rate=1.0))
    assert await expire_due(deps) == 0
    assert (await live.order(order))["status"] == "UNPAID"
    assert await expire_due(deps) == 0  # postponed: not tried again at once
    closes = [c for c in live.sandbox.calls(applied.json()["out_trade_no"]) if "close" in c.method]
    assert len(closes) == 1

    live.sandbox.set_faults(FaultSettings())
    live.clock.advance(deps.policy.expiry_retry)
    assert await expire_due(deps) == 1
    assert (await live.order(order))["status"] == "CLOSED"


async def _pay_one_second_late(
    live: Live, *, expired_first: bool = False
) -> tuple[dict[str, object], dict[str, object]]:
    """The shopper scans in time and pays one second after the deadline, at a provider whose
    clock runs five seconds behind ours: it takes the payment. ``expired_first``: payonce's
    expiry ran a moment before, closing the order (and its trade, a close that did not hold)."""
    live.sandbox.set_faults(FaultSettings(pay_late_by_s=5, pay_after_close_rate=1.0))
    order = await live.create_order()
    applied = await live.apply(order, "alipay", "pc")
    assert applied.status_code == 201, applied.text
    code = applied.json()["action"]["qr_code"]
    assert (await live.wallet("scan", code)).status_code == 200
    await _to_deadline(live, order, plus_s=1)
    if expired_first:
        assert await expire_due(live.container.deps) == 1
        assert (await live.order(order))["status"] == "CLOSED"
    assert (await live.wallet("pay", code)).status_code == 200
    await live.sandbox.deliver_due()
    await outbox.deliver_due(live.container.deps)  # the relay: refunds are never inline
    return order, applied.json()


@pytest.mark.parametrize("expired_first", [False, True], ids=["open", "closed"])
async def test_a_payment_one_second_after_the_deadline_is_refunded_and_the_order_closes(
    live: Live, expired_first: bool
) -> None:
    order, payment = await _pay_one_second_late(live, expired_first=expired_first)
    await expire_due(live.container.deps)

    shopper = {"Authorization": f"Bearer {order['client_secret']}"}
    seen = await live.http.get(f"/api/orders/{order['id']}", headers=shopper)
    assert (seen.json()["status"], seen.json()["paid_payment_id"]) == ("CLOSED", None)
    listed = await live.http.get(f"/api/orders/{order['id']}/payments", headers=shopper)
    [refunded] = listed.json()["payments"]
    assert (refunded["status"], refunded["applied"]) == ("REFUNDED", False)
    assert (refunded["refund"]["reason"], refunded["refund"]["status"]) == ("late", "SUCCEEDED")
    ledger = live.sandbox.ledger(str(payment["out_trade_no"]))
    assert [(m.kind, m.amount) for m in ledger] == [("capture", 3998), ("refund", 3998)]


@pytest.mark.parametrize("expired_first", [False, True], ids=["open", "closed"])
async def test_with_the_reopen_policy_a_late_payment_pays_its_order(
    start_live: LiveFactory, expired_first: bool
) -> None:
    live = await start_live(policy=Policy(late_captures=LateCaptures.REOPEN))
    order, payment = await _pay_one_second_late(live, expired_first=expired_first)
    await expire_due(live.container.deps)

    final = await live.order(order)
    assert (final["status"], final["paid_payment_id"]) == ("READY_FOR_SHIPMENT", payment["id"])
    ledger = live.sandbox.ledger(str(payment["out_trade_no"]))
    assert [m.kind for m in ledger] == ["capture"]
