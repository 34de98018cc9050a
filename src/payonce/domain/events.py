"""Domain events: what payments tell the order service and other consumers, through the outbox."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from payonce.domain.ids import EventId, OrderId, PaymentId, new_event_id
from payonce.domain.payment import Payment


class Topic(StrEnum):
    PAYMENT_SUCCEEDED = "payment.succeeded"
    # A capture that did not pay its order (a second channel, a late payment): to be refunded.
    PAYMENT_EXTRA_CAPTURED = "payment.extra_captured"


@dataclass(frozen=True, slots=True)
class Event:
    id: EventId
    topic: Topic
    order_id: OrderId
    payment_id: PaymentId
    payload: dict[str, Any]
    occurred_at: datetime

    @classmethod
    def about(cls, topic: Topic, payment: Payment, now: datetime, **details: Any) -> Event:
        """An event about ``payment``; ``details`` (why a capture is extra) join its payload."""
        return cls(
            id=new_event_id(),
            topic=topic,
            order_id=payment.order_id,
            payment_id=payment.id,
            payload={
                "order_id": payment.order_id,
                "payment_id": payment.id,
                "channel": payment.channel.value,
                "amount": payment.amount.amount,
                "currency": payment.amount.currency,
                "out_trade_no": payment.out_trade_no,
                "provider_trade_no": payment.provider_trade_no,
                **details,
            },
            occurred_at=now,
        )
