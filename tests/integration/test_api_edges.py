"""The API's edges: keys still in flight, cancel, who may subscribe, long polls."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from payonce.adapters.feed.memory import InProcessFeed
from payonce.service.context import Policy
from tests.integration.conftest import Live, LiveFactory


async def test_the_same_key_while_the_first_request_runs_is_refused_in_flight(
    start_live: LiveFactory,
) -> None:
    live = await start_live(provider_timeout_s=5.0)
    order = await live.create_order()
    # The provider takes a second to answer the first request (within our time-out).
    await live.http.put("/sandbox/faults", json={"create_timeout_rate": 1.0, "timeout_hold_s": 1.0})
    first = asyncio.create_task(live.apply(order, key="slow"))
    # Logged before the held answer: the first request reached the provider and holds the key.
    while not live.sandbox.calls():  # noqa: ASYNC110 - polling the sandbox's plain log
        await asyncio.sleep(0.01)
    second = await live.apply(order, key="slow")
    assert second.status_code == 409
    assert second.json()["code"] == "idempotency_key_in_flight"
    assert second.headers["Retry-After"] == "1"
    assert (await first).status_code == 201
    replay = await live.apply(order, key="slow")
    assert (replay.status_code, replay.content) == (201, (await first).content)


async def test_cancel_closes_the_trade_once_and_refuses_a_paid_one(live: Live) -> None:
    order = await live.create_order()
    payment = (await live.apply(order)).json()
    shopper = {"Authorization": f"Bearer {order['client_secret']}"}
    for _ in range(2):  # cancelling twice is cancelling once
        cancelled = await live.http.post(f"/api/payments/{payment['id']}/cancel", headers=shopper)
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "CLOSED"
    assert (await live.wallet("pay", payment["action"]["qr_code"])).status_code >= 400

    paid = (await live.apply(order)).json()
    assert paid["id"] != payment["id"]
    assert (await live.wallet("pay", paid["action"]["qr_code"])).status_code == 200
    await live.sandbox.deliver_due()
    refused = await live.http.post(f"/api/payments/{paid['id']}/cancel", headers=shopper)
    assert refused.status_code == 409
    assert refused.json()["code"] == "payment_not_cancellable"
    assert [m.kind for m in live.sandbox.ledger()] == ["capture"]


async def test_only_the_orders_own_secret_may_subscribe(live: Live) -> None:
    order = await live.create_order()
    other = await live.create_order()
    base = live.url.replace("http", "ws") + f"/api/orders/{order['id']}/events"
    for secret in (other["client_secret"], "nonsense", ""):
        with pytest.raises(InvalidStatus) as refused:
            async with websockets.connect(f"{base}?client_secret={secret}"):
                pass
        assert refused.value.response.status_code == 403
    async with websockets.connect(
        base, additional_headers={"Authorization": f"Bearer {live.backend['Authorization'][7:]}"}
    ) as ws:
        assert '"status":"UNPAID"' in await ws.recv()


async def test_a_long_poll_answers_when_the_order_changes(live: Live) -> None:
    order = await live.create_order()
    shopper = {"Authorization": f"Bearer {order['client_secret']}"}
    waiting = asyncio.create_task(
        live.http.get(
            f"/api/orders/{order['id']}",
            params={"after_version": order["status_version"], "wait": 20},
            headers=shopper,
        )
    )
    await asyncio.sleep(0.1)
    assert not waiting.done()
    await live.apply(order)  # opening a trade changes the order's status_version
    answered = await asyncio.wait_for(waiting, 10)
    assert answered.json()["status_version"] > order["status_version"]
    latest = (await live.order(order))["status_version"]
    unchanged = await live.http.get(
        f"/api/orders/{order['id']}", params={"after_version": latest, "wait": 0.2}, headers=shopper
    )
    assert unchanged.json()["status_version"] == latest  # nothing changed: answered on time-out


async def test_an_order_lists_the_channels_that_take_its_currency(live: Live) -> None:
    """What the pay page offers: each channel that takes the order's currency, per platform."""
    yuan = await live.create_order()
    reais = await live.create_order(currency="BRL")
    shopper = {"Authorization": f"Bearer {yuan['client_secret']}"}
    listed = await live.http.get(f"/api/orders/{yuan['id']}/payment-options", headers=shopper)
    assert listed.status_code == 200, listed.text
    every = ["pc", "wap", "app"]
    assert listed.json() == {
        "options": [
            {"channel": "alipay", "platforms": every},
            {"channel": "wechat", "platforms": every},
            {"channel": "paypal", "platforms": every},
        ]
    }
    brazil = await live.http.get(
        f"/api/orders/{reais['id']}/payment-options",
        headers={"Authorization": f"Bearer {reais['client_secret']}"},
    )
    assert [o["channel"] for o in brazil.json()["options"]] == ["paypal", "boleto"]
    # One order's secret says nothing about another order.
    other = await live.http.get(f"/api/orders/{reais['id']}/payment-options", headers=shopper)
    assert other.status_code in (403, 404)
    assert other.headers["content-type"] == "application/problem+json"


