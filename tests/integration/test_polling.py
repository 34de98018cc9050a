"""Active queries: with every notification lost, the first poll after payment finds it, and a
shopper's read finds it sooner."""

from __future__ import annotations

from datetime import timedelta

import pytest

from payonce.domain.channels import Channel
from payonce.sandbox.faults import FaultSettings
from payonce.service.polling import poll_due
from tests.integration.conftest import Live
from tests.integration.test_channels import CASES, _scan_and_pay


@pytest.mark.parametrize("case", ["alipay-pc", "wechat-pc", "paypal-pc", "boleto-pc"])
async def test_with_every_notification_dropped_the_first_poll_after_payment_finds_it(
    live: Live, case: str
) -> None:
    row = CASES[case]
    deps = live.container.deps
    live.sandbox.set_faults(FaultSettings(notify_drop_rate=1.0))
    order = await live.create_order(currency=row.currency)
    applied = await live.apply(order, row.channel, row.platform)
    assert applied.status_code == 201, applied.text
    await row.pay(live, applied.json()["action"][row.code_field])
    assert (await live.order(order))["status"] == "UNPAID"  # payonce heard nothing
    out_trade_no = applied.json()["out_trade_no"]
    # Paid (PayPal: approved, and the money moves when payonce captures).
    assert len(live.sandbox.ledger(out_trade_no)) == (0 if row.channel == "paypal" else 1)

    live.clock.advance(deps.policy.poll_wait(Channel(row.channel), 0))
    assert await poll_due(deps) == 1

    assert (await live.order(order))["status"] == "READY_FOR_SHIPMENT"
    assert [p["status"] for p in await live.payments(order)] == ["PAID"]
    assert not [d for d in live.sandbox.deliveries() if d.ok]  # no notification ever arrived
    assert [m.kind for m in live.sandbox.ledger(out_trade_no)] == ["capture"]
    # The settled trade is polled no more.
    live.clock.advance(deps.policy.poll_wait(Channel(row.channel), 10))
    assert await poll_due(deps) == 0


async def test_an_open_trade_is_polled_on_its_channel_s_schedule_until_it_settles(
    live: Live,
) -> None:
    deps = live.container.deps
    order = await live.create_order()
    applied = await live.apply(order, "alipay", "pc")
    assert applied.status_code == 201, applied.text
    schedule = deps.policy.poll_schedules[Channel.ALIPAY]
    for wait in schedule[:3]:
        assert await poll_due(deps) == 0  # not due yet
        live.clock.advance(wait)
        assert await poll_due(deps) == 1  # unscanned: Alipay knows no trade, which is no close
    assert [p["status"] for p in await live.payments(order)] == ["PAYING"]
    cancelled = await live.http.post(
        f"/api/payments/{applied.json()['id']}/cancel",
        headers={"Authorization": f"Bearer {order['client_secret']}"},
    )
    assert cancelled.status_code == 200, cancelled.text
    live.clock.advance(schedule[3])
    assert await poll_due(deps) == 1  # finds it closed and stops
    live.clock.advance(schedule[-1] * 10)
    assert await poll_due(deps) == 0


async def test_a_shopper_reading_an_open_payment_makes_payonce_ask_the_provider_now(
    live: Live,
) -> None:
    live.sandbox.set_faults(FaultSettings(notify_drop_rate=1.0))
    order = await live.create_order()
    applied = await live.apply(order, "alipay", "pc")
    assert applied.status_code == 201, applied.text
    out_trade_no = applied.json()["out_trade_no"]
    shopper = {"Authorization": f"Bearer {order['client_secret']}"}

    def queries() -> int:
        return sum(1 for call in live.sandbox.calls(out_trade_no) if call.method.endswith("query"))

    await live.http.get(f"/api/orders/{order['id']}", headers=shopper)  # unpaid: asked once
    assert queries() == 1
    await _scan_and_pay(live, applied.json()["action"]["qr_code"])  # the notification is lost
    # The shop backend's reads never call the provider, and the shopper's are rate-limited.
    assert (await live.order(order))["status"] == "UNPAID"
    seen = await live.http.get(f"/api/orders/{order['id']}", headers=shopper)
    assert (seen.json()["status"], queries()) == ("UNPAID", 1)

    live.clock.advance(timedelta(seconds=live.container.deps.policy.read_repair_interval_s))
    seen = await live.http.get(f"/api/orders/{order['id']}", headers=shopper)
    assert (seen.json()["status"], queries()) == ("READY_FOR_SHIPMENT", 2)
    payment = await live.http.get(f"/api/payments/{applied.json()['id']}", headers=shopper)
    assert payment.json()["status"] == "PAID"
    assert queries() == 2  # settled: nothing left to ask
