"""Apply payment against a real server and the sandbox: one trade per order, whatever the clicks."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from payonce.adapters.locks.memory import InProcessLocks
from payonce.adapters.locks.unlocked import NoLocks
from payonce.domain.ids import OrderId
from payonce.ports.locks import Locks
from payonce.service import orders
from payonce.service.context import order_lock_key
from payonce.service.recording import attempt_key, cache_payment
from tests.integration.conftest import Live, LiveFactory


async def _apply_until_answered(live: Live, order: dict[str, Any], key: str) -> httpx.Response:
    """A client that honours Retry-After on a key still in flight, as a browser retry would."""
    for _ in range(200):
        response = await live.apply(order, key=key)
        if response.status_code != 409 or response.json()["code"] != "idempotency_key_in_flight":
            return response
        await asyncio.sleep(0.02)
    raise AssertionError("the first request with this key never finished")


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
@pytest.mark.parametrize("lock", ["in-process", "no-lock"])
async def test_fifty_concurrent_applies_open_exactly_one_trade(
    start_live: LiveFactory, lock: str, database: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("postgres_url") if database == "postgres" else None
    # Requests retried while their key is in flight are many: rate limits are not tested here.
    live = await start_live(
        locks=None if lock == "in-process" else NoLocks(), database_url=url, rate_limiting="off"
    )
    assert live.container.storage.engine.dialect.name == ("postgresql" if url else "sqlite")
    if lock == "in-process":
        assert isinstance(live.container.coordination.locks, InProcessLocks)
    else:  # the lock excludes nobody: only the database can keep this at one trade
        assert isinstance(live.container.coordination.locks, NoLocks)
    order = await live.create_order()
    keys = [str(uuid.uuid4()) for _ in range(10)]  # 10 keys, each sent 5 times at once
    responses = await asyncio.gather(
        *(_apply_until_answered(live, order, keys[i % 10]) for i in range(50))
    )

    assert {r.status_code for r in responses} <= {200, 201}
    bodies = [r.json() for r in responses]
    assert len({b["id"] for b in bodies}) == 1
    assert len({b["action"]["qr_code"] for b in bodies}) == 1
    assert len({b["out_trade_no"] for b in bodies}) == 1
    # Exactly one request opened the trade; the ones sharing its key got its 201 replayed.
    created = [r for r in responses if r.status_code == 201]
    assert len({r.request.headers["Idempotency-Key"] for r in created}) == 1
    # The sandbox was asked for exactly one QR, and payonce holds exactly one record.
    assert [o.out_trade_no for o in live.sandbox.orders()] == [bodies[0]["out_trade_no"]]
    assert [p["id"] for p in await live.payments(order)] == [bodies[0]["id"]]


async def test_same_key_and_body_replays_byte_for_byte_and_a_different_body_is_refused(
    live: Live,
) -> None:
    order = await live.create_order()
    first = await live.apply(order, key="click-1")
    again = await live.apply(order, key="click-1")
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"

    other = await live.apply(order, platform="wap", key="click-1")
    assert other.status_code == 422
    assert other.headers["content-type"] == "application/problem+json"
    assert other.json()["code"] == "idempotency_key_reused"
    assert len(await live.payments(order)) == 1  # the refused request opened nothing

    missing = await live.http.post(
        f"/api/orders/{order['id']}/payments",
        json={"channel": "alipay", "platform": "pc"},
        headers={"Authorization": f"Bearer {order['client_secret']}"},
    )
    assert missing.status_code == 400
    assert missing.json()["code"] == "idempotency_key_missing"


async def test_a_repeated_apply_reuses_the_live_trade(live: Live) -> None:
    order = await live.create_order()
    first = (await live.apply(order)).json()
    second = await live.apply(order)  # a new key: a refresh of the page, a second tab
    assert second.status_code == 200
    assert second.json()["id"] == first["id"]
    assert second.json()["action"]["qr_code"] == first["action"]["qr_code"]
    assert len(live.sandbox.orders()) == 1


async def test_switching_platform_closes_the_first_trade_before_the_second_opens(
    live: Live,
) -> None:
    order = await live.create_order()
    pc = (await live.apply(order, platform="pc")).json()
    scanned = await live.wallet("scan", pc["action"]["qr_code"])  # the shopper opened it
    assert scanned.status_code == 200, scanned.text
    assert [t["status"] for t in await live.sandbox_trades(pc["out_trade_no"])] == [
        "WAIT_BUYER_PAY"
    ]

    wap = await live.apply(order, platform="wap")
    assert wap.status_code == 201, wap.text
    body = wap.json()
    assert body["action"]["type"] == "launch_url"
    assert body["out_trade_no"] != pc["out_trade_no"]
    # The first trade is closed at the provider (and can no longer be paid) ...
    assert [t["status"] for t in await live.sandbox_trades(pc["out_trade_no"])] == ["TRADE_CLOSED"]
    refused = await live.wallet("pay", pc["action"]["qr_code"])
    assert refused.status_code >= 400
    # ... and recorded closed; only the wap trade is live.
    statuses = {p["out_trade_no"]: p["status"] for p in await live.payments(order)}
    assert statuses == {pc["out_trade_no"]: "CLOSED", body["out_trade_no"]: "PAYING"}
    assert live.sandbox.ledger() == []


async def test_switching_before_the_qr_was_scanned_cancels_it_for_good(live: Live) -> None:
    order = await live.create_order()
    pc = (await live.apply(order, platform="pc")).json()
    wap = await live.apply(order, platform="wap")
    assert wap.status_code == 201
    # Alipay's close answers "trade not exist" before a scan; payonce then cancels the QR.
    late_scan = await live.wallet("pay", pc["action"]["qr_code"])
    assert late_scan.status_code >= 400
    assert live.sandbox.ledger() == []
    statuses = [p["status"] for p in await live.payments(order)]
    assert statuses == ["PAYING", "CLOSED"]


async def test_a_create_that_times_out_is_unknown_and_the_next_apply_queries_first(
    start_live: LiveFactory,
) -> None:
    live = await start_live(provider_timeout_s=0.3)
    order = await live.create_order()
    await live.http.put("/sandbox/faults", json={"create_timeout_rate": 1.0, "timeout_hold_s": 1.0})

    timed_out = await live.apply(order)
    assert timed_out.status_code == 409
    assert timed_out.json()["code"] == "payment_outcome_unknown"
    assert timed_out.headers["Retry-After"] == "1"
    [unknown] = await live.payments(order)
    assert unknown["status"] == "UNKNOWN"  # not FAILED: the provider did act (below)
    assert [o.out_trade_no for o in live.sandbox.orders()] == [unknown["out_trade_no"]]

    await live.http.put("/sandbox/faults", json={})
    calls_before = len(live.sandbox.calls())
    retried = await live.apply(order)
    assert retried.status_code == 201, retried.text
    new = retried.json()
    calls = [(c.method, c.out_trade_no) for c in live.sandbox.calls()[calls_before:]]
    # The unknown trade was queried first, then made unpayable, then a new trade was opened.
    assert calls[0] == ("alipay.trade.query", unknown["out_trade_no"])
    assert ("alipay.trade.precreate", new["out_trade_no"]) == calls[-1]
    assert calls.index(("alipay.trade.cancel", unknown["out_trade_no"])) < len(calls) - 1
    statuses = {p["out_trade_no"]: p["status"] for p in await live.payments(order)}
    assert statuses == {unknown["out_trade_no"]: "CLOSED", new["out_trade_no"]: "PAYING"}


async def test_while_the_outcome_stays_unknown_no_new_trade_is_opened(
    start_live: LiveFactory,
) -> None:
    live = await start_live(provider_timeout_s=0.3)
    order = await live.create_order()
    await live.http.put(
        "/sandbox/faults",
        json={"create_timeout_rate": 1.0, "query_error_rate": 1.0, "timeout_hold_s": 1.0},
    )
    assert (await live.apply(order)).json()["code"] == "payment_outcome_unknown"
    again = await live.apply(order, platform="wap")
    assert again.status_code == 409
    assert again.json()["code"] == "payment_outcome_unknown"
    assert [p["status"] for p in await live.payments(order)] == ["UNKNOWN"]
    assert len(live.sandbox.orders()) == 1


@pytest.mark.parametrize("locks", [None, NoLocks()])
async def test_a_paid_order_refuses_further_applies(
    start_live: LiveFactory, locks: Locks | None
) -> None:
    live = await start_live(locks=locks)
    order = await live.create_order()
    pay = (await live.apply(order)).json()
    assert (await live.wallet("pay", pay["action"]["qr_code"])).status_code == 200
    await live.sandbox.deliver_due()
    assert (await live.order(order))["status"] == "READY_FOR_SHIPMENT"
    for platform in ("pc", "wap"):
        refused = await live.apply(order, platform=platform)
        assert refused.status_code == 409
        assert refused.json()["code"] == "order_already_paid"
    assert len(live.sandbox.orders()) == 1


async def test_unknown_channels_and_strangers_are_refused(live: Live) -> None:
    order = await live.create_order()
    other = await live.create_order()
    unknown = await live.http.post(
        f"/api/orders/{order['id']}/payments",
        json={"channel": "bitcoin", "platform": "pc"},
        headers={"Authorization": f"Bearer {order['client_secret']}", "Idempotency-Key": "k"},
    )
    assert unknown.status_code == 422
    assert unknown.json()["code"] == "channel_unsupported"
    stranger = await live.http.post(
        f"/api/orders/{order['id']}/payments",
        json={"channel": "alipay", "platform": "pc"},
        headers={"Authorization": f"Bearer {other['client_secret']}", "Idempotency-Key": "k"},
    )
    assert stranger.status_code == 404
    assert stranger.json()["code"] == "order_not_found"
    anonymous = await live.http.get(f"/api/orders/{order['id']}")
    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "unauthorized"
    assert await live.payments(order) == []


async def test_a_click_waiting_for_the_lock_is_answered_by_the_trade_its_holder_opens(
    live: Live,
) -> None:
    deps = live.container.deps
    order = await live.create_order()
    opened = await live.apply(order)
    assert opened.status_code == 201, opened.text
    [payment] = await orders.list_payments(deps, OrderId(order["id"]))
    key = attempt_key(payment.order_id, payment.channel, payment.platform)
    await deps.cache.delete(key)  # as if the holder had not committed its trade yet

    async with deps.locks.hold(order_lock_key(payment.order_id), ttl_s=30, wait_s=1):
        waiting = asyncio.create_task(live.apply(order))
        await asyncio.sleep(0.2)
        assert not waiting.done()  # no lock, nothing cached: it waits
        await cache_payment(deps, payment)  # the holder commits and caches its trade
        answered = await asyncio.wait_for(waiting, 10)  # while the lock is still held
    assert answered.status_code == 200, answered.text
    assert answered.json()["out_trade_no"] == opened.json()["out_trade_no"]
    assert len(live.sandbox.orders()) == 1
