"""The outbox's per-consumer delivery, operators' search and replay, on every storage adapter."""

from __future__ import annotations

from datetime import timedelta

from payonce.domain.events import Event, Topic
from payonce.domain.ids import EventId
from payonce.domain.order import Order
from payonce.ports.storage import ConsumerDelivery, OutboxEntry, Storage
from tests.builders import a_paid_payment, an_order
from tests.conftest import START

LATER = START + timedelta(seconds=5)


async def _events(storage: Storage, *specs: tuple[Order, Topic, int]) -> list[Event]:
    """Add one event per (order, topic, seconds after START it occurred)."""
    events = [
        Event.about(topic, a_paid_payment(order, now=START), START + timedelta(seconds=offset))
        for order, topic, offset in specs
    ]
    async with storage.transaction() as uow:
        for event in events:
            await uow.outbox.add(event, now=event.occurred_at)
    return events


async def _entry(storage: Storage, event_id: EventId) -> OutboxEntry:
    async with storage.transaction() as uow:
        entry = await uow.outbox.get(event_id)
    assert entry is not None
    return entry


async def test_each_consumer_acknowledges_on_its_own_and_an_acknowledgement_stands(
    storage: Storage,
) -> None:
    [event] = await _events(storage, (an_order(now=START), Topic.PAYMENT_SUCCEEDED, 0))
    async with storage.transaction() as uow:
        await uow.outbox.record_consumers(
            event.id, {"orders": None, "order_webhook": "answered 503"}, now=START
        )
    entry = await _entry(storage, event.id)
    assert entry.consumers == (
        ConsumerDelivery("order_webhook", 1, START, None, "answered 503"),
        ConsumerDelivery("orders", 1, START, START, None),
    )
    assert entry.acknowledged_by == frozenset({"orders"})
    assert entry.delivered_at is None  # the event itself is not delivered by consumer records

    async with storage.transaction() as uow:
        # The webhook acknowledges; a repeat to the inbox (a lapsed lease) fails: its ack stands.
        await uow.outbox.record_consumers(
            event.id, {"order_webhook": None, "orders": "StaleVersion: busy"}, now=LATER
        )
        await uow.outbox.record_consumers(event.id, {}, now=LATER)  # nothing tried: no change
    entry = await _entry(storage, event.id)
    assert entry.consumers == (
        ConsumerDelivery("order_webhook", 2, LATER, LATER, None),
        ConsumerDelivery("orders", 2, LATER, START, "StaleVersion: busy"),
    )
    assert entry.acknowledged_by == frozenset({"orders", "order_webhook"})


async def test_due_and_claimed_entries_carry_their_consumers_states(storage: Storage) -> None:
    order = an_order(now=START)
    tried, untried = await _events(
        storage, (order, Topic.PAYMENT_SUCCEEDED, 0), (order, Topic.PAYMENT_SUCCEEDED, 1)
    )
    async with storage.transaction() as uow:
        await uow.outbox.record_consumers(tried.id, {"orders": None}, now=START)
        due = await uow.outbox.due(now=LATER, limit=10)
    assert [(e.event.id, e.acknowledged_by) for e in due] == [
        (tried.id, frozenset({"orders"})),
        (untried.id, frozenset()),
    ]
    async with storage.transaction() as uow:
        claimed = await uow.outbox.claim(now=LATER, until=LATER + timedelta(minutes=1), limit=10)
    assert [e.consumers for e in claimed] == [e.consumers for e in due]


