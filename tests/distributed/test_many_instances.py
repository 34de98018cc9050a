"""Two API instances and a worker on PostgreSQL + Redis: one trade per order, one payment applied.

Every stack here is processes on real servers (see conftest). Clicks are spread over both
instances; notifications reach the instance that opened the trade; the built-in order service
is fed by whichever process delivers the outbox first.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
import websockets

from payonce.adapters.locks.redis import lock_key_of
from tests.distributed.conftest import Shop, StackFactory

ORDERS = 20
CLICKS_PER_ORDER = 10


def _clicks(orders: list[dict[str, Any]], seed: int) -> list[tuple[int, dict[str, Any], str]]:
    """Ten clicks per order, alternating instances, each with its own Idempotency-Key (a
    refresh, a second tab), in a seeded order."""
    clicks = [
        (n % 2, order, f"{order['id']}-click-{n}")
        for order in orders
        for n in range(CLICKS_PER_ORDER)
    ]
    random.Random(seed).shuffle(clicks)
    return clicks


async def _click_all(
    shop: Shop,
    clicks: list[tuple[int, dict[str, Any], str]],
    midway: Callable[[], Awaitable[None]] | None = None,
    channel: str = "wechat",
) -> list[tuple[int, dict[str, Any], httpx.Response]]:
    """Send every click at once; ``midway`` runs once half of them are in flight."""
    half = len(clicks) // 2

    def send(instance: int, order: dict[str, Any], key: str) -> asyncio.Task[httpx.Response]:
        return asyncio.create_task(shop.apply(instance, order, key, channel=channel))

    first = [send(*click) for click in clicks[:half]]
    if midway is not None:
        await asyncio.sleep(0)  # let the first half leave
        await midway()
    second = [send(*click) for click in clicks[half:]]
    responses = await asyncio.gather(*first, *second)
    return [(i, order, response) for (i, order, _), response in zip(clicks, responses, strict=True)]


async def _retry_refused(
    shop: Shop,
    clicks: list[tuple[int, dict[str, Any], str]],
    answered: list[tuple[int, dict[str, Any], httpx.Response]],
    channel: str = "wechat",
) -> list[tuple[int, dict[str, Any], httpx.Response]]:
    """Every refusal says "retry" (409/503 with Retry-After, never a bare failure); the shop
    retries each with the same Idempotency-Key. Answers every click's final answer."""
    final = []
    for (_, _, key), (instance, order, response) in zip(clicks, answered, strict=True):
        for attempt in range(100):
            if response.status_code in (200, 201):
                break
            assert response.status_code in (409, 503), response.text
            assert response.headers.get("Retry-After") == "1", response.text
            if attempt == 50:
                # A claim whose commit reached the server but whose answer was cut off stays
                # "running" for its lease (minutes): a shop that cannot wait sends a new request.
                key = f"{key}-new"
            await asyncio.sleep(0.2)
            response = await shop.apply(instance, order, key, channel=channel)
        final.append((instance, order, response))
    refused = Counter(r.status_code for _, _, r in answered if r.status_code not in (200, 201))
    print(f"refused, then retried: {dict(refused)}")
    return final


def _one_trade_each(
    orders: list[dict[str, Any]],
    answered: list[tuple[int, dict[str, Any], httpx.Response]],
    *,
    every_opening_answered: bool = True,
) -> dict[str, tuple[int, dict[str, Any]]]:
    """Every click got the same trade as the other clicks of its order, and at most one click
    per order opened it (exactly one, unless the opener's answer may have been lost). Answers,
    per order, the instance that opened it (else the last that answered) and the payment."""
    statuses = Counter(response.status_code for _, _, response in answered)
    assert set(statuses) <= {200, 201}, [r.text for _, _, r in answered if r.status_code > 201]
    opened: dict[str, tuple[int, dict[str, Any]]] = {}
    trades: dict[str, set[str]] = {}
    for instance, order, response in answered:
        payment = response.json()
        trades.setdefault(order["id"], set()).add(payment["out_trade_no"])
        if response.status_code == 201:
            assert order["id"] not in opened, f"a second trade was opened for {order['id']}"
            opened[order["id"]] = (instance, payment)
    assert {order_id: len(numbers) for order_id, numbers in trades.items()} == {
        order["id"]: 1 for order in orders
    }
    if every_opening_answered:
        assert set(opened) == {order["id"] for order in orders}
    for instance, order, response in answered:
        opened.setdefault(order["id"], (instance, response.json()))
    return opened


