"""Rate limits on applies, status reads and event streams, per client and per order: a burst
past a limit is answered 429 with Retry-After and opens no extra trade; in Redis, instances
count together; a Redis that is gone lets calls through rather than refuse shoppers."""

from __future__ import annotations

import asyncio
import socket
import uuid
from typing import Any

import pytest
import websockets
from websockets.exceptions import InvalidStatus

from tests.integration.conftest import Live, LiveFactory


def _precreates(live: Live) -> list[Any]:
    return [c for c in live.sandbox.calls() if c.method == "alipay.trade.precreate"]


def _limited(live: Live, route: str, scope: str) -> float:
    return live.container.metrics.value("payonce_rate_limited_total", route=route, scope=scope)


async def test_a_burst_of_pay_clicks_past_the_limit_gets_429_and_no_extra_trade(
    start_live: LiveFactory,
) -> None:
    live = await start_live(rate_limits={"apply": {"order": "5/minute"}})
    order = await live.create_order()
    answers = await asyncio.gather(*(live.apply(order) for _ in range(12)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] * 4 + [201] + [429] * 7, statuses
    for refused in (a for a in answers if a.status_code == 429):
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["code"] == "rate_limited"
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert len(await live.payments(order)) == 1
    assert len(_precreates(live)) == 1
    assert _limited(live, "apply", "order") == 7
    # Another order is not held back by this one's limit.
    other = await live.create_order()
    assert (await live.apply(other)).status_code == 201


async def test_one_shopper_address_is_limited_across_orders_but_the_backend_is_not(
    start_live: LiveFactory,
) -> None:
    live = await start_live(rate_limits={"status": {"client": "4/minute", "order": "1000/minute"}})
    orders = [await live.create_order() for _ in range(3)]
    answers = [
        await live.http.get(
            f"/api/orders/{order['id']}",
            headers={"Authorization": f"Bearer {order['client_secret']}"},
        )
        for order in orders
        for _ in range(2)
    ]
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 429, 429]
    assert _limited(live, "status", "client") == 2
    for _ in range(10):  # the shop backend is one client with no limit of its own
        assert (
            await live.http.get(f"/api/orders/{orders[0]['id']}", headers=live.backend)
        ).status_code == 200


async def test_event_streams_past_the_limit_are_refused_at_the_handshake(
    start_live: LiveFactory,
) -> None:
    live = await start_live(rate_limits={"events": {"order": "2/minute"}})
    order = await live.create_order()
    url = live.url.replace("http", "ws") + f"/api/orders/{order['id']}/events"
    url += f"?client_secret={order['client_secret']}"
    for _ in range(2):
        async with websockets.connect(url) as ws:
            assert '"status":"UNPAID"' in await ws.recv()
    with pytest.raises(InvalidStatus) as refused:
        async with websockets.connect(url):
            pass
    assert refused.value.response.status_code == 429
    assert int(refused.value.response.headers["Retry-After"]) >= 1
    assert _limited(live, "events", "order") == 1


async def test_instances_sharing_redis_count_together(
    start_live: LiveFactory, redis_url: str
) -> None:
    limits = {"apply": {"order": "3/minute"}}
    first = await start_live(redis_url=redis_url, rate_limits=limits)
    order = await first.create_order()
    assert [(await first.apply(order)).status_code for _ in range(2)] == [201, 200]
    # Another instance sharing the Redis counts the same order's clicks: its third is the
    # last one allowed, and the next is refused wherever it lands.
    second = await start_live(redis_url=redis_url, rate_limits=limits)
    limiter = second.container.rate_limits
    assert limiter is not None
    assert await limiter.hit("apply", client="ip:10.0.0.9", order=order["id"]) is None
    refusal = await limiter.hit("apply", client="ip:10.0.0.9", order=order["id"])
    assert refusal is not None
    assert refusal.scope == "order"
    assert (await first.apply(order)).status_code == 429


async def test_a_redis_that_is_gone_lets_calls_through(start_live: LiveFactory) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # nothing listens there once it is closed
    live = await start_live(
        redis_url=f"redis://127.0.0.1:{port}/0", rate_limits={"apply": {"order": "1/minute"}}
    )
    order = await live.create_order()
    answers = [(await live.apply(order, key=str(uuid.uuid4()))).status_code for _ in range(3)]
    assert answers == [201, 200, 200]  # not counted, not refused: Redis costs speed only


async def test_a_refused_call_uses_up_no_window(start_live: LiveFactory) -> None:
    live = await start_live(rate_limits={"status": {"order": "2/minute", "client": "3/minute"}})
    first, second = await live.create_order(), await live.create_order()

    async def read(order: dict[str, Any]) -> tuple[int, str | None]:
        answer = await live.http.get(
            f"/api/orders/{order['id']}",
            headers={"Authorization": f"Bearer {order['client_secret']}"},
        )
        return answer.status_code, answer.json().get("detail")

    seen = [await read(o) for o in (first, first, first, second, second)]
    assert [status for status, _ in seen] == [200, 200, 429, 200, 429]
    # The third read of the first order was refused by its order's window, and counted in
    # neither: the second order's first read still fits in the address's three.
    assert "per order" in str(seen[2][1])
    assert "per client" in str(seen[4][1])


async def test_credentials_that_name_no_one_are_limited_per_address(
    start_live: LiveFactory,
) -> None:
    live = await start_live(rate_limits={"credentials": {"client": "3/minute"}})
    order = await live.create_order()
    guesses = [
        await live.http.get(
            f"/api/orders/{order['id']}",
            headers={"Authorization": f"Bearer {order['id']}_secret_guess{n}"},
        )
        for n in range(5)
    ]
    assert [g.status_code for g in guesses] == [401, 401, 401, 429, 429]
    assert guesses[3].json()["code"] == "rate_limited"
    assert int(guesses[3].headers["Retry-After"]) >= 1
    assert _limited(live, "credentials", "client") == 2
    # Good credentials from the same address are not held back by the failures.
    assert (
        await live.http.get(f"/api/orders/{order['id']}", headers=live.backend)
    ).status_code == 200
    url = live.url.replace("http", "ws") + f"/api/orders/{order['id']}/events?client_secret=x"
    with pytest.raises(InvalidStatus) as refused:
        async with websockets.connect(url):
            pass
    assert refused.value.response.status_code == 429
