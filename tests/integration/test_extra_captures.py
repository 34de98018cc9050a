"""Extra captures refund themselves (a voucher or an Alipay payment landing after another
channel paid the order), and a voucher paid days after its order's deadline, within the bank's
business-day rules, pays its order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from payonce.domain.channels import Channel
from payonce.domain.ids import PaymentId
from payonce.domain.refund import RefundReason
from payonce.sandbox.faults import FaultRates, FaultSettings
from payonce.service import outbox
from payonce.service.expiry import expire_due
from payonce.service.polling import poll_due
from payonce.service.refunds import refund_extra_capture
from tests.integration.conftest import Live, LiveFactory
from tests.integration.test_channels import _approve


def _net(live: Live, out_trade_nos: list[str]) -> int:
    moved = [m for n in out_trade_nos for m in live.sandbox.ledger(n)]
    return sum(m.amount if m.kind == "capture" else -m.amount for m in moved)


async def _until_confirmed(live: Live, out_trade_no: str) -> None:
    """Walk the clock a day at a time until the bank's clearing confirmed the voucher."""
    for _ in range(10):
        await live.sandbox.advance_clock(86400)
        if live.sandbox.ledger(out_trade_no):
            return
    raise AssertionError(f"boleto {out_trade_no} was not confirmed within ten days")


async def test_a_boleto_paid_after_another_channel_paid_the_order_is_refunded_once(
    live: Live,
) -> None:
    deps = live.container.deps
    order = await live.create_order(currency="BRL")
    voucher = await live.apply(order, "boleto", "pc")
    assert voucher.status_code == 201, voucher.text
    # The shopper would rather pay by PayPal now: the voucher cannot be withdrawn, so it stays.
    paypal = await live.apply(order, "paypal", "pc")
    assert paypal.status_code == 201, paypal.text
    await _approve(live, paypal.json()["action"]["redirect_url"])
    assert (await live.order(order))["paid_payment_id"] == paypal.json()["id"]

    # ... and then pays the voucher at the bank too.
    paid = await live.wallet("pay", voucher.json()["action"]["digitable_line"])
    assert paid.status_code == 200, paid.text
    await _until_confirmed(live, voucher.json()["out_trade_no"])
    await live.sandbox.deliver_due()
    await outbox.deliver_due(deps)

    final = await live.order(order)
    assert (final["status"], final["paid_payment_id"]) == (
        "READY_FOR_SHIPMENT",
        paypal.json()["id"],
    )
    by_channel = {p["channel"]: p for p in await live.payments(order)}
    assert (by_channel["paypal"]["status"], by_channel["paypal"]["applied"]) == ("PAID", True)
    boleto = by_channel["boleto"]
    assert (boleto["status"], boleto["applied"]) == ("REFUNDED", False)
    assert boleto["refund"]["reason"] == "duplicate"
    assert boleto["refund"]["status"] == "SUCCEEDED"
    assert boleto["refund"]["refund_no"] == f"{boleto['out_trade_no']}R1"
    assert "refund" not in by_channel["paypal"]
    assert [(m.kind, m.amount, m.reference) for m in live.sandbox.ledger(boleto["out_trade_no"])][
        1:
    ] == [("refund", 3998, boleto["refund"]["refund_no"])]

    # Asked again once refunded (a replay, a second worker): nothing is asked of the provider.
    # (A refund whose answer was lost is asked again by number: see the test further down.)
    calls = len(live.sandbox.calls(boleto["out_trade_no"]))
    again = await refund_extra_capture(deps, PaymentId(boleto["id"]), RefundReason.DUPLICATE)
    assert again.status.value == "REFUNDED"
    assert len(live.sandbox.calls(boleto["out_trade_no"])) == calls
    refunds = [m for m in live.sandbox.ledger() if m.kind == "refund"]
    assert len(refunds) == 1
    out_trade_nos = [p["out_trade_no"] for p in by_channel.values()]
    assert _net(live, out_trade_nos) == order["amount"]


def _sao_paulo(day: int, hour: int) -> datetime:
    """That hour of a day of November 2026 in São Paulo (UTC-3), as a UTC instant."""
    return datetime(2026, 11, day, hour + 3, 0, tzinfo=UTC)


