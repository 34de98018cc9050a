"""The external order service answers 503 for an hour: afterwards every notification is
delivered and each applied once.

payonce runs for real (uvicorn, SQLite, the mounted sandbox) with its webhook pointed at an
order system that is a real HTTP server on a loopback port: it verifies each call with the
``standardwebhooks`` library, applies each webhook-id once, and is down for a simulated hour.
Time moves on the shared AdjustableClock; the relay's passes run when events fall due, as the
background loop would run them.
"""

from __future__ import annotations

import base64
import shutil
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook, WebhookVerificationError
from starlette.types import Receive, Scope, Send

from payonce.adapters.clock import AdjustableClock
from payonce.adapters.order_service.signing import WebhookSigner
from payonce.adapters.order_service.webhook import OrderServiceUnavailable, OrderWebhook
from payonce.bootstrap import bootstrap
from payonce.config import Settings
from payonce.domain.events import Topic
from payonce.entrypoints.web.app import create_app
from payonce.ports.storage import ConsumerDelivery, OutboxEntry
from payonce.service import outbox
from payonce.service.context import Policy
from tests.integration.conftest import API_KEY, Live, NotifyOutage
from tests.loopback import Serve, answer, loopback, received, served, unanswered
from tests.unit.test_webhook_signing import _event

SECRET = "whsec_" + base64.b64encode(b"the order service's shared key!!").decode()
HOUR = timedelta(hours=1)
# Backoff from 1 s, doubling, capped at 10 minutes (the policy below): so the hour shows both.
BACKOFF_CAP = timedelta(minutes=10)


class SharedClockVerifier(Webhook):
    """The library's verification, with its ±5 minute freshness window read on the clock the
    order system shares with payonce (simulated here) instead of the host's."""

    def __init__(self, secret: str, clock: AdjustableClock) -> None:
        super().__init__(secret)
        self._clock = clock

    def _Webhook__verify_timestamp(self, header: str) -> datetime:  # the library's own check
        try:
            sent = datetime.fromtimestamp(float(header), tz=UTC)
        except ValueError as error:
            raise WebhookVerificationError("Invalid Signature Headers") from error
        if abs(sent - self._clock.now()) > timedelta(minutes=5):
            raise WebhookVerificationError("Message timestamp too old or too new")
        return sent


@dataclass(frozen=True)
class Call:
    webhook_id: str | None
    at: datetime
    status: int


class OrderSystem:
    """An external order service: verifies, deduplicates by webhook-id, applies, answers."""

    def __init__(self, secret: str, clock: AdjustableClock) -> None:
        self.verifier = SharedClockVerifier(secret, clock)
        self.clock = clock
        self.down_until: datetime | None = None
        self.crash_after_next_apply = False
        self.applied: dict[str, dict[str, Any]] = {}  # webhook-id → the payment applied
        self.paid: Counter[str] = Counter()  # order id → times a payment was applied to it
        self.duplicates: list[str] = []  # webhook-ids received again after being applied
        self.calls: list[Call] = []
        self.url = ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body, headers = await received(scope, receive)
        status = self._answer(body, headers)
        self.calls.append(Call(headers.get("webhook-id"), self.clock.now(), status))
        await answer(send, status)

    def _answer(self, body: bytes, headers: dict[str, str]) -> int:
        try:
            message = self.verifier.verify(body, headers)
        except WebhookVerificationError:
            return 401
        if self.down_until is not None and self.clock.now() < self.down_until:
            return 503
        webhook_id = headers["webhook-id"]
        if webhook_id in self.applied:
            self.duplicates.append(webhook_id)
            return 200  # applied before: acknowledge, change nothing
        self.applied[webhook_id] = message["data"]
        self.paid[message["data"]["order_id"]] += 1
        if self.crash_after_next_apply:
            self.crash_after_next_apply = False
            return 500  # applied, then died before answering: payonce must send it again
        return 204

    def calls_for(self, webhook_id: str) -> list[Call]:
        return [call for call in self.calls if call.webhook_id == webhook_id]


