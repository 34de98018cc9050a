"""While payonce's notify endpoint answers 500, every provider retries on its own schedule, and
the payment still reaches the order exactly once when the endpoint is back."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest

from tests.integration.conftest import Live
from tests.integration.test_channels import CASES, ChannelCase, ready

# The first four waits of each channel's retry schedule, restated from the providers' documents
# (each channel's sandbox tests check its whole schedule). The outage lasts the first three.
FIRST_WAITS = {
    "alipay": [
        timedelta(minutes=4),
        timedelta(minutes=10),
        timedelta(minutes=10),
        timedelta(hours=1),
    ],
    "wechat": [
        timedelta(seconds=15),
        timedelta(seconds=15),
        timedelta(seconds=30),
        timedelta(minutes=3),
    ],
    "paypal": [
        timedelta(seconds=15),
        timedelta(minutes=1),
        timedelta(minutes=5),
        timedelta(minutes=15),
    ],
    "boleto": [
        timedelta(minutes=1),
        timedelta(minutes=5),
        timedelta(minutes=30),
        timedelta(hours=2),
    ],
}
ONE_PER_CHANNEL = {case.channel: name for name, case in reversed(CASES.items())}


@pytest.mark.parametrize(
    "case", [CASES[name] for name in sorted(ONE_PER_CHANNEL.values())], ids=sorted(ONE_PER_CHANNEL)
)
async def test_retries_follow_the_channels_schedule_until_payonce_answers(
    live: Live, case: ChannelCase
) -> None:
    order = await live.create_order(currency=case.currency)
    payment = (await live.apply(order, case.channel, case.platform)).json()
    live.outage.down = True
    await case.pay(live, payment["action"][case.code_field])
    out_trade_no = payment["out_trade_no"]

    *waits, recovery = FIRST_WAITS[case.channel]
    for wait in waits:
        await live.sandbox.advance_clock(wait.total_seconds())
    attempts = [d for d in live.sandbox.deliveries(out_trade_no) if d.fault is None]
    first_id = attempts[0].notify_id
    tried = [d for d in attempts if d.notify_id == first_id]
    assert [d.status_code for d in tried] == [500] * (len(waits) + 1)
    assert [later.at - earlier.at for earlier, later in itertools.pairwise(tried)] == waits
    assert (await live.order(order))["status"] == "UNPAID"  # nothing heard, nothing applied

    live.outage.down = False
    await live.sandbox.advance_clock(recovery.total_seconds())  # the next attempt is answered
    final = await ready(live, order)
    assert (final["status"], final["paid_payment_id"]) == ("READY_FOR_SHIPMENT", payment["id"])
    assert [(m.kind, m.amount) for m in live.sandbox.ledger(out_trade_no)] == [("capture", 3998)]
    retried = [d for d in live.sandbox.deliveries(out_trade_no) if d.notify_id == first_id]
    assert retried[-1].ok