async def _walk_to(live: Live, when: datetime) -> None:
    await live.sandbox.advance_clock((when - live.clock.now()).total_seconds())


async def test_a_boleto_due_on_saturday_and_paid_on_monday_pays_its_order(live: Live) -> None:
    deps = live.container.deps
    await _walk_to(live, _sao_paulo(28, 11))  # Saturday 28 November, 11:00
    order = await live.create_order(currency="BRL")  # its deadline: Saturday, 11:30
    voucher = await live.apply(order, "boleto", "pc")
    assert voucher.status_code == 201, voucher.text
    assert voucher.json()["action"]["due_date"] == "2026-11-28"
    action_expires = datetime.fromisoformat(voucher.json()["action"]["expires_at"])
    # A Saturday due date is payable without charges up to the end of Monday (São Paulo).
    assert action_expires == datetime(2026, 12, 1, 3, 0, tzinfo=UTC)

    # Past the order's own deadline, the weekend: the voucher keeps its order open, and the
    # order's deadline stays its own (no new trade may open now).
    await _walk_to(live, _sao_paulo(29, 20))
    assert await expire_due(deps) == 0
    current = await live.order(order)
    assert (current["status"], current["expires_at"]) == ("UNPAID", order["expires_at"])
    refused = await live.apply(order, "paypal", "pc")
    assert (refused.status_code, refused.json()["code"]) == (409, "order_expired")

    await _walk_to(live, _sao_paulo(30, 10))  # Monday, 10:00: paid at the bank
    paid = await live.wallet("pay", voucher.json()["action"]["digitable_line"])
    assert paid.status_code == 200, paid.text
    await _until_confirmed(live, voucher.json()["out_trade_no"])
    await live.sandbox.deliver_due()
    await poll_due(deps)
    await expire_due(deps)

    final = await live.order(order)
    assert (final["status"], final["paid_payment_id"]) == (
        "READY_FOR_SHIPMENT",
        voucher.json()["id"],
    )
    [payment] = await live.payments(order)
    assert (payment["status"], payment["applied"]) == ("PAID", True)
    assert [m.kind for m in live.sandbox.ledger()] == ["capture"]  # nothing refunded


async def test_an_unpaid_voucher_s_order_closes_once_the_voucher_can_no_longer_be_paid(
    live: Live,
) -> None:
    deps = live.container.deps
    order = await live.create_order(currency="BRL")
    voucher = await live.apply(order, "boleto", "pc")
    assert voucher.status_code == 201, voucher.text
    payable_until = datetime.fromisoformat(voucher.json()["action"]["expires_at"])
    await _walk_to(live, datetime.fromisoformat(order["expires_at"]))
    assert await expire_due(deps) == 0  # the voucher may still be paid
    settled_by = payable_until + deps.policy.settle_windows[Channel.BOLETO]
    await _walk_to(live, settled_by - timedelta(seconds=1))
    assert await expire_due(deps) == 0
    await _walk_to(live, settled_by)
    assert await expire_due(deps) == 1
    final: dict[str, Any] = await live.order(order)
    assert final["status"] == "CLOSED"
    [payment] = await live.payments(order)
    assert payment["status"] == "CLOSED"  # the PSP expired it: asked, never cancelled
    assert not live.sandbox.ledger()


async def _alipay_scanned_then_paypal(live: Live) -> tuple[dict[str, Any], Any, Any]:
    """The shopper scans the Alipay QR and starts paying, then switches to PayPal: payonce
    closes the Alipay trade first, and Alipay's close does not hold (the payment under way
    will land anyway)."""
    order = await live.create_order()
    alipay = (await live.apply(order, "alipay", "pc")).json()
    assert (await live.wallet("scan", alipay["action"]["qr_code"])).status_code == 200
    paypal = await live.apply(order, "paypal", "pc")
    assert paypal.status_code == 201, paypal.text
    assert [t["status"] for t in await live.sandbox_trades(alipay["out_trade_no"])] == [
        "TRADE_CLOSED"
    ]
    live.sandbox.set_faults(FaultSettings(pay_after_close_rate=1.0))
    return order, alipay, paypal.json()


