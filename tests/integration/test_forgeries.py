"""Forged notifications, on every channel, change nothing; the genuine one then pays once.

The genuine deliveries are dropped while the shopper pays, so payonce has heard nothing when
each forged variant of every notification the provider sent arrives: a tampered signature, a
validly signed changed amount or other merchant, a replay with an old timestamp.
"""

from __future__ import annotations

from typing import Any

import pytest

from payonce.sandbox import FaultSettings
from payonce.sandbox.faults import FORGERIES
from tests.integration.conftest import Live
from tests.integration.test_channels import CASES, ChannelCase, ready


async def _state(live: Live, order: dict[str, Any]) -> tuple[Any, ...]:
    current = await live.order(order)
    payments = await live.payments(order)
    return (
        current["status"],
        current["status_version"],
        [(p["status"], p["status_version"], p["applied"]) for p in payments],
    )


@pytest.mark.parametrize("case", CASES.values(), ids=list(CASES))
async def test_forgeries_change_nothing_and_the_genuine_notification_pays(
    live: Live, case: ChannelCase
) -> None:
    order = await live.create_order(currency=case.currency)
    payment = (await live.apply(order, case.channel, case.platform)).json()
    live.sandbox.set_faults(FaultSettings(notify_drop_rate=1.0))
    await case.pay(live, payment["action"][case.code_field])
    [record] = await live.payments(order)
    sent = live.sandbox.notifications(record["out_trade_no"])
    assert sent, "the provider notified nothing"
    before = await _state(live, order)
    assert before[0] == "UNPAID"

    for channel, notify_id in sent:
        for forgery in FORGERIES:
            forged = live.sandbox.notification(channel, notify_id, forgery)
            answer = await live.http.post(
                f"/api/notify/{channel}", content=forged.body, headers=dict(forged.headers)
            )
            assert answer.status_code >= 400, (forgery, answer.text)
            assert await _state(live, order) == before, forgery

    live.sandbox.set_faults(FaultSettings())
    # Past every channel's first retry (Alipay's is 4 minutes), within the order's 30 minutes.
    await live.sandbox.advance_clock(300)
    final = await ready(live, order)
    assert final["status"] == "READY_FOR_SHIPMENT"
    movements = [(m.kind, m.amount) for m in live.sandbox.ledger(record["out_trade_no"])]
    assert movements == [("capture", 3998)]
