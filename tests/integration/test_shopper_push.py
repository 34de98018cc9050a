"""Shoppers hear of their payment by push, fired by the outbox event: once, signed, retried.

payonce runs for real (uvicorn, SQLite, the mounted sandbox) with its push gateway pointed at a
real HTTP server on a loopback port that verifies each call with the ``standardwebhooks``
library and answers what the test says. Time moves on the shared AdjustableClock.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.types import Receive, Scope, Send

from payonce.adapters.clock import AdjustableClock
from payonce.domain.events import Topic
from payonce.ports.storage import OutboxEntry
from payonce.service import outbox
from tests.integration.conftest import Live
from tests.integration.test_channels import _approve
from tests.integration.test_extra_captures import _alipay_scanned_then_paypal
from tests.integration.test_order_service_delivery import (
    SharedClockVerifier,
    _events,
    _pay,
    _relay_until,
    _state,
    payonce_on_loopback,
)
from tests.loopback import Serve, answer, received

SECRET = "whsec_" + base64.b64encode(b"the push gateway's shared key!!!").decode()


@dataclass(frozen=True)
class Push:
    webhook_id: str | None
    at: datetime
    status: int
    body: bytes
    headers: dict[str, str]

    @property
    def data(self) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(self.body)["data"]
        return found


class Gateway:
    """A push gateway: verifies each call's signature, then answers ``status``."""

    def __init__(self, clock: AdjustableClock) -> None:
        self.verifier = SharedClockVerifier(SECRET, clock)
        self.clock = clock
        self.status = 200
        self.calls: list[Push] = []
        self.url = ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body, headers = await received(scope, receive)
        try:
            self.verifier.verify(body, headers)
        except Exception:
            status = 401
        else:
            status = self.status
        self.calls.append(Push(headers.get("webhook-id"), self.clock.now(), status, body, headers))
        await answer(send, status)

    @property
    def accepted(self) -> list[Push]:
        return [call for call in self.calls if 200 <= call.status < 300]


@pytest.fixture
async def gateway(serve: Serve, clock: AdjustableClock) -> Gateway:
    found = Gateway(clock)
    found.url = await serve(found) + "/push"
    return found


@pytest.fixture
async def live(
    tmp_path: Path, sandbox_keys: Path, clock: AdjustableClock, gateway: Gateway
) -> AsyncIterator[Live]:
    """payonce, configured by settings to push to the gateway."""
    async with payonce_on_loopback(
        tmp_path,
        sandbox_keys,
        clock,
        push_gateway_url=gateway.url,
        push_gateway_secret=SECRET,
        push_timeout_s=2,
    ) as running:
        yield running


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def _entry_of(live: Live, topic: Topic) -> OutboxEntry:
    [entry] = [e for e in await _events(live) if e.event.topic is topic]
    return entry


async def test_a_paid_order_gives_one_signed_push_with_its_exact_state(
    live: Live, gateway: Gateway
) -> None:
    order = await _pay(live)
    # The attempt right after the commit runs under the order's lock: the order side only.
    entry = await _entry_of(live, Topic.PAYMENT_SUCCEEDED)
    assert gateway.calls == []
    assert entry.acknowledged_by == frozenset({"orders"})
    assert entry.next_attempt_at == live.clock.now()
    assert entry.last_error == "left for the relay: shopper"
    assert await outbox.deliver_due(live.container.deps) == 1  # the relay, at once

    paid = await live.order(order)
    entry = await _entry_of(live, Topic.PAYMENT_SUCCEEDED)
    event = entry.event
    [push] = gateway.calls
    assert push.status == 200
    assert push.webhook_id == event.id
    assert json.loads(push.body) == {
        "type": "shopper.payment_succeeded",
        "timestamp": _iso(event.occurred_at),
        "data": {
            "id": event.id,
            "customer_id": "c-42",
            "order_id": order["id"],
            "kind": "payment_succeeded",
            "title": "Payment received",
            "body": f"Payment received: order {order['id']} is ready for shipment.",
            "status": "READY_FOR_SHIPMENT",
            "status_version": paid["status_version"],
            "occurred_at": _iso(event.occurred_at),
        },
    }
    assert paid["status"] == "READY_FOR_SHIPMENT"
    # Signed with the shared secret over this exact body, at this attempt's time.
    assert SharedClockVerifier(SECRET, live.clock).verify(push.body, push.headers) == json.loads(
        push.body
    )
    assert push.headers["webhook-signature"].startswith("v1,")
    assert push.headers["webhook-timestamp"] == str(int(live.clock.now().timestamp()))
    # The relay's first delivery took it: nothing is left to retry.
    assert entry.delivered_at == push.at
    assert _state(entry, "shopper").attempts == 1
    await _relay_until(live, live.clock.now() + timedelta(hours=1))
    assert len(gateway.calls) == 1


