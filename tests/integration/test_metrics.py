"""What the metrics count through one order's life: applies by outcome, duplicates stopped by
each layer, provider calls by channel and call, lock waits, polls, notifications and the
outbox (its deliveries and its backlog), with no order's or payment's id in any label."""

from __future__ import annotations

from payonce.service import outbox
from payonce.service.polling import poll_due
from tests.integration.conftest import Live


def _value(live: Live, name: str, **labels: str) -> float:
    return live.container.metrics.value(name, **labels)


async def test_one_orders_life_is_counted_where_it_happened(live: Live) -> None:
    deps = live.container.deps
    order = await live.create_order()
    first = await live.apply(order, key="click-1")
    assert first.status_code == 201
    assert (await live.apply(order, key="click-1")).status_code == 201  # the same request again
    assert (await live.apply(order, key="click-2")).status_code == 200  # another click
    assert _value(live, "payonce_applies_total", channel="alipay", outcome="created") == 1
    assert _value(live, "payonce_applies_total", channel="alipay", outcome="reused") == 1
    assert _value(live, "payonce_duplicates_prevented_total", layer="idempotency_key") == 1
    reused = sum(
        _value(live, "payonce_duplicates_prevented_total", layer=layer)
        for layer in ("result_cache", "reuse")
    )
    assert reused == 1
    calls = "payonce_provider_call_seconds_count"
    assert _value(live, calls, channel="alipay", call="create", outcome="ok") == 1
    assert _value(live, "payonce_lock_wait_seconds_count", acquired="yes") >= 1

    # A poll after the wait: the shopper has not paid yet, the provider is asked once.
    await live.sandbox.advance_clock(20)
    assert await poll_due(deps) == 1
    assert _value(live, "payonce_poll_lag_seconds_count") == 1
    assert _value(live, calls, channel="alipay", call="query", outcome="ok") == 1

    # Paid in the wallet; the provider's notification is applied once, its repeat stopped.
    code = first.json()["action"]["qr_code"]
    assert (await live.wallet("pay", code)).status_code == 200
    await live.sandbox.deliver_due()
    assert (await live.order(order))["status"] == "READY_FOR_SHIPMENT"
    assert _value(live, "payonce_notifications_total", channel="alipay", result="applied") == 1
    [(channel, notify_id)] = live.sandbox.notifications(first.json()["out_trade_no"])[:1]
    again = live.sandbox.notification(channel, notify_id, None)
    answer = await live.http.post(
        f"/api/notify/{channel}", content=again.body, headers=dict(again.headers)
    )
    assert answer.status_code == 200
    assert _value(live, "payonce_duplicates_prevented_total", layer="notification_id") == 1

    # The outbox: each consumer's delivery is timed; the backlog is measured (nothing waits).
    await outbox.deliver_due(deps)
    assert _value(live, "payonce_outbox_lag_seconds_count", consumer="orders") >= 1
    await outbox.measure_backlog(deps)
    assert _value(live, "payonce_outbox_undelivered") == 0
    assert _value(live, "payonce_outbox_oldest_undelivered_age_seconds") == 0

    exposed = (await live.http.get("/metrics", headers=live.admin)).text
    assert "payonce_applies_total" in exposed
    assert order["id"] not in exposed
    assert first.json()["id"] not in exposed
    assert first.json()["out_trade_no"] not in exposed


async def test_a_waiting_event_shows_in_the_backlog(live: Live) -> None:
    deps = live.container.deps
    order = await live.create_order()
    paid = (await live.apply(order)).json()
    assert (await live.wallet("pay", paid["action"]["qr_code"])).status_code == 200
    await live.sandbox.deliver_due()
    # The relay has not run: the events the notification committed wait for their consumers
    # that only the relay delivers to (the shopper's push).
    waiting = await outbox.browse(deps.storage, undelivered_only=True)
    assert waiting
    await live.sandbox.advance_clock(90)
    await outbox.measure_backlog(deps)
    assert _value(live, "payonce_outbox_undelivered") == len(waiting)
    assert _value(live, "payonce_outbox_oldest_undelivered_age_seconds") == 90
