"""The relay tracks delivery per consumer: retries go to the consumers that have not acknowledged
yet, an event is delivered once all have, and a replay asks again (all, or one)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from payonce.adapters.clock import AdjustableClock
from payonce.domain.events import Event, Topic
from payonce.domain.order import OrderStatus
from payonce.ports.storage import ConsumerDelivery, OutboxEntry
from payonce.service import outbox
from payonce.service.context import Deps, Policy
from payonce.service.order_inbox import OrderInbox
from tests.builders import a_paid_payment, an_order, memory_deps


class Consumer:
    """A consumer that fails its first ``failures`` calls and records every call."""

    topics = frozenset({Topic.PAYMENT_SUCCEEDED})

    def __init__(self, name: str, failures: int = 0) -> None:
        self.name = name
        self.failures = failures
        self.calls: list[str] = []

    async def handle(self, event: Event) -> None:
        self.calls.append(event.id)
        if len(self.calls) <= self.failures:
            raise ConnectionError("answered 503")


@pytest.fixture
def deps(clock: AdjustableClock) -> Deps:
    built = memory_deps(clock, Policy(outbox_backoff_max=timedelta(seconds=10)))
    built.consumers = (OrderInbox(built),)
    return built


async def _paid_events(deps: Deps, count: int = 1) -> list[Event]:
    now = deps.clock.now()
    events = []
    async with deps.storage.transaction() as uow:
        for _ in range(count):
            order = an_order(now=now, customer_id="c")
            payment = a_paid_payment(order, now=now)
            event = Event.about(Topic.PAYMENT_SUCCEEDED, payment, now)
            await uow.orders.add(order)
            await uow.payments.add(payment)
            await uow.outbox.add(event, now=now)
            events.append(event)
    return events


async def _entry(deps: Deps, event: Event) -> OutboxEntry:
    found = await outbox.find(deps.storage, event.id)
    assert found is not None
    return found


async def test_retries_go_only_to_the_consumer_that_has_not_acknowledged(
    deps: Deps, clock: AdjustableClock
) -> None:
    [event] = await _paid_events(deps)
    steady, webhook = Consumer("steady"), Consumer("webhook", failures=6)
    deps.consumers = (*deps.consumers, steady, webhook)
    start = clock.now()

    attempts_at = []
    while await outbox.deliver_due(deps) == 0:
        attempts_at.append(clock.now() - start)
        entry = await _entry(deps, event)
        assert entry.delivered_at is None  # not delivered while one consumer has not acknowledged
        clock.advance(entry.next_attempt_at - clock.now())
    attempts_at.append(clock.now() - start)

    # Backoff 1, 2, 4, 8 s, then capped at the policy's 10 s.
    assert attempts_at == [timedelta(seconds=s) for s in (0, 1, 3, 7, 15, 25, 35)]
    assert webhook.calls == [event.id] * 7
    assert steady.calls == [event.id]  # acknowledged at once: never asked again
    entry = await _entry(deps, event)
    delivered_at = start + timedelta(seconds=35)
    assert (entry.attempts, entry.delivered_at, entry.last_error) == (7, delivered_at, None)
    assert entry.consumers == (
        ConsumerDelivery("orders", 1, start, start, None),
        ConsumerDelivery("steady", 1, start, start, None),
        ConsumerDelivery("webhook", 7, delivered_at, delivered_at, None),
    )
    async with deps.storage.transaction() as uow:
        order = await uow.orders.get(event.order_id)
    assert order is not None
    assert (order.status, order.version) == (OrderStatus.READY_FOR_SHIPMENT, 2)  # applied once
    clock.advance(timedelta(days=1))
    assert await outbox.deliver_due(deps) == 0
    assert (len(webhook.calls), len(steady.calls)) == (7, 1)


async def test_a_failing_consumer_is_named_in_the_events_error(
    deps: Deps, clock: AdjustableClock
) -> None:
    [event] = await _paid_events(deps)
    deps.consumers = (*deps.consumers, Consumer("webhook", failures=1), Consumer("stream", 1))
    assert await outbox.deliver_due(deps) == 0
    entry = await _entry(deps, event)
    assert entry.last_error == (
        "webhook: ConnectionError: answered 503; stream: ConnectionError: answered 503"
    )
    assert entry.acknowledged_by == frozenset({"orders"})
    assert entry.next_attempt_at == clock.now() + timedelta(seconds=1)


async def test_a_replay_asks_every_consumer_again_or_only_the_one_named(
    deps: Deps, clock: AdjustableClock
) -> None:
    [event] = await _paid_events(deps)
    steady, webhook = Consumer("steady"), Consumer("webhook")
    deps.consumers = (*deps.consumers, steady, webhook)
    assert await outbox.deliver_due(deps) == 1
    clock.advance(timedelta(hours=3))

    assert await outbox.replay(deps.storage, event.id, now=clock.now(), consumer="webhook")
    assert await outbox.deliver_due(deps) == 1
    assert (steady.calls, webhook.calls) == ([event.id], [event.id] * 2)

    assert await outbox.replay(deps.storage, event.id, now=clock.now())
    assert [e.event.id for e in await outbox.browse(deps.storage)] == [event.id]
    assert await outbox.deliver_due(deps) == 1
    assert (steady.calls, webhook.calls) == ([event.id] * 2, [event.id] * 3)
    async with deps.storage.transaction() as uow:
        order = await uow.orders.get(event.order_id)
    assert order is not None
    assert order.version == 2  # the inbox saw the event twice and applied it once
    assert await outbox.browse(deps.storage) == []
    assert await outbox.replay(deps.storage, "evt_missing", now=clock.now()) is False  # type: ignore[arg-type]


async def test_a_pass_delivers_its_events_concurrently_within_a_bound(deps: Deps) -> None:
    events = await _paid_events(deps, count=outbox.CONCURRENCY + 4)

    class Gate:
        """Holds every call until CONCURRENCY calls wait at once: a sequential relay never
        gets there."""

        name = "gate"
        topics = frozenset({Topic.PAYMENT_SUCCEEDED})

        def __init__(self) -> None:
            self.waiting = 0
            self.most = 0
            self.full = asyncio.Event()

        async def handle(self, event: Event) -> None:
            self.waiting += 1
            self.most = max(self.most, self.waiting)
            if self.waiting == outbox.CONCURRENCY:
                self.full.set()
            await self.full.wait()
            self.waiting -= 1

    gate = Gate()
    deps.consumers = (*deps.consumers, gate)
    delivered = await asyncio.wait_for(outbox.deliver_due(deps), timeout=10)
    assert delivered == len(events)
    assert gate.most == outbox.CONCURRENCY


class ReplayingWebhook:
    """A consumer slow enough that an operator's replay for another consumer lands during it."""

    name = "webhook"
    topics = frozenset({Topic.PAYMENT_SUCCEEDED})

    def __init__(self, deps: Deps, replay_for: str) -> None:
        self._deps = deps
        self._replay_for = replay_for
        self.calls: list[str] = []

    async def handle(self, event: Event) -> None:
        self.calls.append(event.id)
        if len(self.calls) == 1:
            await outbox.replay(
                self._deps.storage, event.id, now=self._deps.clock.now(), consumer=self._replay_for
            )


