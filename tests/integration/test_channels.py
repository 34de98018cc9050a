"""Every channel end to end: apply, the right action, the shopper pays, the order is ready once.

One table row per channel says what differs: the currency it takes, the action each platform
gets, and how the shopper pays (scan and pay, approve, pay at a bank and wait for business
days). The rest is the same promise for all: one capture in the provider's ledger, one applied
payment, the order READY_FOR_SHIPMENT, and every notification acknowledged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.integration.conftest import Live


@dataclass(frozen=True)
class ChannelCase:
    channel: str
    currency: str
    platform: str
    action_type: str
    code_field: str  # the action field the shopper's wallet reads
    # The shopper pays with that code; the provider settles and notifies (clock walked if needed).
    pay: Callable[[Live, str], Awaitable[None]]


async def _scan_and_pay(live: Live, code: str) -> None:
    assert (await live.wallet("scan", code)).status_code == 200
    assert (await live.wallet("pay", code)).status_code == 200
    await live.sandbox.deliver_due()


async def _pay_at_bank_and_wait(live: Live, code: str) -> None:
    """Pay the boleto at a bank; the PSP confirms it 1 to 3 business days later, then notifies."""
    paid = await live.wallet("pay", code)
    assert paid.status_code == 200, paid.text
    out_trade_no = paid.json()["out_trade_no"]
    for _ in range(10):
        await live.sandbox.advance_clock(86400)
        if live.sandbox.ledger(out_trade_no):
            return
    raise AssertionError(f"boleto {out_trade_no} was not confirmed within ten days")


async def _approve(live: Live, code: str) -> None:
    """PayPal: the buyer opens the approve link and approves; payonce captures on the webhook."""
    assert (await live.wallet("scan", code)).status_code == 200
    assert (await live.wallet("pay", code)).status_code == 200
    await live.sandbox.deliver_due()


CASES = {
    "alipay-pc": ChannelCase("alipay", "CNY", "pc", "qr_code", "qr_code", _scan_and_pay),
    "alipay-wap": ChannelCase("alipay", "CNY", "wap", "launch_url", "launch_url", _scan_and_pay),
    "alipay-app": ChannelCase("alipay", "CNY", "app", "app_order", "order_string", _scan_and_pay),
    "wechat-pc": ChannelCase("wechat", "CNY", "pc", "qr_code", "qr_code", _scan_and_pay),
    "wechat-wap": ChannelCase("wechat", "CNY", "wap", "launch_url", "launch_url", _scan_and_pay),
    "wechat-app": ChannelCase("wechat", "CNY", "app", "app_order", "prepay_id", _scan_and_pay),
    "boleto-pc": ChannelCase(
        "boleto", "BRL", "pc", "voucher", "digitable_line", _pay_at_bank_and_wait
    ),
    "boleto-wap": ChannelCase("boleto", "BRL", "wap", "voucher", "barcode", _pay_at_bank_and_wait),
    "boleto-app": ChannelCase(
        "boleto", "BRL", "app", "voucher", "digitable_line", _pay_at_bank_and_wait
    ),
    "paypal-pc": ChannelCase("paypal", "USD", "pc", "redirect_url", "redirect_url", _approve),
    "paypal-wap": ChannelCase("paypal", "EUR", "wap", "redirect_url", "redirect_url", _approve),
    "paypal-app": ChannelCase("paypal", "GBP", "app", "redirect_url", "redirect_url", _approve),
}


async def ready(live: Live, order: dict[str, Any]) -> dict[str, Any]:
    """The order once the notifications due now were delivered (and any follow-ups)."""
    for _ in range(5):
        current = await live.order(order)
        if current["status"] == "READY_FOR_SHIPMENT":
            return current
        await live.sandbox.deliver_due()
    return await live.order(order)


@pytest.mark.parametrize("case", CASES.values(), ids=list(CASES))
async def test_each_channel_pays_the_order_exactly_once(live: Live, case: ChannelCase) -> None:
    order = await live.create_order(currency=case.currency)
    response = await live.apply(order, case.channel, case.platform)
    assert response.status_code in (200, 201), response.text
    payment = response.json()
    assert payment["action"]["type"] == case.action_type

    await case.pay(live, payment["action"][case.code_field])

    final = await ready(live, order)
    assert final["status"] == "READY_FOR_SHIPMENT"
    assert final["paid_payment_id"] == payment["id"]
    [paid] = await live.payments(order)
    assert (paid["status"], paid["applied"]) == ("PAID", True)
    out_trade_no = paid["out_trade_no"]
    movements = [(m.kind, m.amount, m.currency) for m in live.sandbox.ledger(out_trade_no)]
    assert movements == [("capture", 3998, case.currency)]
    deliveries = live.sandbox.deliveries(out_trade_no)
    assert deliveries
    assert all(d.ok for d in deliveries if d.fault is None)