async def test_search_lists_undelivered_soonest_due_first_or_all_newest_first(
    storage: Storage,
) -> None:
    first, second = an_order(now=START), an_order(now=START)
    a, b, c, d = await _events(
        storage,
        (first, Topic.PAYMENT_SUCCEEDED, 0),
        (first, Topic.PAYMENT_EXTRA_CAPTURED, 1),
        (second, Topic.PAYMENT_SUCCEEDED, 2),
        (second, Topic.PAYMENT_EXTRA_CAPTURED, 3),
    )
    async with storage.transaction() as uow:
        assert await uow.outbox.mark_delivered(c.id, now=LATER)
        # a is retried last: undelivered entries come by their next attempt, not their age.
        await uow.outbox.mark_failed(a.id, next_attempt_at=LATER + timedelta(hours=1), error="503")
        await uow.outbox.record_consumers(a.id, {"order_webhook": "503"}, now=LATER)

    async def ids(**filters: object) -> list[EventId]:
        async with storage.transaction() as uow:
            found = await uow.outbox.search(**filters)  # type: ignore[arg-type]
        return [entry.event.id for entry in found]

    assert await ids(undelivered_only=True, limit=10) == [b.id, d.id, a.id]
    assert await ids(undelivered_only=False, limit=10) == [d.id, c.id, b.id, a.id]
    assert await ids(undelivered_only=False, limit=2) == [d.id, c.id]
    assert await ids(undelivered_only=False, limit=10, order_id=first.id) == [b.id, a.id]
    assert await ids(undelivered_only=True, limit=10, order_id=second.id) == [d.id]
    assert await ids(undelivered_only=False, limit=10, topic=Topic.PAYMENT_SUCCEEDED) == [
        c.id,
        a.id,
    ]
    assert await ids(undelivered_only=True, limit=10, order_id="ord_none") == []
    async with storage.transaction() as uow:
        [failing] = await uow.outbox.search(
            undelivered_only=True, limit=1, order_id=first.id, topic=Topic.PAYMENT_SUCCEEDED
        )
    assert failing.event == a
    assert (failing.attempts, failing.last_error) == (1, "503")
    assert failing.consumers == (ConsumerDelivery("order_webhook", 1, LATER, None, "503"),)
    # The backlog counts every undelivered event and finds the oldest, however late its retry.
    async with storage.transaction() as uow:
        waiting, oldest = await uow.outbox.backlog()
    assert (waiting, oldest) == (3, a.occurred_at)
    async with storage.transaction() as uow:
        for entry in (a, b, d):
            assert await uow.outbox.mark_delivered(entry.id, now=LATER)
        assert await uow.outbox.backlog() == (0, None)


async def test_a_replay_makes_a_delivered_event_due_now_for_every_consumer_or_one(
    storage: Storage,
) -> None:
    [event] = await _events(storage, (an_order(now=START), Topic.PAYMENT_SUCCEEDED, 0))
    async with storage.transaction() as uow:
        await uow.outbox.mark_failed(event.id, next_attempt_at=START, error="503")
        await uow.outbox.record_consumers(
            event.id, {"orders": None, "order_webhook": None}, now=START
        )
        assert await uow.outbox.mark_delivered(event.id, now=START)
        assert await uow.outbox.due(now=LATER, limit=10) == []

    replay_at = LATER + timedelta(days=2)
    async with storage.transaction() as uow:
        assert await uow.outbox.replay(event.id, now=replay_at, consumer="order_webhook")
        assert await uow.outbox.replay(EventId("evt_missing"), now=replay_at) is False
    entry = await _entry(storage, event.id)
    assert (entry.attempts, entry.next_attempt_at, entry.delivered_at, entry.last_error) == (
        0,
        replay_at,
        None,
        None,
    )
    assert entry.acknowledged_by == frozenset({"orders"})  # only the webhook is asked again
    assert [c.attempts for c in entry.consumers] == [1, 1]  # history is kept
    async with storage.transaction() as uow:
        assert await uow.outbox.due(now=replay_at - timedelta(seconds=1), limit=10) == []
        assert [e.event.id for e in await uow.outbox.due(now=replay_at, limit=10)] == [event.id]

    async with storage.transaction() as uow:
        assert await uow.outbox.replay(event.id, now=replay_at)
    assert (await _entry(storage, event.id)).acknowledged_by == frozenset()


async def test_consumer_records_roll_back_with_their_transaction(storage: Storage) -> None:
    [event] = await _events(storage, (an_order(now=START), Topic.PAYMENT_SUCCEEDED, 0))

    class Boom(Exception):
        pass

    try:
        async with storage.transaction() as uow:
            await uow.outbox.record_consumers(event.id, {"orders": None}, now=START)
            raise Boom
    except Boom:
        pass
    assert (await _entry(storage, event.id)).consumers == ()