@asynccontextmanager
async def payonce_on_loopback(
    tmp_path: Path, sandbox_keys: Path, clock: AdjustableClock, **settings: Any
) -> AsyncIterator[Live]:
    """payonce with these ``settings`` (besides what every live test sets), served on a
    loopback port behind NotifyOutage, on ``clock``; the relay's backoff is capped at
    BACKOFF_CAP so that an hour shows both the doubling and the cap."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    shutil.copytree(sandbox_keys, data_dir / "sandbox")
    sock, url = loopback()
    container = await bootstrap(
        Settings(
            data_dir=data_dir,
            api_key=API_KEY,  # type: ignore[arg-type]
            clock="adjustable",
            mount_sandbox=True,
            **settings,
        ),
        public_url=url,
        clock=clock,
        policy=Policy(outbox_backoff_max=BACKOFF_CAP, order_ttl=timedelta(hours=3)),
    )
    try:
        outage = NotifyOutage(create_app(container, run_background=False))
        async with served(outage, sock), httpx.AsyncClient(base_url=url, timeout=30) as http:
            yield Live(url, container, clock, http, outage)
    finally:
        await container.aclose()


@pytest.fixture
async def order_system(serve: Serve, clock: AdjustableClock) -> OrderSystem:
    system = OrderSystem(SECRET, clock)
    system.url = await serve(system) + "/hooks/payonce"
    return system


@pytest.fixture
async def live(
    tmp_path: Path, sandbox_keys: Path, clock: AdjustableClock, order_system: OrderSystem
) -> AsyncIterator[Live]:
    """payonce, configured by settings to notify the order system's webhook."""
    async with payonce_on_loopback(
        tmp_path,
        sandbox_keys,
        clock,
        order_webhook_url=order_system.url,
        order_webhook_secret=SECRET,
        order_webhook_timeout_s=2,
    ) as running:
        yield running


async def _pay(live: Live) -> dict[str, Any]:
    """Pay a new order with Alipay in the sandbox wallet; payonce hears of it at once."""
    order = await live.create_order()
    applied = await live.apply(order)
    assert applied.status_code == 201, applied.text
    assert (await live.wallet("pay", applied.json()["action"]["qr_code"])).status_code == 200
    assert await live.sandbox.deliver_due() == 1
    return order


async def _relay_until(live: Live, until: datetime) -> int:
    """Run relay passes, each at the moment the soonest event falls due, up to ``until``."""
    clock, passes = live.clock, 0
    while True:
        soonest = await outbox.browse(live.container.storage, limit=1)
        if not soonest or soonest[0].next_attempt_at > until:
            break
        if soonest[0].next_attempt_at > clock.now():
            clock.advance(soonest[0].next_attempt_at - clock.now())
        await outbox.deliver_due(live.container.deps)
        passes += 1
        assert passes < 500, "the relay is not making progress"
    if until > clock.now():
        clock.advance(until - clock.now())
    return passes


async def _events(live: Live) -> list[OutboxEntry]:
    return await outbox.browse(live.container.storage, undelivered_only=False, limit=100)


def _state(entry: OutboxEntry, consumer: str) -> ConsumerDelivery:
    [state] = [c for c in entry.consumers if c.consumer == consumer]
    return state


def _gaps(calls: list[Call]) -> list[float]:
    return [(later.at - earlier.at).total_seconds() for earlier, later in pairwise(calls)]


