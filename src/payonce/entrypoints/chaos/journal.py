"""What the shoppers saw: every acknowledged answer and every live message, per order, for the
checks that need the client's side (I4 monotone, I5 idempotent replies, I9 durable acks)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from payonce.entrypoints.chaos.scenario import Behaviour


@dataclass(frozen=True, slots=True)
class Reply:
    """One answer to one request that carried an Idempotency-Key."""

    key: str
    status: int
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class LiveMessage:
    """One message of the order's WebSocket, and when (harness monotonic seconds) it came."""

    at: float
    status: str
    status_version: int


@dataclass
class Visit:
    """One shopper's order, from the shop's answer to the last message the page received."""

    shopper: int
    behaviour: Behaviour
    order_id: str | None = None
    amount: int = 0
    currency: str = ""
    replies: list[Reply] = field(default_factory=list)
    live: list[LiveMessage] = field(default_factory=list)
    # Harness monotonic seconds of the first wallet payment the provider accepted.
    paid_in_wallet_at: float | None = None
    # The payments (ids) payonce acknowledged creating or reusing for this order.
    acknowledged_payments: set[str] = field(default_factory=set)
    # The shopper's own failures (e.g. every instance unreachable): the run is not judged on them.
    errors: list[str] = field(default_factory=list)

    @property
    def notified_at(self) -> float | None:
        """When the page first heard the order was paid."""
        for message in self.live:
            if message.status == "READY_FOR_SHIPMENT":
                return message.at
        return None
