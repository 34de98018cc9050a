"""Alipay's asynchronous notifications: signed, verified by the SDK, retried on its schedule."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sandbox_harness import START, Env, Receiver

pytestmark = pytest.mark.asyncio(loop_scope="session")

SCHEDULE = [
    timedelta(0),
    timedelta(minutes=4),
    timedelta(minutes=10),
    timedelta(minutes=10),
    timedelta(hours=1),
    timedelta(hours=2),
    timedelta(hours=6),
    timedelta(hours=15),
]


async def _paid(env: Env, receiver: Receiver, out_trade_no: str) -> str:
    created = await env.precreate(out_trade_no, "39.98", notify_url=receiver.url)
    paid = await env.wallet("pay", created["qr_code"])
    assert paid.status_code == 200
    trade_no: str = paid.json()["trade_no"]
    return trade_no


async def test_a_payment_is_notified_and_the_sdk_verifies_it(env: Env, receiver: Receiver) -> None:
    trade_no = await _paid(env, receiver, "n_1")
    assert receiver.received == []  # nothing leaves before the dispatcher runs
    assert await env.sandbox.deliver_due() == 1
    assert receiver.verified == [True]
    form = dict(receiver.received[0])
    notify_id = form.pop("notify_id")
    sign = form.pop("sign")
    assert form == {
        "notify_time": "2026-11-24 10:00:00",
        "notify_type": "trade_status_sync",
        "app_id": env.credentials.app_id,
        "charset": "utf-8",
        "version": "1.0",
        "sign_type": "RSA2",
        "trade_no": trade_no,
        "out_trade_no": "n_1",
        "trade_status": "TRADE_SUCCESS",
        "total_amount": "39.98",
        "receipt_amount": "39.98",
        "buyer_pay_amount": "39.98",
        "invoice_amount": "39.98",
        "point_amount": "0.00",
        "seller_id": env.credentials.seller_id,
        "buyer_id": "2088102177846880",
        "gmt_create": "2026-11-24 10:00:00",
        "gmt_payment": "2026-11-24 10:00:00",
        "subject": "Tea",
    }
    assert sign
    (delivery,) = env.sandbox.deliveries("n_1")
    assert (delivery.notify_id, delivery.attempt, delivery.ok, delivery.answer) == (
        notify_id,
        1,
        True,
        "success",
    )
    assert (delivery.status_code, delivery.error, delivery.fault) == (200, None, None)
    env.clock.advance(timedelta(days=2))
    assert await env.sandbox.deliver_due() == 0
    assert len(receiver.received) == 1

    # A forged notification (one field changed) fails the same SDK check.
    forged = dict(receiver.received[0], total_amount="0.01")
    forged_sign = forged.pop("sign")
    assert not env.sdk().verify(forged, forged_sign)


async def test_retries_follow_alipays_schedule_until_success(env: Env, receiver: Receiver) -> None:
    receiver.answers = [(500, "fail")] * 4 + [(200, " success\n")]
    await _paid(env, receiver, "n_2")
    await env.sandbox.deliver_due()
    for wait in SCHEDULE[1:5]:
        env.clock.advance(wait - timedelta(seconds=1))
        assert await env.sandbox.deliver_due() == 0  # not due a second early
        response = await env.http.post(f"{env.url}/clock", json={"advance_s": 1})
        assert response.status_code == 200
    deliveries = env.sandbox.deliveries("n_2")
    assert [d.attempt for d in deliveries] == [1, 2, 3, 4, 5]
    assert [d.at - START for d in deliveries] == [
        timedelta(0),
        timedelta(minutes=4),
        timedelta(minutes=14),
        timedelta(minutes=24),
        timedelta(hours=1, minutes=24),
    ]
    assert [d.ok for d in deliveries] == [False, False, False, False, True]
    assert [d.status_code for d in deliveries] == [500, 500, 500, 500, 200]
    assert len({d.notify_id for d in deliveries}) == 1
    # Each attempt is signed afresh with its own notify_time.
    assert [d.form["notify_time"] for d in deliveries][:2] == [
        "2026-11-24 10:00:00",
        "2026-11-24 10:04:00",
    ]
    assert receiver.verified == [True] * 5
    env.clock.advance(timedelta(days=3))
    assert await env.sandbox.deliver_due() == 0
    assert len(env.sandbox.deliveries("n_2")) == 5


async def test_retries_stop_after_the_last_attempt(env: Env, receiver: Receiver) -> None:
    receiver.default = (500, "fail")
    await _paid(env, receiver, "n_3")
    await env.sandbox.deliver_due()
    for wait in SCHEDULE[1:]:
        env.clock.advance(wait)
        assert await env.sandbox.deliver_due() == 1
    env.clock.advance(timedelta(days=7))
    assert await env.sandbox.deliver_due() == 0
    deliveries = (
        await env.http.get(f"{env.url}/deliveries", params={"out_trade_no": "n_3"})
    ).json()
    offsets = [
        timedelta(minutes=0),
        timedelta(minutes=4),
        timedelta(minutes=14),
        timedelta(minutes=24),
        timedelta(minutes=84),
        timedelta(minutes=204),
        timedelta(minutes=564),
        timedelta(minutes=1464),
    ]
    assert [d["at"] for d in deliveries["deliveries"]] == [(START + o).isoformat() for o in offsets]
    assert [d["attempt"] for d in deliveries["deliveries"]] == list(range(1, 9))
    assert not any(d["ok"] for d in deliveries["deliveries"])


async def test_a_full_refund_notifies_trade_closed_with_a_new_notify_id(
    env: Env, receiver: Receiver
) -> None:
    await _paid(env, receiver, "n_4")
    await env.sandbox.deliver_due()
    refund = await env.call(
        env.sdk().api_alipay_trade_refund, refund_amount="39.98", out_trade_no="n_4"
    )
    assert refund["fund_change"] == "Y"
    await env.sandbox.deliver_due()
    success, closed = receiver.received
    assert (success["trade_status"], closed["trade_status"]) == ("TRADE_SUCCESS", "TRADE_CLOSED")
    assert success["notify_id"] != closed["notify_id"]
    assert (closed["refund_fee"], closed["out_biz_no"]) == ("39.98", "n_4")
    assert receiver.verified == [True, True]


async def test_two_dispatchers_never_send_an_attempt_twice(env: Env, receiver: Receiver) -> None:
    await _paid(env, receiver, "n_5")
    counts = await asyncio.gather(*(env.sandbox.deliver_due() for _ in range(3)))
    assert sorted(counts) == [0, 0, 1]
    assert len(receiver.received) == 1


async def test_the_dispatcher_delivers_on_its_own(env: Env, receiver: Receiver) -> None:
    dispatcher = asyncio.create_task(env.sandbox.run_dispatcher(interval_s=0.05))
    try:
        await _paid(env, receiver, "n_6")
        await asyncio.wait_for(receiver.arrived.wait(), timeout=5)
        assert receiver.received[0]["out_trade_no"] == "n_6"
    finally:
        await env.sandbox.aclose()
        await asyncio.wait_for(dispatcher, timeout=5)


async def test_notification_faults_drop_duplicate_and_delay(env: Env, receiver: Receiver) -> None:
    response = await env.http.put(
        f"{env.url}/faults",
        json={"seed": 3, "notify_drop_rate": 1.0, "notify_delay_s": [30, 30]},
    )
    assert response.status_code == 200
    await _paid(env, receiver, "n_7")
    assert await env.sandbox.deliver_due() == 0  # the first attempt is 30 s late
    env.clock.advance(timedelta(seconds=30))
    assert await env.sandbox.deliver_due() == 1
    (dropped,) = env.sandbox.deliveries("n_7")
    assert (dropped.fault, dropped.error, dropped.ok, dropped.status_code) == (
        "dropped",
        "dropped",
        False,
        None,
    )
    assert receiver.received == []

    await env.http.put(f"{env.url}/faults", json={"notify_duplicate_rate": 1.0})
    env.clock.advance(timedelta(minutes=4, seconds=30))
    assert await env.sandbox.deliver_due() == 1
    first, second = receiver.received
    assert first == second  # the very same body, twice
    assert [(d.attempt, d.fault) for d in env.sandbox.deliveries("n_7")] == [
        (1, "dropped"),
        (2, None),
        (2, "duplicate"),
    ]