async def test_an_hour_of_503_then_every_notification_is_delivered_and_applied_once(
    live: Live, order_system: OrderSystem
) -> None:
    clock = live.clock
    start = clock.now()
    order_system.down_until = start + HOUR

    early = [await _pay(live) for _ in range(3)]
    # The first attempt ran at once, inside the notification's request: the built-in inbox
    # applied the payment, the order service answered 503.
    entries = await _events(live)
    assert len(entries) == 3
    assert [len(order_system.calls_for(e.event.id)) for e in entries] == [1, 1, 1]
    assert {c.status for c in order_system.calls} == {503}
    for order in early:
        assert (await live.order(order))["status"] == "READY_FOR_SHIPMENT"
    versions = {o["id"]: (await live.order(o))["status_version"] for o in early}

    await _relay_until(live, start + timedelta(minutes=20))
    late = [await _pay(live) for _ in range(2)]  # paid while the order service is still down
    versions |= {o["id"]: (await live.order(o))["status_version"] for o in late}
    await _relay_until(live, start + HOUR - timedelta(seconds=1))

    # An hour of 503: nothing is delivered, nothing applied, every event still due.
    assert order_system.applied == {}
    undelivered = await outbox.browse(live.container.storage)
    assert len(undelivered) == 5
    assert all(e.last_error and "answered 503" in e.last_error for e in undelivered)

    # It comes back, and the first event it applies loses its answer (a crash after applying).
    order_system.crash_after_next_apply = True
    await _relay_until(live, start + 2 * HOUR)

    entries = await _events(live)
    event_ids = {entry.event.id for entry in entries}
    assert await outbox.browse(live.container.storage) == []  # nothing left undelivered
    assert {entry.event.topic for entry in entries} == {Topic.PAYMENT_SUCCEEDED}
    orders = {o["id"] for o in early + late}
    # Each notification applied exactly once by the order service, every order paid once.
    assert set(order_system.applied) == event_ids
    assert order_system.paid == Counter({order_id: 1 for order_id in orders})
    [crashed] = order_system.duplicates  # the lost answer was sent again, and deduplicated
    # Nothing acknowledged was lost, and nothing unacknowledged counts as delivered.
    acknowledged = {c.webhook_id for c in order_system.calls if 200 <= c.status < 300}
    assert acknowledged == event_ids
    assert {c.status for c in order_system.calls} == {503, 500, 204, 200}

    early_ids = {e.event.id for e in entries if e.event.order_id in {o["id"] for o in early}}
    doubling = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
    cap = BACKOFF_CAP.total_seconds()
    for entry in entries:
        calls = order_system.calls_for(entry.event.id)
        statuses = [c.status for c in calls]
        expected = doubling + [cap] * (5 if entry.event.id in early_ids else 3)
        if entry.event.id == crashed:
            expected, answers = [*expected, cap], [500, 200]
        else:
            answers = [204]
        assert _gaps(calls) == expected  # backoff, capped, never faster
        assert statuses == [503] * (len(calls) - len(answers)) + answers
        assert calls[-len(answers)].at >= start + HOUR
        # payonce's record agrees: delivered when acknowledged, by both consumers.
        webhook, inbox = _state(entry, "order_webhook"), _state(entry, "orders")
        assert entry.delivered_at == calls[-1].at
        assert (webhook.attempts, webhook.delivered_at) == (len(calls), calls[-1].at)
        # The built-in inbox took the event at once and was never asked again.
        assert (inbox.attempts, inbox.delivered_at) == (1, calls[0].at)

    for order in early + late:
        now = await live.order(order)
        assert now["status"] == "READY_FOR_SHIPMENT"
        assert now["status_version"] == versions[order["id"]]  # retries changed nothing here

    # A replay to the order service repeats the call, never its effect; the inbox is not asked.
    some = entries[0].event.id
    assert await outbox.replay(
        live.container.storage, some, now=clock.now(), consumer="order_webhook"
    )
    assert await outbox.deliver_due(live.container.deps) == 1
    assert order_system.duplicates == [crashed, some]
    assert order_system.paid == Counter({order_id: 1 for order_id in orders})
    replayed = await outbox.find(live.container.storage, some)
    assert replayed is not None
    assert replayed.delivered_at == clock.now()
    assert _state(replayed, "orders").attempts == 1


async def test_the_order_system_refuses_unsigned_forged_tampered_and_stale_calls(
    live: Live, order_system: OrderSystem
) -> None:
    order = await _pay(live)  # delivered at once: the order service is up
    await outbox.deliver_due(live.container.deps)  # and the shopper's push, by the relay
    [entry] = await _events(live)
    assert entry.delivered_at is not None
    assert order_system.paid == Counter({order["id"]: 1})
    event = entry.event
    genuine = WebhookSigner(SECRET).sign(event, now=live.clock.now())
    forger = WebhookSigner("whsec_" + base64.b64encode(b"x" * 32).decode())
    other = await live.create_order()
    attempts: dict[str, tuple[bytes, dict[str, str]]] = {
        "unsigned": (genuine.body, {"content-type": "application/json"}),
        "forged": (genuine.body, forger.sign(event, now=live.clock.now()).headers),
        "tampered": (
            genuine.body.replace(event.order_id.encode(), other["id"].encode()),
            {**genuine.headers},
        ),
        "renamed": (genuine.body, {**genuine.headers, "webhook-id": "evt_forged"}),
    }
    async with httpx.AsyncClient() as client:
        for name, (body, headers) in attempts.items():
            answer = await client.post(order_system.url, content=body, headers=headers)
            assert answer.status_code == 401, name
        live.clock.advance(timedelta(minutes=6))  # a captured genuine call, replayed later
        stale = await client.post(order_system.url, content=genuine.body, headers=genuine.headers)
        assert stale.status_code == 401
    assert order_system.paid == Counter({order["id"]: 1})  # nothing forged was applied
    assert set(order_system.applied) == {event.id}


async def test_no_answer_within_the_time_out_or_no_server_is_not_an_acknowledgement(
    serve: Serve, clock: AdjustableClock
) -> None:
    event = _event()
    async with unanswered(serve) as (slow_url, closed_url):
        for url, complaint in ((slow_url, "no answer within 0.3 s"), (closed_url, "ConnectError")):
            webhook = OrderWebhook(
                url,
                WebhookSigner(SECRET),
                clock=clock,
                timeout_s=0.3,  # a transport time-out: real time, the only real wait here
                topics=[Topic.PAYMENT_SUCCEEDED],
            )
            with pytest.raises(OrderServiceUnavailable, match=complaint):
                await webhook.handle(event)
            await webhook.aclose()
