"""The storage port: repositories inside one unit of work (a database transaction).

Every "at most once" lives here as a unique constraint or a compare-and-set, never as a read
followed by a write in the service. Adapters raise ``StaleVersion``, ``DuplicateKey`` and
``FenceRejected`` (from ``payonce.errors``) when the database refuses a write.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from payonce.domain.events import Event, Topic
from payonce.domain.ids import EventId, OrderId, PaymentId
from payonce.domain.order import Order
from payonce.domain.payment import Payment
from payonce.domain.refund import Refund


class OrderRepository(Protocol):
    async def add(self, order: Order) -> None: ...

    async def get(self, order_id: OrderId) -> Order | None: ...

    async def update(self, order: Order, *, expected_version: int) -> None:
        """Write ``order`` if the stored one still has ``expected_version``; else StaleVersion."""
        ...

    async def expired(self, *, now: datetime, limit: int) -> list[Order]:
        """Unpaid orders past their deadline whose expiry is due, soonest first.

        Served by an index over unpaid orders only: the cost follows the orders due, not the
        table. An order whose expiry was postponed is not due again before then. PostgreSQL
        locks the rows it answers and skips rows others hold, so workers that postpone what
        they took in the same transaction (a claim) take disjoint orders.
        """
        ...

    async def postpone_expiry(self, order_id: OrderId, *, until: datetime) -> None:
        """Look at this unpaid order's expiry again not before ``until`` (a trade would not
        close yet, or a voucher may still be paid); it never moves earlier."""
        ...


class PaymentRepository(Protocol):
    async def add(self, payment: Payment) -> None:
        """Insert; DuplicateKey when a second live or applied record, or a known trade id."""
        ...

    async def get(self, payment_id: PaymentId) -> Payment | None: ...

    async def by_out_trade_no(self, out_trade_no: str) -> Payment | None: ...

    async def for_order(self, order_id: OrderId) -> list[Payment]:
        """The order's payments, newest first."""
        ...

    async def update(self, payment: Payment, *, expected_version: int) -> None: ...

    async def unwatched(
        self,
        *,
        stale_before: datetime,
        overdue_before: datetime,
        limit: int,
        after: tuple[datetime, PaymentId] | None = None,
    ) -> list[Payment]:
        """Live payments unchanged since ``stale_before`` whose poll job is missing or was due
        before ``overdue_before``, least recently changed first: what the sweeper takes.
        ``after``: the (updated_at, id) of the last one of the previous batch, to go on from.

        Served by an index over live payments only: its cost does not grow with the table.
        """
        ...

    async def paid_between(self, channel: str, *, start: datetime, end: datetime) -> list[Payment]:
        """The channel's payments whose money moved in [start, end), oldest first."""
        ...


class RefundRepository(Protocol):
    async def add(self, refund: Refund) -> bool:
        """True if recorded; False when this refund number (or a refund of this payment) exists."""
        ...

    async def get(self, refund_no: str) -> Refund | None: ...

    async def for_payment(self, payment_id: PaymentId) -> Refund | None: ...

    async def for_order(self, order_id: OrderId) -> list[Refund]: ...

    async def update(self, refund: Refund) -> None: ...


@dataclass(frozen=True, slots=True)
class ConsumerDelivery:
    """One consumer's side of an event's delivery: each consumer acknowledges on its own."""

    consumer: str
    attempts: int
    last_attempt_at: datetime
    delivered_at: datetime | None  # when it acknowledged; None while it has not
    last_error: str | None


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    event: Event
    # Attempts since the event was added or last replayed (the backoff counts from them).
    attempts: int
    next_attempt_at: datetime
    # Set once every consumer of its topic acknowledged it.
    delivered_at: datetime | None
    last_error: str | None
    # The consumers tried so far, by name; one that acknowledged is not asked again.
    consumers: tuple[ConsumerDelivery, ...] = ()

    @property
    def acknowledged_by(self) -> frozenset[str]:
        return frozenset(c.consumer for c in self.consumers if c.delivered_at is not None)


class OutboxRepository(Protocol):
    async def add(self, event: Event, *, now: datetime) -> None: ...

    async def due(
        self, *, now: datetime, limit: int, order_id: OrderId | None = None
    ) -> list[OutboxEntry]:
        """Undelivered entries whose next attempt is due, oldest first."""
        ...

    async def claim(
        self, *, now: datetime, until: datetime, limit: int, order_id: OrderId | None = None
    ) -> list[OutboxEntry]:
        """Take due entries for delivery: each is not due again before ``until`` (a lease).

        Relays claiming at once get disjoint entries (PostgreSQL: ``FOR UPDATE SKIP LOCKED``);
        one that crashes leaves its entries due again when the lease ends.
        """
        ...

    async def mark_delivered(self, event_id: EventId, *, now: datetime) -> bool:
        """True if this call delivered it (it was still undelivered)."""
        ...

    async def mark_failed(
        self, event_id: EventId, *, next_attempt_at: datetime, error: str
    ) -> None: ...

    async def get(self, event_id: EventId, *, lock: bool = False) -> OutboxEntry | None:
        """The entry with its consumers' states. ``lock``: hold its row to the end of the
        transaction (PostgreSQL), so a replay running at once waits for it or is seen by it."""
        ...

    async def record_consumers(
        self, event_id: EventId, outcomes: Mapping[str, str | None], *, now: datetime
    ) -> None:
        """Count one attempt for each named consumer: ``None`` if it acknowledged (for good,
        until a replay), else its error."""
        ...

    async def search(
        self,
        *,
        undelivered_only: bool,
        limit: int,
        order_id: OrderId | None = None,
        topic: Topic | None = None,
    ) -> list[OutboxEntry]:
        """For operators: undelivered entries soonest due first, or all entries newest first."""
        ...

    async def backlog(self) -> tuple[int, datetime | None]:
        """How many events some consumer has not acknowledged, and when the oldest happened."""
        ...

    async def replay(
        self, event_id: EventId, *, now: datetime, consumer: str | None = None
    ) -> bool:
        """Make the event due ``now`` for every consumer (or only ``consumer``), its attempts
        counted afresh; False if there is no such event."""
        ...