async def test_a_wallet_launch_link_has_a_qr_for_the_fallback_page(live: Live) -> None:
    order = await live.create_order()
    shopper = {"Authorization": f"Bearer {order['client_secret']}"}
    applied = await live.apply(order, platform="wap")
    action = applied.json()["action"]
    assert action["type"] == "launch_url"
    svg = await live.http.get(action["qr_svg_url"], headers=shopper)
    assert (svg.status_code, svg.headers["content-type"]) == (200, "image/svg+xml")
    assert svg.text.startswith("<svg")
    assert "viewBox" in svg.text
    app = await live.apply(await live.create_order(), platform="app")
    assert "qr_svg_url" not in app.json()["action"]


async def test_a_long_poll_ends_when_its_client_leaves(live: Live) -> None:
    """A tab closed mid-wait frees its subscription long before the wait would have ended, and a
    stopping server is not kept waiting for it."""
    order = await live.create_order()
    feed = live.container.deps.feed
    assert isinstance(feed, InProcessFeed)
    shopper = {"Authorization": f"Bearer {order['client_secret']}"}
    async with httpx.AsyncClient(base_url=live.url, headers=shopper) as leaving:
        with pytest.raises(httpx.ReadTimeout):
            await leaving.get(
                f"/api/orders/{order['id']}",
                params={"after_version": order["status_version"], "wait": 30},
                timeout=httpx.Timeout(5.0, read=0.5),
            )
    for _ in range(100):  # the handler notices within a second (its check's period)
        if feed.listeners(order["id"]) == 0:
            break
        await asyncio.sleep(0.1)
    assert feed.listeners(order["id"]) == 0


async def test_a_quiet_websocket_is_sent_the_order_as_it_is(start_live: LiveFactory) -> None:
    """With no news, the socket still speaks now and then: the order as it is (so a publish
    that was lost is made good), which also tells the page its socket is alive."""
    live = await start_live(policy=Policy(live_heartbeat_s=0.2))
    order = await live.create_order()
    url = live.url.replace("http", "ws") + f"/api/orders/{order['id']}/events"
    async with websockets.connect(f"{url}?client_secret={order['client_secret']}") as ws:
        first = json.loads(await ws.recv())
        again = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert again == first  # nothing changed: the same state, the same status_version
        await live.apply(order)
        seen = [json.loads(await asyncio.wait_for(ws.recv(), 5))]
        while seen[-1]["payment"] is None or seen[-1]["payment"]["status"] != "PAYING":
            seen.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
        versions = [message["status_version"] for message in seen]
        assert versions == sorted(versions)  # heartbeats and news alike never go back
        assert versions[-1] > first["status_version"]