async def _provider_trades_per_order(shop: Shop) -> Counter[str]:
    return Counter(trade["subject"].removeprefix("Order ") for trade in await shop.sandbox_trades())


def _applied_per_order(shop: Shop) -> dict[str, int]:
    rows = shop.sql("SELECT order_id, count(*) FROM payments WHERE applied GROUP BY order_id")
    return {order_id: count for order_id, count in rows}


async def _pay_all(shop: Shop, opened: dict[str, tuple[int, dict[str, Any]]]) -> None:
    paid = await asyncio.gather(
        *(shop.pay(payment["action"]["qr_code"]) for _, payment in opened.values())
    )
    assert [response.status_code for response in paid] == [200] * len(opened)


async def test_two_instances_open_one_trade_per_order_and_apply_each_payment_once(
    start_stack: StackFactory,
) -> None:
    shop = start_stack()
    orders = [await shop.create_order() for _ in range(ORDERS)]

    opened = _one_trade_each(orders, await _click_all(shop, _clicks(orders, seed=1)))
    assert await _provider_trades_per_order(shop) == {order["id"]: 1 for order in orders}
    assert {instance for instance, _ in opened.values()} == {0, 1}  # both instances did work

    # A shopper watches an order on the instance that did NOT open its trade: the provider's
    # notification goes to the other one, and the news must cross over through Redis.
    watched_id, (opener, _) = next(iter(opened.items()))
    watcher = 1 - opener
    watched = next(order for order in orders if order["id"] == watched_id)
    socket_url = shop.api[watcher].replace("http", "ws", 1) + f"/api/orders/{watched_id}/events"
    async with websockets.connect(f"{socket_url}?client_secret={watched['client_secret']}") as ws:
        assert json.loads(await ws.recv())["status"] == "UNPAID"
        await _pay_all(shop, opened)
        seen = []
        while not seen or seen[-1] != "READY_FOR_SHIPMENT":
            seen.append(json.loads(await asyncio.wait_for(ws.recv(), 60))["status"])

    finals = await asyncio.gather(*(shop.wait_until_paid(order) for order in orders))
    assert [final["status"] for final in finals] == ["READY_FOR_SHIPMENT"] * ORDERS
    assert _applied_per_order(shop) == {order["id"]: 1 for order in orders}
    # The order service took each payment once, and the provider captured each trade once.
    applied_events = shop.sql(
        "SELECT o.order_id, count(*) FROM inbox i JOIN outbox o ON o.event_id = i.event_id"
        " WHERE i.consumer = 'orders' GROUP BY o.order_id"
    )
    assert dict(applied_events) == {order["id"]: 1 for order in orders}
    ledger = (await shop.http.get(f"{shop.stack.sandbox_url}/ledger")).json()["movements"]
    assert Counter(m["kind"] for m in ledger) == {"capture": ORDERS}


@pytest.mark.parametrize("disruption", ["flush", "restart"])
async def test_losing_redis_mid_run_costs_no_second_trade_and_no_second_payment(
    start_stack: StackFactory, disruption: str
) -> None:
    shop = start_stack()
    orders = [await shop.create_order() for _ in range(ORDERS)]

    async def lose_redis() -> None:
        if disruption == "flush":
            with shop.redis_client() as client:
                await asyncio.to_thread(client.flushall)
        else:
            await asyncio.to_thread(shop.redis.stop)
            await asyncio.sleep(0.2)  # a moment without Redis while the clicks go on
            await asyncio.to_thread(shop.redis.start)

    clicks = _clicks(orders, seed=2)
    answered = await _click_all(shop, clicks, midway=lose_redis)
    # A lock held when Redis stopped comes back with its snapshot: that order's clicks may wait
    # out the lock's TTL and be told to retry (409 order_busy), never refused outright.
    opened = _one_trade_each(orders, await _retry_refused(shop, clicks, answered))
    assert await _provider_trades_per_order(shop) == {order["id"]: 1 for order in orders}

    await _pay_all(shop, opened)
    finals = await asyncio.gather(*(shop.wait_until_paid(order) for order in orders))
    assert [final["status"] for final in finals] == ["READY_FOR_SHIPMENT"] * ORDERS
    assert _applied_per_order(shop) == {order["id"]: 1 for order in orders}


async def _until(condition: Callable[[], bool], what: str, attempts: int = 600) -> None:
    for _ in range(attempts):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