@dataclass(frozen=True, slots=True)
class PollJob:
    """When to ask the provider next about one open trade, and how often it was asked."""

    payment_id: PaymentId
    order_id: OrderId
    due_at: datetime
    attempts: int


class PollJobs(Protocol):
    async def schedule(
        self, payment_id: PaymentId, order_id: OrderId, *, due_at: datetime, attempts: int
    ) -> None:
        """Create the payment's one poll job, or move it."""
        ...

    async def claim(self, *, now: datetime, until: datetime, limit: int) -> list[PollJob]:
        """Take due jobs, soonest first; each is not due again before ``until`` (a lease).

        Workers claiming at once get disjoint jobs (PostgreSQL: ``FOR UPDATE SKIP LOCKED``);
        one that crashes leaves its jobs due again when the lease ends.
        """
        ...

    async def get(self, payment_id: PaymentId) -> PollJob | None: ...

    async def finish(self, payment_id: PaymentId) -> None:
        """The trade is settled (or past all hope of a payment): no more polls."""
        ...


class InboxRepository(Protocol):
    async def record(self, consumer: str, event_id: EventId, *, now: datetime) -> bool:
        """True the first time ``consumer`` records ``event_id``; False ever after."""
        ...


class NotificationLog(Protocol):
    async def record(
        self,
        channel: str,
        notify_id: str,
        *,
        payment_id: PaymentId,
        now: datetime,
        note: str | None = None,
    ) -> bool:
        """False when this notification (channel, id, payment) was recorded before: a repeat.

        An id a channel already used for *another* payment is not a repeat (True): ids only
        deduplicate deliveries of one trade's news, they never drop another trade's. ``note``
        keeps why an acknowledged notification changed nothing.
        """
        ...

    async def note_of(self, channel: str, notify_id: str) -> str | None: ...

    async def for_payments(self, payment_ids: Sequence[PaymentId]) -> list[ReceivedNotification]:
        """The notifications recorded for these payments, oldest first (for operators)."""
        ...


@dataclass(frozen=True, slots=True)
class ReceivedNotification:
    """A provider notification as kept: first received then, and why it changed nothing."""

    channel: str
    notify_id: str
    payment_id: PaymentId
    received_at: datetime
    note: str | None


class AuditEntity(StrEnum):
    ORDER = "order"
    PAYMENT = "payment"
    REFUND = "refund"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One status change of an order, a payment or a refund: from, to, why, and which request
    or job made it. Written in the transaction that makes the change."""

    order_id: OrderId
    entity: AuditEntity
    entity_id: str
    from_status: str | None  # None: the entity was created
    to_status: str
    why: str
    cause: str
    at: datetime
    id: int | None = None  # given by the store, in the order entries were appended


class AuditTrail(Protocol):
    async def append(self, entry: AuditEntry) -> None: ...

    async def for_order(self, order_id: OrderId) -> list[AuditEntry]:
        """Every entry of the order and of its payments and refunds, by time then id."""
        ...


class IdempotencyState(StrEnum):
    IN_FLIGHT = "in_flight"
    DONE = "done"


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    caller: str
    key: str
    fingerprint: str
    state: IdempotencyState
    locked_until: datetime
    expires_at: datetime
    response_status: int | None = None
    response_body: bytes | None = None
    response_type: str | None = None


class IdempotencyRepository(Protocol):
    async def get(self, caller: str, key: str) -> IdempotencyRecord | None: ...

    async def insert(self, record: IdempotencyRecord) -> bool:
        """True if inserted; False when the (caller, key) pair already exists."""
        ...

    async def take_over(
        self, record: IdempotencyRecord, *, expected_locked_until: datetime
    ) -> bool:
        """Re-claim an abandoned in-flight key (compare-and-set on its lease)."""
        ...

    async def complete(
        self,
        claim: IdempotencyRecord,
        *,
        status: int,
        body: bytes,
        media_type: str,
    ) -> bool:
        """Store the response, if ``claim`` (same lease) still holds the key; True if stored."""
        ...

    async def release(self, claim: IdempotencyRecord) -> None:
        """Give the key back, if ``claim`` (same lease) still holds it."""
        ...

    async def delete(self, caller: str, key: str) -> None:
        """Forget a key whose retention has passed."""
        ...


class FenceRepository(Protocol):
    async def check(self, key: str, token: int) -> None:
        """Record ``token`` as the newest writer of ``key``; FenceRejected if a newer one wrote."""
        ...


class UnitOfWork(Protocol):
    @property
    def orders(self) -> OrderRepository: ...

    @property
    def payments(self) -> PaymentRepository: ...

    @property
    def refunds(self) -> RefundRepository: ...

    @property
    def outbox(self) -> OutboxRepository: ...

    @property
    def inbox(self) -> InboxRepository: ...

    @property
    def polls(self) -> PollJobs: ...

    @property
    def notifications(self) -> NotificationLog: ...

    @property
    def idempotency(self) -> IdempotencyRepository: ...

    @property
    def fences(self) -> FenceRepository: ...

    @property
    def audit(self) -> AuditTrail: ...


class Storage(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[UnitOfWork]:
        """One transaction: committed when the block ends normally, rolled back on an exception."""
        ...

    async def ping(self) -> None:
        """Raise StorageUnavailable unless the store answers."""
        ...

    async def close(self) -> None: ...
