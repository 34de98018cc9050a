"""The storage contract: every adapter enforces the same constraints and compare-and-set rules."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from payonce.adapters.storage.sql import SqlStorage
from payonce.domain.channels import Channel, Platform
from payonce.domain.events import Event, Topic
from payonce.domain.ids import EventId, PaymentId
from payonce.domain.order import Order, OrderLine
from payonce.domain.payment import Payment, PaymentStatus
from payonce.errors import DuplicateKey, FenceRejected, StaleVersion, StorageIntegrityError
from payonce.ports.storage import IdempotencyRecord, IdempotencyState, Storage
from tests.conftest import START

S = PaymentStatus
_numbers = itertools.count(1)


def _order() -> Order:
    return Order.create(
        customer_id="c-1", currency="CNY", lines=(OrderLine("S", "Tea", 1, 1000),), now=START
    )


def _payment(order: Order, channel: Channel = Channel.ALIPAY, **changes: object) -> Payment:
    payment = Payment.open_intent(
        order_id=order.id, channel=channel, platform=Platform.PC, amount=order.total, now=START
    )
    return replace(payment, **{"number": next(_numbers), **changes})  # type: ignore[arg-type]


async def _saved(storage: Storage) -> Order:
    order = _order()
    async with storage.transaction() as uow:
        await uow.orders.add(order)
    return order


async def test_an_order_round_trips(storage: Storage) -> None:
    order = await _saved(storage)
    async with storage.transaction() as uow:
        assert await uow.orders.get(order.id) == order
        assert await uow.orders.get("ord_missing") is None  # type: ignore[arg-type]


async def test_order_updates_are_compare_and_set_on_version(storage: Storage) -> None:
    order = await _saved(storage)
    async with storage.transaction() as uow:
        await uow.orders.update(order.touched(START), expected_version=1)
    with pytest.raises(StaleVersion):
        async with storage.transaction() as uow:
            await uow.orders.update(order.touched(START), expected_version=1)
    async with storage.transaction() as uow:
        stored = await uow.orders.get(order.id)
    assert stored is not None
    assert stored.version == 2


async def test_a_failed_transaction_leaves_nothing_behind(storage: Storage) -> None:
    order = _order()

    async def crash_before_commit() -> None:
        async with storage.transaction() as uow:
            await uow.orders.add(order)
            raise RuntimeError("crash before commit")

    with pytest.raises(RuntimeError):
        await crash_before_commit()
    async with storage.transaction() as uow:
        assert await uow.orders.get(order.id) is None


async def test_a_refusal_that_no_retry_can_change_is_not_a_lost_race(storage: Storage) -> None:
    orphan = _payment(_order())  # its order was never stored
    with pytest.raises(StorageIntegrityError):
        async with storage.transaction() as uow:
            await uow.payments.add(orphan)


async def test_at_most_one_live_closable_trade_per_order(storage: Storage) -> None:
    order = await _saved(storage)
    first = _payment(order)
    async with storage.transaction() as uow:
        await uow.payments.add(first)
    for status in (S.UNPAID, S.PAYING, S.UNKNOWN, S.CLOSING):
        with pytest.raises(DuplicateKey):
            async with storage.transaction() as uow:
                await uow.payments.add(_payment(order, status=status))
    # A voucher channel cannot close its trades, so it is not held to this rule.
    async with storage.transaction() as uow:
        await uow.payments.add(_payment(order, Channel.BOLETO, closable=False))
    # Once the first is closed, a new live trade may open.
    async with storage.transaction() as uow:
        await uow.payments.update(first.moved_to(S.CLOSED, now=START), expected_version=1)
        await uow.payments.add(_payment(order))
        assert len(await uow.payments.for_order(order.id)) == 3


async def test_moving_a_second_trade_back_to_live_is_refused(storage: Storage) -> None:
    order = await _saved(storage)
    closed = _payment(order, status=S.CLOSED)
    live = _payment(order, status=S.PAYING)
    async with storage.transaction() as uow:
        await uow.payments.add(closed)
        await uow.payments.add(live)
    with pytest.raises(DuplicateKey):
        async with storage.transaction() as uow:
            await uow.payments.update(
                replace(closed, status=S.UNKNOWN, version=2), expected_version=1
            )


async def test_at_most_one_applied_payment_per_order(storage: Storage) -> None:
    order = await _saved(storage)
    async with storage.transaction() as uow:
        await uow.payments.add(_payment(order, status=S.PAID, applied=True))
    with pytest.raises(DuplicateKey):
        async with storage.transaction() as uow:
            await uow.payments.add(
                _payment(order, Channel.BOLETO, status=S.PAID, applied=True, closable=False)
            )
    async with storage.transaction() as uow:  # an extra capture, not applied, is recorded
        await uow.payments.add(
            _payment(order, Channel.BOLETO, status=S.PAID, applied=False, closable=False)
        )


async def test_trade_numbers_are_unique(storage: Storage) -> None:
    order = await _saved(storage)
    first = _payment(order, status=S.CLOSED, provider_trade_no="T-1")
    async with storage.transaction() as uow:
        await uow.payments.add(first)
    with pytest.raises(DuplicateKey):
        async with storage.transaction() as uow:
            await uow.payments.add(
                _payment(order, status=S.CLOSED, out_trade_no=first.out_trade_no)
            )
    with pytest.raises(DuplicateKey):
        async with storage.transaction() as uow:
            await uow.payments.add(_payment(order, status=S.CLOSED, provider_trade_no="T-1"))
    async with storage.transaction() as uow:  # per channel: another channel may reuse the id
        await uow.payments.add(
            _payment(order, Channel.WECHAT, status=S.CLOSED, provider_trade_no="T-1")
        )
        await uow.payments.add(_payment(order, status=S.CLOSED))  # many without a trade id
        assert (await uow.payments.by_out_trade_no(first.out_trade_no)) == first


async def test_payment_updates_are_compare_and_set_on_version(storage: Storage) -> None:
    order = await _saved(storage)
    payment = _payment(order)
    async with storage.transaction() as uow:
        await uow.payments.add(payment)
        await uow.payments.update(payment.moved_to(S.PAYING, now=START), expected_version=1)
    with pytest.raises(StaleVersion):
        async with storage.transaction() as uow:
            await uow.payments.update(payment.moved_to(S.UNKNOWN, now=START), expected_version=1)
    async with storage.transaction() as uow:
        stored = await uow.payments.get(payment.id)
    assert stored is not None
    assert stored.status is S.PAYING


async def test_payments_of_an_order_are_numbered_and_come_newest_first(storage: Storage) -> None:
    order = await _saved(storage)
    first = _payment(order, status=S.CLOSED, number=1)
    second = _payment(order, status=S.CLOSED, number=2)  # same instant: the number decides
    async with storage.transaction() as uow:
        await uow.payments.add(second)
        await uow.payments.add(first)
        assert [p.id for p in await uow.payments.for_order(order.id)] == [second.id, first.id]
    with pytest.raises(DuplicateKey):
        async with storage.transaction() as uow:
            await uow.payments.add(_payment(order, status=S.CLOSED, number=2))


async def test_outbox_claims_are_disjoint_and_leased(storage: Storage) -> None:
    order = await _saved(storage)
    payment = _payment(order, status=S.PAID, applied=True)
    events = [Event.about(Topic.PAYMENT_SUCCEEDED, payment, START) for _ in range(6)]
    async with storage.transaction() as uow:
        await uow.payments.add(payment)
        for event in events:
            await uow.outbox.add(event, now=START)
    lease = START + timedelta(seconds=60)

    async def claim(limit: int, now: datetime = START) -> set[EventId]:
        async with storage.transaction() as uow:
            taken = await uow.outbox.claim(now=now, until=lease, limit=limit)
        return {entry.event.id for entry in taken}

    concurrent = isinstance(storage, SqlStorage) and storage.engine.dialect.name == "postgresql"
    async with storage.transaction() as uow:
        first = {e.event.id for e in await uow.outbox.claim(now=START, until=lease, limit=4)}
        # PostgreSQL takes writers at once: another relay claims while this one holds its rows
        # (without SKIP LOCKED it would wait on them forever: a deadlock guard, not a timing).
        second = await asyncio.wait_for(claim(4), timeout=30) if concurrent else set()
    if not concurrent:  # one writer at a time: the other relay claims after the commit
        second = await claim(4)
    assert (len(first), len(second)) == (4, 2)
    assert first | second == {event.id for event in events}
    assert await claim(10) == set()  # every event is leased
    async with storage.transaction() as uow:
        assert await uow.outbox.mark_delivered(events[0].id, now=START) is True
    # The lease ends: whatever was claimed and not delivered is due again (a relay died).
    assert await claim(10, now=lease) == {event.id for event in events[1:]}


async def test_poll_jobs_are_scheduled_moved_claimed_disjointly_leased_and_finished(
    storage: Storage,
) -> None:
    order = await _saved(storage)
    payments = [_payment(order, status=S.CLOSED) for _ in range(5)]
    async with storage.transaction() as uow:
        for n, payment in enumerate(payments):
            await uow.payments.add(payment)
            await uow.polls.schedule(
                payment.id, order.id, due_at=START + timedelta(seconds=n), attempts=0
            )
        # Scheduling again moves the one job; it never makes a second.
        await uow.polls.schedule(
            payments[4].id, order.id, due_at=START + timedelta(hours=1), attempts=3
        )
        moved = await uow.polls.get(payments[4].id)
    assert moved is not None
    assert (moved.due_at, moved.attempts) == (START + timedelta(hours=1), 3)
    now, lease = START + timedelta(seconds=10), START + timedelta(seconds=70)

    async def claim(limit: int, at: datetime = now) -> list[PaymentId]:
        async with storage.transaction() as uow:
            return [
                job.payment_id for job in await uow.polls.claim(now=at, until=lease, limit=limit)
            ]

    concurrent = isinstance(storage, SqlStorage) and storage.engine.dialect.name == "postgresql"
    async with storage.transaction() as uow:
        first = [job.payment_id for job in await uow.polls.claim(now=now, until=lease, limit=2)]
        # Another worker claims while this one holds its rows (SKIP LOCKED, or a deadlock).
        second = await asyncio.wait_for(claim(10), timeout=30) if concurrent else []
    if not concurrent:
        second = await claim(10)
    assert first == [payments[0].id, payments[1].id]  # soonest first
    assert second == [payments[2].id, payments[3].id]  # not the one due in an hour
    assert await claim(10) == []  # leased
    async with storage.transaction() as uow:
        await uow.polls.finish(payments[0].id)
        assert await uow.polls.get(payments[0].id) is None
    # The lease ends: a claimed job not finished nor moved is due again (its worker died).
    assert set(await claim(10, at=lease)) == {payments[1].id, payments[2].id, payments[3].id}


async def test_outbox_delivers_each_event_once(storage: Storage) -> None:
    order = await _saved(storage)
    payment = _payment(order, status=S.PAID, applied=True)
    event = Event.about(Topic.PAYMENT_SUCCEEDED, payment, START)
    async with storage.transaction() as uow:
        await uow.payments.add(payment)
        await uow.outbox.add(event, now=START)
        assert [e.event for e in await uow.outbox.due(now=START, limit=10)] == [event]
        await uow.outbox.mark_failed(
            event.id, next_attempt_at=START + timedelta(seconds=1), error="503"
        )
        assert await uow.outbox.due(now=START, limit=10) == []
        due = await uow.outbox.due(now=START + timedelta(seconds=1), limit=10, order_id=order.id)
        assert [(e.event.id, e.attempts, e.last_error) for e in due] == [(event.id, 1, "503")]
        assert await uow.outbox.mark_delivered(event.id, now=START) is True
        assert await uow.outbox.mark_delivered(event.id, now=START) is False
        assert await uow.outbox.due(now=START + timedelta(days=1), limit=10) == []


async def test_inbox_and_notification_ids_are_recorded_once(storage: Storage) -> None:
    async with storage.transaction() as uow:
        assert await uow.inbox.record("orders", EventId("evt_1"), now=START) is True
        assert await uow.inbox.record("orders", EventId("evt_1"), now=START) is False
        assert await uow.inbox.record("ledger", EventId("evt_1"), now=START) is True
        assert await uow.notifications.record("alipay", "n1", payment_id="pay_1", now=START) is True  # type: ignore[arg-type]
        assert (
            await uow.notifications.record("alipay", "n1", payment_id="pay_1", now=START) is False
        )  # type: ignore[arg-type]
        assert await uow.notifications.record("wechat", "n1", payment_id="pay_1", now=START) is True  # type: ignore[arg-type]
        assert await uow.notifications.note_of("alipay", "n1") is None
        await uow.notifications.record(
            "alipay",
            "n2",
            payment_id="pay_1",
            now=START,
            note="conflict: PAID -> CLOSED",  # type: ignore[arg-type]
        )
        assert await uow.notifications.note_of("alipay", "n2") == "conflict: PAID -> CLOSED"
        assert await uow.notifications.note_of("alipay", "unknown") is None
        # The same id for another trade is not a repeat of this one: it must not be dropped.
        assert await uow.notifications.record("alipay", "n1", payment_id="pay_2", now=START) is True  # type: ignore[arg-type]


async def test_idempotency_keys_are_claimed_once_and_taken_over_by_compare_and_set(
    storage: Storage,
) -> None:
    claim = IdempotencyRecord(
        caller="backend",
        key="k1",
        fingerprint="f",
        state=IdempotencyState.IN_FLIGHT,
        locked_until=START + timedelta(seconds=60),
        expires_at=START + timedelta(hours=24),
    )
    async with storage.transaction() as uow:
        assert await uow.idempotency.insert(claim) is True
        assert await uow.idempotency.insert(claim) is False
        assert await uow.idempotency.insert(replace(claim, caller="order:o1")) is True
        later = replace(claim, locked_until=START + timedelta(seconds=120))
        assert await uow.idempotency.take_over(later, expected_locked_until=START) is False
        assert await uow.idempotency.take_over(later, expected_locked_until=claim.locked_until)
        stale = {"status": 201, "body": b'{"a":0}', "media_type": "application/json"}
        assert await uow.idempotency.complete(claim, **stale) is False  # taken over
        await uow.idempotency.release(claim)  # nor can it give back a key it lost
        assert await uow.idempotency.complete(
            later, status=201, body=b'{"a":1}', media_type="application/json"
        )
        done = await uow.idempotency.get("backend", "k1")
        assert done is not None
        assert (done.state, done.response_status, done.response_body) == (
            IdempotencyState.DONE,
            201,
            b'{"a":1}',
        )
        await uow.idempotency.release(later)  # done: no longer in flight, nothing to give back
        assert await uow.idempotency.get("backend", "k1") == done
        await uow.idempotency.delete("backend", "k1")
        assert await uow.idempotency.get("backend", "k1") is None
        assert await uow.idempotency.insert(claim) is True
        await uow.idempotency.release(claim)
        assert await uow.idempotency.get("backend", "k1") is None


async def test_fences_refuse_an_older_token(storage: Storage) -> None:
    async with storage.transaction() as uow:
        await uow.fences.check("order:o1", 5)
        await uow.fences.check("order:o1", 5)
        await uow.fences.check("order:o1", 7)
        await uow.fences.check("order:o2", 1)  # per key
    with pytest.raises(FenceRejected):
        async with storage.transaction() as uow:
            await uow.fences.check("order:o1", 6)
