"""The shopper push port: one message to a shopper's phone about their order, sent at least once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from payonce.domain.ids import EventId, OrderId
from payonce.domain.order import OrderStatus

PushKind = Literal["payment_succeeded", "payment_refunding"]


@dataclass(frozen=True, slots=True)
class PushMessage:
    """What a shopper is told, and the order state it was read from."""

    # The outbox event's id: the same on every retry, so a gateway deduplicates on it.
    id: EventId
    customer_id: str
    order_id: OrderId
    kind: PushKind
    title: str
    body: str  # short human text, shown as is
    status: OrderStatus
    # The order's status_version when the message was made: a newer one supersedes it.
    status_version: int
    occurred_at: datetime


class ShopperPush(Protocol):
    async def send(self, message: PushMessage) -> None:
        """Hand ``message`` over for delivery; raise unless it was accepted.

        Raising is how the outbox learns to send it again (with backoff, same id); a send that
        returns counts as delivered and is not repeated.
        """
        ...
