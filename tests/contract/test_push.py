"""The shopper push port: every adapter takes a message, and only an accepted one counts as sent.

The webhook adapter talks to real HTTP servers on loopback ports: one that answers what the
test says, one that never answers in time, and a port where nothing listens.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook
from starlette.types import Receive, Scope, Send

from payonce.adapters.clock import AdjustableClock
from payonce.adapters.push.log import LogPush
from payonce.adapters.push.webhook import PushGatewayUnavailable, WebhookPush
from payonce.domain.ids import EventId, OrderId
from payonce.domain.order import OrderStatus
from payonce.ports.push import PushMessage, ShopperPush
from tests.conftest import START
from tests.loopback import Serve, answer, received, unanswered

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
MESSAGE = PushMessage(
    id=EventId("evt_push1"),
    customer_id="c-42",
    order_id=OrderId("ord_push1"),
    kind="payment_succeeded",
    title="Payment received",
    body="Payment received: order ord_push1 is ready for shipment.",
    status=OrderStatus.READY_FOR_SHIPMENT,
    status_version=4,
    occurred_at=START,
)


class Gateway:
    """Answers ``status`` to every call and keeps what it received."""

    def __init__(self) -> None:
        self.status = 204
        self.received: list[tuple[bytes, dict[str, str]]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body, headers = await received(scope, receive)
        self.received.append((body, headers))
        await answer(send, self.status, b"busy" if self.status >= 500 else b"")


@pytest.fixture
async def gateway(serve: Serve) -> tuple[Gateway, str]:
    found = Gateway()
    return found, await serve(found) + "/push"


@pytest.fixture(params=["log", "webhook"])
async def push(
    request: pytest.FixtureRequest, gateway: tuple[Gateway, str]
) -> AsyncIterator[ShopperPush]:
    """Every ShopperPush adapter, so the contract runs against each."""
    if request.param == "log":
        yield LogPush()
        return
    adapter = WebhookPush(
        gateway[1], secret=SECRET, clock=AdjustableClock(start=START), timeout_s=2
    )
    yield adapter
    await adapter.aclose()


async def test_every_adapter_takes_a_message_and_may_be_given_it_again(push: ShopperPush) -> None:
    await push.send(MESSAGE)
    await push.send(MESSAGE)  # a retry after a lost answer: the id lets the far end deduplicate


async def test_the_log_adapter_writes_one_info_line_with_the_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="payonce.adapters.push"):
        await LogPush().send(MESSAGE)
    [record] = caplog.records
    assert record.levelno == logging.INFO
    line = record.getMessage()
    for part in ("evt_push1", "payment_succeeded", "c-42", "ord_push1", "READY_FOR_SHIPMENT"):
        assert part in line
    assert "v4" in line
    assert MESSAGE.body in line


async def test_the_webhook_posts_the_message_signed_with_its_id(
    gateway: tuple[Gateway, str],
) -> None:
    server, url = gateway
    now = datetime.now(UTC)  # the library checks freshness on the real time
    adapter = WebhookPush(url, secret=SECRET, clock=AdjustableClock(start=now), timeout_s=2)
    await adapter.send(MESSAGE)
    await adapter.aclose()

    [(body, headers)] = server.received
    assert headers["webhook-id"] == "evt_push1"
    assert headers["content-type"] == "application/json"
    assert Webhook(SECRET).verify(body, headers) == json.loads(body)
    assert json.loads(body)["data"] == {
        "id": "evt_push1",
        "customer_id": "c-42",
        "order_id": "ord_push1",
        "kind": "payment_succeeded",
        "title": "Payment received",
        "body": "Payment received: order ord_push1 is ready for shipment.",
        "status": "READY_FOR_SHIPMENT",
        "status_version": 4,
        "occurred_at": "2026-11-24T08:00:00Z",
    }


async def test_without_a_secret_the_webhook_is_sent_unsigned(
    gateway: tuple[Gateway, str],
) -> None:
    server, url = gateway
    adapter = WebhookPush(url, secret=None, clock=AdjustableClock(start=START), timeout_s=2)
    await adapter.send(MESSAGE)
    await adapter.aclose()
    [(_, headers)] = server.received
    assert headers["webhook-id"] == "evt_push1"
    assert "webhook-signature" not in headers


@pytest.mark.parametrize("status", [500, 503, 404, 302])
async def test_anything_but_2xx_raises_so_the_outbox_retries(
    gateway: tuple[Gateway, str], status: int
) -> None:
    server, url = gateway
    server.status = status
    adapter = WebhookPush(url, secret=SECRET, clock=AdjustableClock(start=START), timeout_s=2)
    with pytest.raises(PushGatewayUnavailable, match=f"answered {status}") as raised:
        await adapter.send(MESSAGE)
    await adapter.aclose()
    assert raised.value.retryable
    assert len(server.received) == 1  # one attempt: retries are the outbox's, on its backoff


async def test_a_refused_connection_or_no_answer_in_time_raises(serve: Serve) -> None:
    clock = AdjustableClock(start=START)
    async with unanswered(serve) as (slow_url, closed_url):
        for url, complaint in ((closed_url, "ConnectError"), (slow_url, "no answer within 0.3 s")):
            # A transport time-out: real time, the only real wait here.
            adapter = WebhookPush(url, secret=SECRET, clock=clock, timeout_s=0.3)
            with pytest.raises(PushGatewayUnavailable, match=complaint):
                await adapter.send(MESSAGE)
            await adapter.aclose()