async def test_alipay_paid_after_paypal_paid_the_order_is_refunded_once(live: Live) -> None:
    order, alipay, paypal = await _alipay_scanned_then_paypal(live)
    await _approve(live, paypal["action"]["redirect_url"])
    assert (await live.order(order))["paid_payment_id"] == paypal["id"]
    # The Alipay payment that was under way lands now, after the close.
    assert (await live.wallet("pay", alipay["action"]["qr_code"])).status_code == 200
    await live.sandbox.deliver_due()
    await outbox.deliver_due(live.container.deps)

    final = await live.order(order)
    assert (final["status"], final["paid_payment_id"]) == ("READY_FOR_SHIPMENT", paypal["id"])
    by_channel = {p["channel"]: p for p in await live.payments(order)}
    assert (by_channel["paypal"]["status"], by_channel["paypal"]["applied"]) == ("PAID", True)
    assert (by_channel["alipay"]["status"], by_channel["alipay"]["applied"]) == ("REFUNDED", False)
    assert by_channel["alipay"]["refund"]["reason"] == "duplicate"
    ledger = [(m.channel, m.kind, m.amount) for m in live.sandbox.ledger()]
    assert sorted(ledger) == [
        ("alipay", "capture", 3998),
        ("alipay", "refund", 3998),
        ("paypal", "capture", 3998),
    ]
    assert _net(live, [alipay["out_trade_no"], paypal["out_trade_no"]]) == order["amount"]
    # The notification repeated, the relay run again: still one refund.
    await live.sandbox.advance_clock(3600)
    await outbox.deliver_due(live.container.deps)
    assert len([m for m in live.sandbox.ledger() if m.kind == "refund"]) == 1


async def test_alipay_landing_before_the_paypal_approval_pays_and_paypal_never_captures(
    live: Live,
) -> None:
    order, alipay, paypal = await _alipay_scanned_then_paypal(live)
    assert (await live.wallet("pay", alipay["action"]["qr_code"])).status_code == 200
    await live.sandbox.deliver_due()
    assert (await live.order(order))["paid_payment_id"] == alipay["id"]
    # The shopper approves PayPal too: payonce no longer wants it, so it never captures.
    await _approve(live, paypal["action"]["redirect_url"])

    final = await live.order(order)
    assert (final["status"], final["paid_payment_id"]) == ("READY_FOR_SHIPMENT", alipay["id"])
    ledger = [(m.channel, m.kind) for m in live.sandbox.ledger()]
    assert ledger == [("alipay", "capture")]
    assert _net(live, [alipay["out_trade_no"], paypal["out_trade_no"]]) == order["amount"]


async def test_a_refund_whose_answer_was_lost_is_confirmed_and_never_repeated(
    start_live: LiveFactory,
) -> None:
    live = await start_live(provider_timeout_s=0.3)
    deps = live.container.deps
    order, alipay, paypal = await _alipay_scanned_then_paypal(live)
    await _approve(live, paypal["action"]["redirect_url"])
    live.sandbox.set_faults(
        FaultSettings(
            pay_after_close_rate=1.0,
            channels={"alipay": FaultRates(refund_timeout_rate=1.0)},
            timeout_hold_s=1.0,
        )
    )
    assert (await live.wallet("pay", alipay["action"]["qr_code"])).status_code == 200
    await live.sandbox.deliver_due()
    await outbox.deliver_due(deps)  # the refund is made, its answer is lost

    by_channel = {p["channel"]: p for p in await live.payments(order)}
    assert by_channel["alipay"]["status"] == "REFUNDING"
    assert by_channel["alipay"]["refund"]["status"] == "REQUESTED"
    assert [m.kind for m in live.sandbox.ledger(alipay["out_trade_no"])] == ["capture", "refund"]

    live.sandbox.set_faults(FaultSettings())
    live.clock.advance(deps.policy.outbox_backoff_max)
    await outbox.deliver_due(deps)  # asked again with the same number: Alipay says it is done

    by_channel = {p["channel"]: p for p in await live.payments(order)}
    assert by_channel["alipay"]["status"] == "REFUNDED"
    assert by_channel["alipay"]["refund"]["status"] == "SUCCEEDED"
    assert [m.kind for m in live.sandbox.ledger(alipay["out_trade_no"])] == ["capture", "refund"]
    assert _net(live, [alipay["out_trade_no"], paypal["out_trade_no"]]) == order["amount"]