async def test_a_replay_that_lands_while_the_event_is_delivered_is_not_lost(deps: Deps) -> None:
    [event] = await _paid_events(deps)
    steady = Consumer("steady")
    deps.consumers = (steady,)
    assert await outbox.deliver_due(deps) == 1  # steady acknowledged
    webhook = ReplayingWebhook(deps, replay_for="steady")
    deps.consumers = (steady, webhook)
    await outbox.replay(deps.storage, event.id, now=deps.clock.now(), consumer="webhook")

    # The claim saw steady acknowledged; during the webhook's call steady is replayed.
    assert await outbox.deliver_due(deps) == 0
    entry = await _entry(deps, event)
    assert entry.delivered_at is None
    assert entry.last_error == "replayed while delivering: steady"
    assert entry.next_attempt_at == deps.clock.now()  # due again at once
    assert steady.calls == [event.id]

    assert await outbox.deliver_due(deps) == 1
    assert steady.calls == [event.id, event.id]  # the replay reached it
    assert webhook.calls == [event.id]  # acknowledged once, not asked again
    assert (await _entry(deps, event)).delivered_at is not None


class Gateway(Consumer):
    """A consumer that calls out (a push gateway): never run under the order's lock."""

    relay_only = True


async def test_the_inline_attempt_leaves_relay_only_consumers_to_the_relay(
    deps: Deps, clock: AdjustableClock
) -> None:
    [event] = await _paid_events(deps)
    push, steady = Gateway("push"), Consumer("steady")
    deps.consumers = (*deps.consumers, push, steady)

    # Right after the commit, under the order's lock: the order side only.
    assert await outbox.deliver_due(deps, order_id=event.order_id, inline=True) == 0
    assert (push.calls, steady.calls) == ([], [event.id])
    entry = await _entry(deps, event)
    assert entry.acknowledged_by == frozenset({"orders", "steady"})
    assert (entry.delivered_at, entry.next_attempt_at) == (None, clock.now())  # due at once
    assert entry.last_error == "left for the relay: push"

    # The relay, at once: the gateway alone, and the event is delivered.
    assert await outbox.deliver_due(deps) == 1
    assert (push.calls, steady.calls) == ([event.id], [event.id])
    assert (await _entry(deps, event)).delivered_at == clock.now()
