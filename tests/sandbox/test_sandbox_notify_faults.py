"""Notification faults: forged copies beside the genuine one, reordering, per-channel settings."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sandbox_harness import Env, Receiver

from payonce.sandbox import FaultSettings
from payonce.sandbox.faults import FORGERIES

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _pay(env: Env, receiver: Receiver, out_trade_no: str) -> None:
    created = await env.precreate(out_trade_no, "10.00", notify_url=receiver.url)
    assert (await env.wallet("pay", created["qr_code"])).status_code == 200


@pytest.mark.parametrize("forgery", FORGERIES)
async def test_a_forged_copy_goes_out_before_the_genuine_notification(
    env: Env, receiver: Receiver, forgery: str
) -> None:
    env.sandbox.set_faults(FaultSettings(notify_forge_rate=1.0, notify_forgeries=(forgery,)))
    await _pay(env, receiver, f"fg_{forgery}")
    assert await env.sandbox.deliver_due() == 1
    forged, genuine = env.sandbox.deliveries()
    assert (forged.fault, genuine.fault) == (f"forged:{forgery}", None)
    assert forged.notify_id == genuine.notify_id
    assert genuine.ok
    assert receiver.verified[1] is True
    # Only a tampered signature fails verification; the others are validly signed lies.
    assert receiver.verified[0] is (forgery != "bad_signature")
    difference = {
        key
        for key in forged.form.keys() | genuine.form.keys()
        if forged.form.get(key) != genuine.form.get(key)
    }
    expected = {
        "bad_signature": {"sign"},
        "changed_amount": {"sign", "total_amount"},
        "other_merchant": {"sign", "app_id", "seller_id"},
        "stale_timestamp": {"sign", "notify_time"},
    }[forgery]
    assert difference == expected
    if forgery == "stale_timestamp":
        assert forged.form["notify_time"] == "2026-11-24 08:00:00"  # two hours earlier


async def test_a_refused_forgery_does_not_stop_the_genuine_retries(
    env: Env, receiver: Receiver
) -> None:
    env.sandbox.set_faults(FaultSettings(notify_forge_rate=1.0))
    receiver.answers = [(200, "success"), (500, "fail")]  # the forgery "accepted", then 500
    await _pay(env, receiver, "fg_retry")
    await env.sandbox.deliver_due()
    assert [d.ok for d in env.sandbox.deliveries()] == [True, False]
    await env.sandbox.advance_clock(timedelta(minutes=4).total_seconds())
    faults = [(d.fault or "genuine").split(":")[0] for d in env.sandbox.deliveries()]
    assert faults == ["forged", "genuine", "forged", "genuine"]
    assert env.sandbox.deliveries()[-1].ok


async def test_reordered_notifications_are_overtaken_by_later_ones(
    env: Env, receiver: Receiver
) -> None:
    # Seed 1 reorders the first notification of this test and not the second.
    settings = FaultSettings(seed=1, notify_reorder_rate=0.5, notify_reorder_s=60)
    env.sandbox.set_faults(settings)
    await _pay(env, receiver, "ro_1")
    await _pay(env, receiver, "ro_2")
    await env.sandbox.deliver_due()
    assert [d.out_trade_no for d in env.sandbox.deliveries()] == ["ro_2"]
    await env.sandbox.advance_clock(60)
    delivered = [(d.out_trade_no, d.fault, d.ok) for d in env.sandbox.deliveries()]
    assert delivered == [("ro_2", None, True), ("ro_1", "reordered", True)]


async def test_faults_set_for_another_channel_leave_alipay_alone(
    env: Env, receiver: Receiver
) -> None:
    env.sandbox.set_faults(
        FaultSettings.model_validate({"channels": {"wechat": {"notify_drop_rate": 1.0}}})
    )
    await _pay(env, receiver, "ch_1")
    await env.sandbox.deliver_due()
    assert [(d.fault, d.ok) for d in env.sandbox.deliveries()] == [(None, True)]
    env.sandbox.set_faults(
        FaultSettings.model_validate({"channels": {"alipay": {"notify_drop_rate": 1.0}}})
    )
    await _pay(env, receiver, "ch_2")
    await env.sandbox.deliver_due()
    assert [(d.fault, d.ok) for d in env.sandbox.deliveries("ch_2")] == [("dropped", False)]


@pytest.mark.parametrize(
    ("call", "fault"),
    [("precreate", "create_error"), ("close", "close_error"), ("refund", "refund_error")],
)
async def test_an_error_fault_answers_system_error_and_does_nothing(
    env: Env, call: str, fault: str
) -> None:
    created = await env.precreate(f"er_{call}", "5.00")
    paid = await env.wallet("pay", created["qr_code"])
    assert paid.status_code == 200
    env.sandbox.set_faults(FaultSettings.model_validate({f"{fault}_rate": 1.0}))
    sdk = env.sdk()
    if call == "precreate":
        answer = await env.call(
            sdk.api_alipay_trade_precreate, subject="T", out_trade_no="er_new", total_amount="1"
        )
    elif call == "close":
        answer = await env.call(sdk.api_alipay_trade_close, out_trade_no=f"er_{call}")
    else:
        answer = await env.call(
            sdk.api_alipay_trade_refund, out_trade_no=f"er_{call}", refund_amount="5.00"
        )
    assert (answer["code"], answer["sub_code"]) == ("20000", "ACQ.SYSTEM_ERROR")
    assert [o.out_trade_no for o in env.sandbox.orders()] == [f"er_{call}"]
    assert [(m.kind, m.amount) for m in env.sandbox.ledger()] == [("capture", 500)]
    assert [t.status for t in env.sandbox.trades()] == ["TRADE_SUCCESS"]


async def test_a_query_that_times_out_still_answers_later(env: Env) -> None:
    created = await env.precreate("qt_1", "5.00")
    await env.wallet("scan", created["qr_code"])
    env.sandbox.set_faults(FaultSettings(query_timeout_rate=1.0, timeout_hold_s=0.2))
    slow = env.sdk(timeout=0.05)
    with pytest.raises(TimeoutError):  # the SDK's urlopen times out
        await env.call(slow.api_alipay_trade_query, out_trade_no="qt_1")
    [call] = [c for c in env.sandbox.calls("qt_1") if c.method == "alipay.trade.query"]
    assert (call.code, call.held) == ("10000", True)


async def _fault_pattern(env: Env, receiver: Receiver, seed: int, tag: str) -> list[str | None]:
    env.sandbox.set_faults(
        FaultSettings(
            seed=seed,
            notify_drop_rate=0.3,
            notify_duplicate_rate=0.3,
            notify_forge_rate=0.3,
        )
    )
    start = len(env.sandbox.deliveries())
    for number in range(6):
        await _pay(env, receiver, f"{tag}_{seed}_{number}")
    await env.sandbox.deliver_due()
    return [d.fault for d in env.sandbox.deliveries()[start:]]


async def test_the_same_seed_replays_the_same_notification_faults(
    env: Env, receiver: Receiver
) -> None:
    first = await _fault_pattern(env, receiver, seed=5, tag="a")
    second = await _fault_pattern(env, receiver, seed=5, tag="b")
    other = await _fault_pattern(env, receiver, seed=6, tag="c")
    assert first == second
    assert first != other
    assert {"dropped", None} <= set(first)
