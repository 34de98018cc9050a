"""The audit trail's writer: one row per status change, in the transaction that makes it."""

from __future__ import annotations

from datetime import datetime

from payonce.domain.order import Order
from payonce.domain.outcomes import (
    CallUnanswered,
    CloseRequested,
    Outcome,
    RefundRequested,
    TradeCaptured,
    TradeClosed,
    TradeOpened,
    TradeRefused,
    TradeReversed,
    TradeStillOpen,
)
from payonce.domain.payment import Payment, PaymentStatus
from payonce.domain.refund import Refund
from payonce.ports.storage import AuditEntity, AuditEntry, UnitOfWork
from payonce.service.provenance import current_cause

Audited = Order | Payment | Refund


async def moved(
    uow: UnitOfWork, before: Audited | None, after: Audited, *, why: str, now: datetime
) -> None:
    """Append the row of ``before`` becoming ``after`` (``before`` None: it was created).

    A write that leaves the status as it was (a repeated outcome, a touch) appends nothing.
    """
    from_status = before.status.value if before is not None else None
    if from_status == after.status.value:
        return
    match after:
        case Order():
            entity, entity_id, order_id = AuditEntity.ORDER, str(after.id), after.id
        case Payment():
            entity, entity_id, order_id = AuditEntity.PAYMENT, str(after.id), after.order_id
        case Refund():
            entity, entity_id, order_id = AuditEntity.REFUND, after.refund_no, after.order_id
    await uow.audit.append(
        AuditEntry(
            order_id=order_id,
            entity=entity,
            entity_id=entity_id,
            from_status=from_status,
            to_status=after.status.value,
            why=why,
            cause=current_cause(),
            at=now,
        )
    )


def _what(outcome: Outcome) -> str:
    match outcome:
        case TradeOpened():
            return "trade opened at the provider"
        case CallUnanswered(reason=reason):
            return f"no answer: {reason}"
        case TradeRefused(reason=reason):
            return f"refused by the provider: {reason}"
        case CloseRequested():
            return "close requested"
        case RefundRequested():
            return "refund of the extra capture requested"
        case TradeStillOpen():
            return "still open at the provider"
        case TradeClosed():
            return "closed at the provider"
        case TradeCaptured():
            return "paid"
        case TradeReversed():
            return "refunded at the provider"


def why_of(
    outcome: Outcome,
    after: Payment,
    *,
    notification: tuple[str, str] | None = None,
    why: str | None = None,
) -> str:
    """A short phrase for a payment's change: what told us (a notification, a query, a close:
    ``why`` when the caller knows), what it said, and for a capture where its money went."""
    said = why or _what(outcome)
    if notification is not None:
        channel, notify_id = notification
        said = f"notification {channel} {notify_id}: {said}"
    if isinstance(outcome, TradeCaptured) and after.status is PaymentStatus.PAID:
        said += ", applied to the order" if after.applied else ", an extra capture to refund"
    return said
