"""The outbox relay and the order inbox, on the in-memory storage twin and the injected clock."""

from __future__ import annotations

from datetime import timedelta

import pytest

from payonce.adapters.clock import AdjustableClock
from payonce.domain.events import Event, Topic
from payonce.domain.order import Order, OrderStatus
from payonce.service import outbox
from payonce.service.context import Deps
from payonce.service.order_inbox import OrderInbox
from tests.builders import a_paid_payment, an_order, memory_deps


class FlakyConsumer:
    """A second consumer that is down for its first ``failures`` deliveries."""

    name = "flaky"
    topics = frozenset({Topic.PAYMENT_SUCCEEDED})

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.seen: list[str] = []

    async def handle(self, event: Event) -> None:
        self.seen.append(event.id)
        if len(self.seen) <= self.failures:
            raise ConnectionError("order service answered 503")


@pytest.fixture
def deps(clock: AdjustableClock) -> Deps:
    built = memory_deps(clock)
    built.consumers = (OrderInbox(built),)
    return built


async def _paid_event(deps: Deps) -> tuple[Order, Event]:
    now = deps.clock.now()
    order = an_order(now=now, customer_id="c")
    payment = a_paid_payment(order, now=now)
    event = Event.about(Topic.PAYMENT_SUCCEEDED, payment, now)
    async with deps.storage.transaction() as uow:
        await uow.orders.add(order)
        await uow.payments.add(payment)
        await uow.outbox.add(event, now=now)
    return order, event


async def test_the_inbox_applies_an_event_once_however_often_it_arrives(deps: Deps) -> None:
    order, event = await _paid_event(deps)
    inbox = OrderInbox(deps)
    for _ in range(3):
        await inbox.handle(event)
    async with deps.storage.transaction() as uow:
        stored = await uow.orders.get(order.id)
    assert stored is not None
    assert stored.status is OrderStatus.READY_FOR_SHIPMENT
    assert stored.paid_payment_id == event.payment_id
    assert stored.version == order.version + 1  # one change, not three


async def test_the_relay_retries_a_failing_consumer_with_backoff_until_it_acknowledges(
    deps: Deps, clock: AdjustableClock
) -> None:
    order, event = await _paid_event(deps)
    flaky = FlakyConsumer(failures=2)
    deps.consumers = (*deps.consumers, flaky)

    assert await outbox.deliver_due(deps) == 0  # attempt 1 fails
    assert await outbox.deliver_due(deps) == 0  # not due again before the backoff
    assert flaky.seen == [event.id]
    clock.advance(timedelta(seconds=1))
    assert await outbox.deliver_due(deps) == 0  # attempt 2 fails; next in 2 s
    clock.advance(timedelta(seconds=1))
    assert await outbox.deliver_due(deps) == 0
    clock.advance(timedelta(seconds=1))
    assert await outbox.deliver_due(deps) == 1  # attempt 3 succeeds
    delivered_at = clock.now()
    assert flaky.seen == [event.id] * 3
    clock.advance(timedelta(hours=1))
    assert await outbox.deliver_due(deps) == 0  # delivered: never again
    async with deps.storage.transaction() as uow:
        entry = await uow.outbox.get(event.id)
        stored = await uow.orders.get(order.id)
    assert entry is not None
    assert (entry.attempts, entry.delivered_at) == (3, delivered_at)
    # The order side saw the event three times and applied it once.
    assert stored is not None
    assert stored.version == order.version + 1


async def test_an_event_no_consumer_takes_stays_undelivered_and_visible(
    deps: Deps, clock: AdjustableClock
) -> None:
    _, paid = await _paid_event(deps)
    async with deps.storage.transaction() as uow:
        payment = await uow.payments.get(paid.payment_id)
    assert payment is not None
    extra = Event.about(Topic.PAYMENT_EXTRA_CAPTURED, payment, clock.now())
    async with deps.storage.transaction() as uow:
        await uow.outbox.add(extra, now=clock.now())
    assert await outbox.deliver_due(deps) == 1  # only payment.succeeded has a taker
    clock.advance(timedelta(hours=2))
    assert await outbox.deliver_due(deps) == 0
    async with deps.storage.transaction() as uow:
        entry = await uow.outbox.get(extra.id)
    assert entry is not None
    assert entry.delivered_at is None
    assert entry.attempts == 2
    assert entry.last_error == "LookupError: no consumer takes payment.extra_captured"