async def test_a_paused_lock_holder_is_fenced_off_when_it_resumes(
    start_stack: StackFactory,
) -> None:
    # Short timings so that the pause outlives the lock (2 s) and the intent's grace (4 s).
    shop = start_stack(
        PAYONCE_LOCK_TTL_S="2", PAYONCE_PROVIDER_TIMEOUT_S="3", PAYONCE_INTENT_GRACE_S="4"
    )
    order = await shop.create_order()
    faults = f"{shop.stack.sandbox_url}/faults"
    # The provider opens the trade, then holds its answer back: past the pause below, yet not
    # so long that the sandbox's shutdown waits long for the held request.
    held = await shop.http.put(faults, json={"create_timeout_rate": 1.0, "timeout_hold_s": 10})
    assert held.status_code == 200, held.text

    # Alipay: WeChat Pay refuses to close a trade in its first five minutes.
    first = asyncio.create_task(shop.apply(0, order, "first-tab", channel="alipay"))
    query = "SELECT out_trade_no, status FROM payments WHERE order_id = %s ORDER BY number"
    await _until(lambda: len(shop.sql(query, order["id"])) == 1, "the first intent")
    [(first_trade, status)] = shop.sql(query, order["id"])
    assert status == "UNPAID"

    async def calls() -> list[dict[str, Any]]:
        response = await shop.http.get(
            f"{shop.stack.sandbox_url}/calls", params={"out_trade_no": first_trade}
        )
        found: list[dict[str, Any]] = response.json()["calls"]
        return found

    for _ in range(600):
        if await calls():
            break
        await asyncio.sleep(0.05)
    intent_seen = time.monotonic()
    shop.stack.apis[0].pause()  # instance 1 holds the lock, waiting on the provider
    try:
        with shop.redis_client() as client:
            await _until(
                lambda: not client.exists(lock_key_of(f"order:{order['id']}")), "the lock lapsing"
            )
        await _until(lambda: time.monotonic() - intent_seen > 4.5, "the intent's grace passing")
        assert (await shop.http.put(faults, json={})).status_code == 200

        second = await shop.apply(1, order, "second-tab", channel="alipay")
        assert second.status_code == 201, second.text
    finally:
        shop.stack.apis[0].resume()

    late = await first
    # Instance 1 came back with the provider's (non-)answer under its lapsed lock: refused by
    # the fence, it started over under a new grant and found instance 2's trade.
    assert late.status_code == 200, late.text
    assert late.json()["out_trade_no"] == second.json()["out_trade_no"]
    assert "older than one that wrote" in shop.stack.apis[0].log_path.read_text()

    rows = shop.sql(query, order["id"])
    assert rows == [(first_trade, "CLOSED"), (second.json()["out_trade_no"], "PAYING")]

    paid = await shop.pay(second.json()["action"]["qr_code"])
    assert paid.status_code == 200, paid.text
    assert (await shop.wait_until_paid(order))["status"] == "READY_FOR_SHIPMENT"
    assert _applied_per_order(shop) == {order["id"]: 1}
    # Alipay lists scanned trades only: the first QR never reached a shopper.
    provider = {t["out_trade_no"]: t["status"] for t in await shop.sandbox_trades()}
    assert provider == {second.json()["out_trade_no"]: "TRADE_SUCCESS"}


async def test_a_killed_database_connection_loses_nothing_acknowledged(
    start_stack: StackFactory,
) -> None:
    # A request killed after writing its intent leaves it to the next one after the grace.
    shop = start_stack(PAYONCE_PROVIDER_TIMEOUT_S="5", PAYONCE_INTENT_GRACE_S="10")
    orders = [await shop.create_order() for _ in range(10)]
    clicks = _clicks(orders, seed=3)
    database = shop.stack.database_url.rsplit("/", 1)[1]
    killed = 0

    async def kill_connections() -> None:
        nonlocal killed
        for _ in range(10):
            rows = await asyncio.to_thread(
                shop.sql,
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                database,
            )
            killed += len(rows)
            await asyncio.sleep(0.05)

    # Alipay: a request killed after opening its trade leaves it to be closed by the next one,
    # which WeChat Pay would refuse for five minutes.
    answered = await _click_all(shop, clicks, midway=kill_connections, channel="alipay")
    assert killed > 0
    everything = await _retry_refused(shop, clicks, answered, channel="alipay")
    opened = _one_trade_each(orders, everything, every_opening_answered=False)
    # Every acknowledged trade is in the database, and nothing else is.
    stored = dict(shop.sql("SELECT order_id, out_trade_no FROM payments WHERE status = 'PAYING'"))
    assert stored == {
        order_id: payment["out_trade_no"] for order_id, (_, payment) in opened.items()
    }