async def test_a_gateway_answering_503_keeps_the_event_due_for_the_shopper_alone(
    live: Live, gateway: Gateway
) -> None:
    gateway.status = 503
    start = live.clock.now()
    order = await _pay(live)
    assert (await live.order(order))["status"] == "READY_FOR_SHIPMENT"  # the inbox applied it
    assert await outbox.deliver_due(live.container.deps) == 0  # the relay's first try: 503

    entry = await _entry_of(live, Topic.PAYMENT_SUCCEEDED)
    assert entry.delivered_at is None
    assert entry.last_error is not None
    assert "shopper: PushGatewayUnavailable: answered 503" in entry.last_error
    assert _state(entry, "orders").delivered_at == start
    assert _state(entry, "shopper").delivered_at is None

    await _relay_until(live, start + timedelta(minutes=30))
    entry = await _entry_of(live, Topic.PAYMENT_SUCCEEDED)
    assert entry.delivered_at is None
    refused = len(gateway.calls)
    assert refused > 5  # retried, with backoff
    assert {c.status for c in gateway.calls} == {503}
    assert {c.webhook_id for c in gateway.calls} == {entry.event.id}  # the same message
    assert _state(entry, "shopper").attempts == refused
    assert _state(entry, "orders").attempts == 1  # the order inbox was not asked again

    gateway.status = 200
    await _relay_until(live, start + timedelta(hours=1))
    entry = await _entry_of(live, Topic.PAYMENT_SUCCEEDED)
    [accepted] = gateway.accepted
    assert len(gateway.calls) == refused + 1
    assert accepted.body == gateway.calls[0].body  # the same message, signed afresh
    assert accepted.data["status"] == "READY_FOR_SHIPMENT"
    assert entry.delivered_at == accepted.at
    assert _state(entry, "shopper").delivered_at == accepted.at
    assert _state(entry, "orders").attempts == 1
    assert await outbox.browse(live.container.storage) == []


async def test_an_extra_capture_gives_a_refund_push(live: Live, gateway: Gateway) -> None:
    order, alipay, paypal = await _alipay_scanned_then_paypal(live)
    await _approve(live, paypal["action"]["redirect_url"])
    # The Alipay payment that was under way lands after PayPal paid the order.
    assert (await live.wallet("pay", alipay["action"]["qr_code"])).status_code == 200
    await live.sandbox.deliver_due()
    await outbox.deliver_due(live.container.deps)

    final = await live.order(order)
    assert final["paid_payment_id"] == paypal["id"]
    refunded = {p["channel"]: p for p in await live.payments(order)}["alipay"]
    assert refunded["status"] == "REFUNDED"
    succeeded = await _entry_of(live, Topic.PAYMENT_SUCCEEDED)
    extra = await _entry_of(live, Topic.PAYMENT_EXTRA_CAPTURED)
    # The relay delivers the two events side by side: either push may go first.
    assert sorted((c.webhook_id, c.status) for c in gateway.calls) == sorted(
        [(succeeded.event.id, 200), (extra.event.id, 200)]
    )
    [refund_push] = [c for c in gateway.calls if c.webhook_id == extra.event.id]
    assert refund_push.data == {
        "id": extra.event.id,
        "customer_id": "c-42",
        "order_id": order["id"],
        "kind": "payment_refunding",
        # The refunds consumer ran first in the same pass, and the sandbox refunds at once.
        "title": "Payment refunded",
        "body": "A second payment of ¥39.98 has been refunded.",
        "status": "READY_FOR_SHIPMENT",
        "status_version": final["status_version"],
        "occurred_at": _iso(extra.event.occurred_at),
    }
    assert extra.delivered_at is not None


async def test_the_feed_is_fed_from_the_outbox_event_when_the_after_commit_publish_was_lost(
    live: Live, gateway: Gateway
) -> None:
    deps = live.container.deps
    order = await _pay(live)
    assert await outbox.deliver_due(deps) == 1  # the relay takes it to the shopper
    paid = await live.order(order)
    entry = await _entry_of(live, Topic.PAYMENT_SUCCEEDED)
    # This subscriber missed every publish so far, as a client whose instance lost it would.
    async with deps.feed.subscribe(order["id"]) as subscription:
        assert await subscription.next(0.05) is None
        assert await outbox.replay(
            live.container.storage, entry.event.id, now=live.clock.now(), consumer="shopper"
        )
        assert await outbox.deliver_due(deps) == 1
        message = await subscription.next(1.0)

    assert message is not None
    assert {k: message[k] for k in ("order_id", "status", "status_version", "paid_payment_id")} == {
        "order_id": order["id"],
        "status": "READY_FOR_SHIPMENT",
        "status_version": paid["status_version"],
        "paid_payment_id": paid["paid_payment_id"],
    }
    assert message["payment"]["id"] == paid["paid_payment_id"]
    replayed = await outbox.find(live.container.storage, entry.event.id)
    assert replayed is not None
    assert _state(replayed, "orders").attempts == 1  # the replay went to the shopper alone
    # The push went again with the same id: the gateway deduplicates on it.
    assert [c.webhook_id for c in gateway.accepted] == [entry.event.id, entry.event.id]
