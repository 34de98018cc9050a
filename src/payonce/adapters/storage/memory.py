"""The in-memory storage twin: the same constraints as the SQL schema, transactions serialised.

Used by fast unit tests and property tests; it passes the same contract suite as the SQL adapter.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime

from payonce.domain.events import Event, Topic
from payonce.domain.ids import EventId, OrderId, PaymentId
from payonce.domain.order import Order, OrderStatus
from payonce.domain.payment import Payment
from payonce.domain.refund import Refund
from payonce.errors import DuplicateKey, FenceRejected, StaleVersion, StorageIntegrityError
from payonce.ports.storage import (
    AuditEntry,
    ConsumerDelivery,
    IdempotencyRecord,
    IdempotencyState,
    OutboxEntry,
    PollJob,
    ReceivedNotification,
)


@dataclass
class _State:
    orders: dict[OrderId, Order] = field(default_factory=dict)
    payments: dict[PaymentId, Payment] = field(default_factory=dict)
    outbox: dict[EventId, OutboxEntry] = field(default_factory=dict)
    inbox: set[tuple[str, EventId]] = field(default_factory=set)
    notifications: dict[tuple[str, str], ReceivedNotification] = field(default_factory=dict)
    idempotency: dict[tuple[str, str], IdempotencyRecord] = field(default_factory=dict)
    fences: dict[str, int] = field(default_factory=dict)
    polls: dict[PaymentId, PollJob] = field(default_factory=dict)
    refunds: dict[str, Refund] = field(default_factory=dict)
    # When the expiry sweep next looks at each order (see the orders table's expiry_check_at).
    expiry_checks: dict[OrderId, datetime] = field(default_factory=dict)
    audit: list[AuditEntry] = field(default_factory=list)
    audit_ids: int = 0  # the last id given

    def copy(self) -> _State:
        return _State(
            dict(self.orders),
            dict(self.payments),
            dict(self.outbox),
            set(self.inbox),
            dict(self.notifications),
            dict(self.idempotency),
            dict(self.fences),
            dict(self.polls),
            dict(self.refunds),
            dict(self.expiry_checks),
            list(self.audit),
            self.audit_ids,
        )


class _Orders:
    def __init__(self, state: _State) -> None:
        self._st = state

    async def add(self, order: Order) -> None:
        if order.id in self._st.orders:
            raise DuplicateKey("pk_orders")
        self._st.orders[order.id] = order
        self._st.expiry_checks[order.id] = order.expires_at

    async def get(self, order_id: OrderId) -> Order | None:
        return self._st.orders.get(order_id)

    async def update(self, order: Order, *, expected_version: int) -> None:
        current = self._st.orders.get(order.id)
        if current is None or current.version != expected_version:
            raise StaleVersion(f"order {order.id} is no longer at version {expected_version}")
        self._st.orders[order.id] = order

    async def expired(self, *, now: datetime, limit: int) -> list[Order]:
        due = [
            (check, order_id)
            for order_id, check in self._st.expiry_checks.items()
            if check <= now and self._st.orders[order_id].status is OrderStatus.UNPAID
        ]
        return [self._st.orders[order_id] for _, order_id in sorted(due)[:limit]]

    async def postpone_expiry(self, order_id: OrderId, *, until: datetime) -> None:
        if order_id in self._st.orders:
            self._st.expiry_checks[order_id] = max(self._st.expiry_checks[order_id], until)


class _Payments:
    def __init__(self, state: _State) -> None:
        self._st = state

    def _check_constraints(self, payment: Payment) -> None:
        if payment.order_id not in self._st.orders:
            raise StorageIntegrityError("fk_payments_order_id")
        for other in self._st.payments.values():
            if other.id == payment.id:
                continue
            if other.out_trade_no == payment.out_trade_no:
                raise DuplicateKey("uq_payments_out_trade_no")
            if other.order_id == payment.order_id and other.number == payment.number:
                raise DuplicateKey("uq_payments_order_number")
            if (
                payment.provider_trade_no is not None
                and other.channel == payment.channel
                and other.provider_trade_no == payment.provider_trade_no
            ):
                raise DuplicateKey("uq_payments_provider_trade_no")
            if other.order_id != payment.order_id:
                continue
            if payment.applied and other.applied:
                raise DuplicateKey("ux_payments_one_applied_per_order")
            if payment.closable and other.closable and payment.is_live and other.is_live:
                raise DuplicateKey("ux_payments_one_live_per_order")

    async def add(self, payment: Payment) -> None:
        if payment.id in self._st.payments:
            raise DuplicateKey("pk_payments")
        self._check_constraints(payment)
        self._st.payments[payment.id] = payment

    async def get(self, payment_id: PaymentId) -> Payment | None:
        return self._st.payments.get(payment_id)

    async def by_out_trade_no(self, out_trade_no: str) -> Payment | None:
        return next((p for p in self._st.payments.values() if p.out_trade_no == out_trade_no), None)

    async def for_order(self, order_id: OrderId) -> list[Payment]:
        found = [p for p in self._st.payments.values() if p.order_id == order_id]
        return sorted(found, key=lambda p: p.number, reverse=True)

    async def update(self, payment: Payment, *, expected_version: int) -> None:
        current = self._st.payments.get(payment.id)
        if current is None or current.version != expected_version:
            raise StaleVersion(f"payment {payment.id} is no longer at version {expected_version}")
        self._check_constraints(payment)
        self._st.payments[payment.id] = payment

    async def unwatched(
        self,
        *,
        stale_before: datetime,
        overdue_before: datetime,
        limit: int,
        after: tuple[datetime, PaymentId] | None = None,
    ) -> list[Payment]:
        found = []
        for payment in self._st.payments.values():
            job = self._st.polls.get(payment.id)
            if (
                payment.is_live
                and payment.updated_at <= stale_before
                and (job is None or job.due_at <= overdue_before)
                and (after is None or (payment.updated_at, payment.id) > after)
            ):
                found.append(payment)
        found.sort(key=lambda p: (p.updated_at, p.id))
        return found[:limit]

    async def paid_between(self, channel: str, *, start: datetime, end: datetime) -> list[Payment]:
        found = [
            p
            for p in self._st.payments.values()
            if p.channel.value == channel and p.paid_at is not None and start <= p.paid_at < end
        ]
        return sorted(found, key=lambda p: (p.paid_at or start, p.id))


class _Refunds:
    def __init__(self, state: _State) -> None:
        self._st = state

    async def add(self, refund: Refund) -> bool:
        if refund.payment_id not in self._st.payments:
            raise StorageIntegrityError("fk_refunds_payment_id")
        if refund.refund_no in self._st.refunds or await self.for_payment(refund.payment_id):
            return False
        self._st.refunds[refund.refund_no] = refund
        return True

    async def get(self, refund_no: str) -> Refund | None:
        return self._st.refunds.get(refund_no)

    async def for_payment(self, payment_id: PaymentId) -> Refund | None:
        return next((r for r in self._st.refunds.values() if r.payment_id == payment_id), None)

    async def for_order(self, order_id: OrderId) -> list[Refund]:
        found = [r for r in self._st.refunds.values() if r.order_id == order_id]
        return sorted(found, key=lambda r: (r.requested_at, r.refund_no))

    async def update(self, refund: Refund) -> None:
        if refund.refund_no in self._st.refunds:
            self._st.refunds[refund.refund_no] = refund


class _Outbox:
    def __init__(self, state: _State) -> None:
        self._st = state

    async def add(self, event: Event, *, now: datetime) -> None:
        if event.id in self._st.outbox:
            raise DuplicateKey("pk_outbox")
        self._st.outbox[event.id] = OutboxEntry(event, 0, now, None, None)

    async def due(
        self, *, now: datetime, limit: int, order_id: OrderId | None = None
    ) -> list[OutboxEntry]:
        found = [
            entry
            for entry in self._st.outbox.values()
            if entry.delivered_at is None
            and entry.next_attempt_at <= now
            and (order_id is None or entry.event.order_id == order_id)
        ]
        found.sort(key=lambda e: (e.next_attempt_at, e.event.id))
        return found[:limit]

    async def claim(
        self, *, now: datetime, until: datetime, limit: int, order_id: OrderId | None = None
    ) -> list[OutboxEntry]:
        taken = await self.due(now=now, limit=limit, order_id=order_id)
        for entry in taken:
            self._st.outbox[entry.event.id] = replace(entry, next_attempt_at=until)
        return taken

    async def get(self, event_id: EventId, *, lock: bool = False) -> OutboxEntry | None:
        return self._st.outbox.get(event_id)  # transactions run one at a time here

    async def mark_delivered(self, event_id: EventId, *, now: datetime) -> bool:
        entry = self._st.outbox.get(event_id)
        if entry is None or entry.delivered_at is not None:
            return False
        self._st.outbox[event_id] = replace(
            entry, delivered_at=now, attempts=entry.attempts + 1, last_error=None
        )
        return True

    async def mark_failed(
        self, event_id: EventId, *, next_attempt_at: datetime, error: str
    ) -> None:
        entry = self._st.outbox.get(event_id)
        if entry is not None and entry.delivered_at is None:
            self._st.outbox[event_id] = replace(
                entry,
                attempts=entry.attempts + 1,
                next_attempt_at=next_attempt_at,
                last_error=error,
            )

    async def record_consumers(
        self, event_id: EventId, outcomes: Mapping[str, str | None], *, now: datetime
    ) -> None:
        entry = self._st.outbox.get(event_id)
        if entry is None:
            return
        states = {state.consumer: state for state in entry.consumers}
        for consumer, error in outcomes.items():
            before = states.get(consumer)
            states[consumer] = ConsumerDelivery(
                consumer=consumer,
                attempts=(before.attempts if before else 0) + 1,
                last_attempt_at=now,
                delivered_at=(before.delivered_at if before else None)
                or (now if error is None else None),
                last_error=error,
            )
        self._st.outbox[event_id] = replace(
            entry, consumers=tuple(sorted(states.values(), key=lambda c: c.consumer))
        )

    async def backlog(self) -> tuple[int, datetime | None]:
        waiting = [e.event.occurred_at for e in self._st.outbox.values() if e.delivered_at is None]
        return len(waiting), min(waiting, default=None)

    async def search(
        self,
        *,
        undelivered_only: bool,
        limit: int,
        order_id: OrderId | None = None,
        topic: Topic | None = None,
    ) -> list[OutboxEntry]:
        found = [
            entry
            for entry in self._st.outbox.values()
            if (order_id is None or entry.event.order_id == order_id)
            and (topic is None or entry.event.topic is topic)
            and not (undelivered_only and entry.delivered_at is not None)
        ]
        if undelivered_only:
            found.sort(key=lambda e: (e.next_attempt_at, e.event.id))
        else:
            found.sort(key=lambda e: (e.event.occurred_at, e.event.id), reverse=True)
        return found[:limit]

    async def replay(
        self, event_id: EventId, *, now: datetime, consumer: str | None = None
    ) -> bool:
        entry = self._st.outbox.get(event_id)
        if entry is None:
            return False
        self._st.outbox[event_id] = replace(
            entry,
            attempts=0,
            next_attempt_at=now,
            delivered_at=None,
            last_error=None,
            consumers=tuple(
                replace(state, delivered_at=None)
                if consumer is None or state.consumer == consumer
                else state
                for state in entry.consumers
            ),
        )
        return True


class _Inbox:
    def __init__(self, state: _State) -> None:
        self._st = state

    async def record(self, consumer: str, event_id: EventId, *, now: datetime) -> bool:
        if (consumer, event_id) in self._st.inbox:
            return False
        self._st.inbox.add((consumer, event_id))
        return True


class _Notifications:
    def __init__(self, state: _State) -> None:
        self._st = state

    async def record(
        self,
        channel: str,
        notify_id: str,
        *,
        payment_id: PaymentId,
        now: datetime,
        note: str | None = None,
    ) -> bool:
        first = self._st.notifications.get((channel, notify_id))
        if first is None:
            self._st.notifications[(channel, notify_id)] = ReceivedNotification(
                channel, notify_id, payment_id, now, note
            )
            return True
        return first.payment_id != payment_id

    async def note_of(self, channel: str, notify_id: str) -> str | None:
        found = self._st.notifications.get((channel, notify_id))
        return found.note if found else None

    async def for_payments(self, payment_ids: Sequence[PaymentId]) -> list[ReceivedNotification]:
        wanted = set(payment_ids)
        found = [n for n in self._st.notifications.values() if n.payment_id in wanted]
        return sorted(found, key=lambda n: (n.received_at, n.notify_id))


class _Audit:
    def __init__(self, state: _State) -> None:
        self._st = state

    async def append(self, entry: AuditEntry) -> None:
        self._st.audit_ids += 1
        self._st.audit.append(replace(entry, id=self._st.audit_ids))

    async def for_order(self, order_id: OrderId) -> list[AuditEntry]:
        found = [entry for entry in self._st.audit if entry.order_id == order_id]
        return sorted(found, key=lambda entry: (entry.at, entry.id or 0))


class _Idempotency:
    def __init__(self, state: _State) -> None:
        self._st = state

    async def get(self, caller: str, key: str) -> IdempotencyRecord | None:
        return self._st.idempotency.get((caller, key))

    async def insert(self, record: IdempotencyRecord) -> bool:
        if (record.caller, record.key) in self._st.idempotency:
            return False
        self._st.idempotency[(record.caller, record.key)] = record
        return True

    async def take_over(
        self, record: IdempotencyRecord, *, expected_locked_until: datetime
    ) -> bool:
        current = self._st.idempotency.get((record.caller, record.key))
        if (
            current is None
            or current.state is not IdempotencyState.IN_FLIGHT
            or current.locked_until != expected_locked_until
        ):
            return False
        self._st.idempotency[(record.caller, record.key)] = record
        return True

    def _held_by(self, claim: IdempotencyRecord) -> bool:
        current = self._st.idempotency.get((claim.caller, claim.key))
        return (
            current is not None
            and current.state is IdempotencyState.IN_FLIGHT
            and current.locked_until == claim.locked_until
        )

    async def complete(
        self, claim: IdempotencyRecord, *, status: int, body: bytes, media_type: str
    ) -> bool:
        if not self._held_by(claim):
            return False
        self._st.idempotency[(claim.caller, claim.key)] = replace(
            self._st.idempotency[(claim.caller, claim.key)],
            state=IdempotencyState.DONE,
            response_status=status,
            response_body=body,
            response_type=media_type,
        )
        return True

    async def release(self, claim: IdempotencyRecord) -> None:
        if self._held_by(claim):
            del self._st.idempotency[(claim.caller, claim.key)]

    async def delete(self, caller: str, key: str) -> None:
        self._st.idempotency.pop((caller, key), None)


class _Fences:
    def __init__(self, state: _State) -> None:
        self._st = state

    async def check(self, key: str, token: int) -> None:
        if self._st.fences.get(key, token) > token:
            raise FenceRejected(f"lock token {token} for {key} is older than one that wrote")
        self._st.fences[key] = token


class _PollJobs:
    def __init__(self, state: _State) -> None:
        self._st = state

    async def schedule(
        self, payment_id: PaymentId, order_id: OrderId, *, due_at: datetime, attempts: int
    ) -> None:
        self._st.polls[payment_id] = PollJob(payment_id, order_id, due_at, attempts)

    async def claim(self, *, now: datetime, until: datetime, limit: int) -> list[PollJob]:
        due = sorted(
            (job for job in self._st.polls.values() if job.due_at <= now),
            key=lambda job: (job.due_at, job.payment_id),
        )[:limit]
        for job in due:
            self._st.polls[job.payment_id] = replace(job, due_at=until)
        return due

    async def get(self, payment_id: PaymentId) -> PollJob | None:
        return self._st.polls.get(payment_id)

    async def finish(self, payment_id: PaymentId) -> None:
        self._st.polls.pop(payment_id, None)


class MemoryUnitOfWork:
    def __init__(self, state: _State) -> None:
        self.state = state
        self.orders = _Orders(state)
        self.payments = _Payments(state)
        self.refunds = _Refunds(state)
        self.outbox = _Outbox(state)
        self.inbox = _Inbox(state)
        self.notifications = _Notifications(state)
        self.idempotency = _Idempotency(state)
        self.fences = _Fences(state)
        self.polls = _PollJobs(state)
        self.audit = _Audit(state)


class MemoryStorage:
    """Transactions run one at a time on a copy of the state, swapped in at commit."""

    def __init__(self) -> None:
        self._state = _State()
        self._serial = asyncio.Lock()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[MemoryUnitOfWork]:
        async with self._serial:
            work = MemoryUnitOfWork(self._state.copy())
            yield work
            self._state = work.state

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None
