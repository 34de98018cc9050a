"""The boleto PSP's webhooks: signed JSON events, retried on the PSP's schedule until a 2xx.

Sent on confirmation and on refund; dropped, duplicated and forged on demand.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from boleto_harness import HookReceiver, Psp, hook_receiver_app, pay_at_bank, verify, walk_to
from sandbox_harness import Env, bound_socket, serve

from payonce.sandbox import SandboxKeys
from payonce.sandbox.faults import FaultSettings

pytestmark = pytest.mark.asyncio(loop_scope="session")

# After the first attempt, the waits before each retry.
RETRY_WAITS = [
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=6),
    timedelta(hours=24),
    timedelta(hours=24),
    timedelta(hours=24),
]


class _Slot:
    current: HookReceiver | None = None

    def get(self) -> HookReceiver:
        assert self.current is not None
        return self.current


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def hook_server() -> AsyncIterator[tuple[str, _Slot]]:
    sock, base = bound_socket()
    slot = _Slot()
    async with serve(hook_receiver_app(slot.get), sock):
        yield f"{base}/hooks", slot


@pytest.fixture
def hooks(hook_server: tuple[str, _Slot], keys: SandboxKeys) -> HookReceiver:
    url, slot = hook_server
    slot.current = HookReceiver(url=url, secret=keys.boleto.webhook_secret)
    return slot.current


async def _confirmed(env: Env, hooks: HookReceiver, code: str) -> tuple[dict[str, Any], datetime]:
    """A charge paid at the bank; the clock stands at its confirmation, nothing delivered yet."""
    charge = await Psp(env).charge(code, notify=hooks.url)
    confirm_at = await pay_at_bank(env, charge)
    env.clock.advance(confirm_at - env.clock.now())
    return charge, confirm_at


async def test_a_confirmed_payment_is_notified_signed(env: Env, hooks: HookReceiver) -> None:
    charge, confirm_at = await _confirmed(env, hooks, "h_1")
    assert await env.sandbox.deliver_due() == 1
    [(headers, body)] = hooks.received
    assert hooks.verified == [True]
    assert headers["content-type"] == "application/json"
    stamp, valid = verify(hooks.secret, headers["x-boleto-signature"], body)
    assert (valid, stamp) == (True, int(confirm_at.timestamp()))
    event = json.loads(body)
    assert event["id"].startswith("hook_")
    assert event["type"] == "charge.paid"
    assert event["created_at"] == "2026-11-26T12:00:00Z"
    assert event["account"] == {
        "id": env.keys.boleto.account_id,
        "name": "payonce sandbox merchant",
    }
    paid = (await Psp(env).get(charge["id"])).json()
    assert event["data"] == paid
    assert (paid["status"], paid["paid_amount"]) == ("paid", 3998)
    [delivery] = env.sandbox.deliveries("h_1")
    assert (delivery.notify_id, delivery.attempt, delivery.ok, delivery.status_code) == (
        event["id"],
        1,
        True,
        200,
    )
    env.clock.advance(timedelta(days=5))
    assert await env.sandbox.deliver_due() == 0


async def test_retries_follow_the_psps_schedule_and_stop_at_a_2xx(
    env: Env, hooks: HookReceiver
) -> None:
    hooks.answers = [500, 503, 404, 500, 202]
    _, confirm_at = await _confirmed(env, hooks, "h_2")
    await env.sandbox.deliver_due()
    for wait in RETRY_WAITS[:4]:
        env.clock.advance(wait - timedelta(seconds=1))
        assert await env.sandbox.deliver_due() == 0  # not a second early
        env.clock.advance(timedelta(seconds=1))
        assert await env.sandbox.deliver_due() == 1
    deliveries = env.sandbox.deliveries("h_2")
    assert [d.at - confirm_at for d in deliveries] == [
        timedelta(0),
        timedelta(minutes=1),
        timedelta(minutes=6),
        timedelta(minutes=36),
        timedelta(hours=2, minutes=36),
    ]
    assert [d.status_code for d in deliveries] == [500, 503, 404, 500, 202]
    assert [d.ok for d in deliveries] == [False, False, False, False, True]
    assert len({d.notify_id for d in deliveries}) == 1
    # Every attempt is signed anew: same body, fresh timestamp.
    stamps = [verify(hooks.secret, h["x-boleto-signature"], b)[0] for h, b in hooks.received]
    assert [s - stamps[0] for s in stamps] == [0, 60, 360, 2160, 9360]
    assert len({body for _, body in hooks.received}) == 1
    env.clock.advance(timedelta(days=10))
    assert await env.sandbox.deliver_due() == 0


async def test_retries_end_after_the_ninth_attempt(env: Env, hooks: HookReceiver) -> None:
    hooks.default = 500
    _, confirm_at = await _confirmed(env, hooks, "h_3")
    await env.sandbox.deliver_due()
    for wait in RETRY_WAITS:
        env.clock.advance(wait)
        assert await env.sandbox.deliver_due() == 1
    env.clock.advance(timedelta(days=30))
    assert await env.sandbox.deliver_due() == 0
    offsets = [d.at - confirm_at for d in env.sandbox.deliveries("h_3")]
    assert offsets == [
        timedelta(0),
        timedelta(minutes=1),
        timedelta(minutes=6),
        timedelta(minutes=36),
        timedelta(hours=2, minutes=36),
        timedelta(hours=8, minutes=36),
        timedelta(hours=32, minutes=36),
        timedelta(hours=56, minutes=36),
        timedelta(hours=80, minutes=36),
    ]
    assert not any(d.ok for d in env.sandbox.deliveries("h_3"))


async def test_a_refund_is_notified_as_its_own_event(env: Env, hooks: HookReceiver) -> None:
    charge, _ = await _confirmed(env, hooks, "h_4")
    await env.sandbox.deliver_due()
    assert (await Psp(env).refund(charge["id"], "r_4", 3998)).status_code == 201
    await env.sandbox.deliver_due()
    events = [json.loads(body) for _, body in hooks.received]
    assert [e["type"] for e in events] == ["charge.paid", "charge.refunded"]
    assert events[0]["id"] != events[1]["id"]
    assert (events[1]["data"]["status"], events[1]["data"]["refunded_amount"]) == ("refunded", 3998)
    assert hooks.verified == [True, True]


async def test_no_webhook_without_a_notification_url(env: Env, hooks: HookReceiver) -> None:
    charge = await Psp(env).charge("h_5")
    await walk_to(env, await pay_at_bank(env, charge))
    assert env.sandbox.deliveries("h_5") == []
    assert [m.kind for m in env.sandbox.ledger("h_5")] == ["capture"]


async def test_forged_dropped_and_duplicated_deliveries(env: Env, hooks: HookReceiver) -> None:
    env.sandbox.set_faults(
        FaultSettings(
            notify_forge_rate=1.0,
            notify_forgeries=("bad_signature",),
            notify_duplicate_rate=1.0,
        )
    )
    await _confirmed(env, hooks, "h_6")
    await env.sandbox.deliver_due()
    deliveries = env.sandbox.deliveries("h_6")
    assert [d.fault for d in deliveries] == ["forged:bad_signature", None, "duplicate"]
    assert hooks.verified == [False, True, True]
    assert deliveries[0].body == deliveries[1].body  # only the signature was tampered with

    env.sandbox.set_faults(FaultSettings(notify_drop_rate=1.0))
    await _confirmed(env, hooks, "h_7")
    await env.sandbox.deliver_due()
    env.clock.advance(RETRY_WAITS[0])
    await env.sandbox.deliver_due()
    assert [(d.fault, d.status_code) for d in env.sandbox.deliveries("h_7")] == [
        ("dropped", None),
        ("dropped", None),
    ]
    assert len(hooks.received) == 3  # nothing of h_7 arrived


async def test_every_forgery_differs_from_the_genuine_event(env: Env, hooks: HookReceiver) -> None:
    await _confirmed(env, hooks, "h_8")
    await env.sandbox.deliver_due()
    [delivery] = env.sandbox.deliveries("h_8")
    genuine = env.sandbox.notification("boleto", delivery.notify_id)
    header = "X-Boleto-Signature"
    bad = env.sandbox.notification("boleto", delivery.notify_id, "bad_signature")
    assert bad.body == genuine.body
    assert not verify(hooks.secret, bad.headers[header], bad.body)[1]
    changed = env.sandbox.notification("boleto", delivery.notify_id, "changed_amount")
    assert verify(hooks.secret, changed.headers[header], changed.body)[1]
    assert json.loads(changed.body)["data"]["amount"] == 4098
    other = env.sandbox.notification("boleto", delivery.notify_id, "other_merchant")
    assert verify(hooks.secret, other.headers[header], other.body)[1]
    assert json.loads(other.body)["account"]["id"] != env.keys.boleto.account_id
    stale = env.sandbox.notification("boleto", delivery.notify_id, "stale_timestamp")
    stamp, valid = verify(hooks.secret, stale.headers[header], stale.body)
    assert valid
    assert stamp == int(env.clock.now().timestamp()) - 7200
