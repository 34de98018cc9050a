"""An order's history for operators: its audit trail, payments, refunds, notifications and events,
merged in time order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from payonce.domain.ids import OrderId
from payonce.domain.order import Order
from payonce.domain.payment import Payment
from payonce.domain.refund import Refund
from payonce.errors import OrderNotFound
from payonce.ports.storage import AuditEntry, OutboxEntry, ReceivedNotification, Storage

# More events than any one order makes (a few per payment); the rest would be a runaway.
EVENT_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class Moment:
    """One line of the timeline: when, what it is about, what happened, why, and who did it."""

    at: datetime
    kind: str  # "order", "payment", "refund" (a status change), "notification", "event", "delivery"
    subject: str  # the entity's id, the notification's id, the event's id
    what: str  # "UNPAID → PAID", "payment.succeeded", "delivered to orders"
    why: str = ""
    cause: str = ""


@dataclass(frozen=True, slots=True)
class Timeline:
    order: Order
    payments: list[Payment]  # oldest first
    refunds: list[Refund]
    audit: list[AuditEntry]
    notifications: list[ReceivedNotification]
    events: list[OutboxEntry]  # oldest first

    def moments(self) -> list[Moment]:
        """Everything that happened to the order, oldest first. At one instant, a notification
        comes before the changes it made, and events after them."""
        lines: list[tuple[datetime, int, int, Moment]] = []
        for n, note in enumerate(self.notifications):
            what = f"{note.channel} notification about {note.payment_id}"
            moment = Moment(note.received_at, "notification", note.notify_id, what, note.note or "")
            lines.append((note.received_at, 0, n, moment))
        for n, entry in enumerate(self.audit):
            change = f"{entry.from_status or '∅'} → {entry.to_status}"
            moment = Moment(
                entry.at, entry.entity.value, entry.entity_id, change, entry.why, entry.cause
            )
            lines.append((entry.at, 1, n, moment))
        for n, outbox in enumerate(self.events):
            event = outbox.event
            what = f"{event.topic.value} about {event.payment_id}"
            lines.append(
                (event.occurred_at, 2, 2 * n, Moment(event.occurred_at, "event", event.id, what))
            )
            for state in outbox.consumers:
                tries = f"{state.attempts} attempt{'s' if state.attempts != 1 else ''}"
                if state.delivered_at is not None:
                    what = f"delivered to {state.consumer} ({tries})"
                    at = state.delivered_at
                else:
                    what = f"not yet delivered to {state.consumer} ({tries})"
                    at = state.last_attempt_at
                moment = Moment(at, "delivery", event.id, what, state.last_error or "")
                lines.append((at, 2, 2 * n + 1, moment))
        return [moment for *_, moment in sorted(lines, key=lambda line: line[:3])]


async def order_timeline(storage: Storage, order_id: OrderId) -> Timeline:
    """Read everything kept about one order, in one transaction; OrderNotFound if none."""
    async with storage.transaction() as uow:
        order = await uow.orders.get(order_id)
        if order is None:
            raise OrderNotFound()
        payments = await uow.payments.for_order(order_id)
        refunds = await uow.refunds.for_order(order_id)
        audit = await uow.audit.for_order(order_id)
        notifications = await uow.notifications.for_payments([p.id for p in payments])
        events = await uow.outbox.search(
            undelivered_only=False, limit=EVENT_LIMIT, order_id=order_id
        )
    return Timeline(
        order=order,
        payments=payments[::-1],
        refunds=refunds,
        audit=audit,
        notifications=notifications,
        events=events[::-1],
    )
