"""The order: what the shopper owes, its status (UNPAID -> READY_FOR_SHIPMENT | CLOSED), expiry."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from payonce.domain.ids import OrderId, PaymentId, new_client_secret, new_order_id
from payonce.domain.money import Money
from payonce.domain.transitions import TransitionTable


class OrderStatus(StrEnum):
    UNPAID = "UNPAID"
    READY_FOR_SHIPMENT = "READY_FOR_SHIPMENT"
    CLOSED = "CLOSED"


ORDER_TRANSITIONS: TransitionTable[OrderStatus] = TransitionTable(
    "order",
    {
        OrderStatus.UNPAID: frozenset({OrderStatus.READY_FOR_SHIPMENT, OrderStatus.CLOSED}),
        OrderStatus.READY_FOR_SHIPMENT: frozenset(),
        # Only when the late-capture policy reopens orders: a capture after the order closed
        # pays it after all. A paid order never goes back.
        OrderStatus.CLOSED: frozenset({OrderStatus.READY_FOR_SHIPMENT}),
    },
)

DEFAULT_ORDER_TTL = timedelta(minutes=30)


@dataclass(frozen=True, slots=True)
class OrderLine:
    sku: str
    name: str
    quantity: int
    unit_amount: int

    @property
    def line_amount(self) -> int:
        return self.quantity * self.unit_amount


@dataclass(frozen=True, slots=True)
class Order:
    """An order as payonce holds it.

    ``version`` increases on every change to the order *or to any of its payments*: the order is
    the aggregate every payment write goes through (a compare-and-set on this number), and it is
    the ``status_version`` clients use to ignore stale news.
    """

    id: OrderId
    customer_id: str
    total: Money
    lines: tuple[OrderLine, ...]
    status: OrderStatus
    version: int
    expires_at: datetime
    client_secret: str
    paid_payment_id: PaymentId | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def create(
        cls,
        *,
        customer_id: str,
        currency: str,
        lines: tuple[OrderLine, ...],
        now: datetime,
        ttl: timedelta = DEFAULT_ORDER_TTL,
    ) -> Order:
        """A new UNPAID order; its amount is computed here from the lines, never taken as given."""
        order_id = new_order_id()
        total = Money(sum(line.line_amount for line in lines), currency)
        return cls(
            id=order_id,
            customer_id=customer_id,
            total=total,
            lines=lines,
            status=OrderStatus.UNPAID,
            version=1,
            expires_at=now + ttl,
            client_secret=new_client_secret(order_id),
            paid_payment_id=None,
            created_at=now,
            updated_at=now,
        )

    def is_expired(self, now: datetime) -> bool:
        return now >= self.expires_at

    def touched(self, now: datetime) -> Order:
        """The same order one version on: one of its payments changed."""
        return replace(self, version=self.version + 1, updated_at=now)

    def moved_to(
        self, target: OrderStatus, *, now: datetime, paid_payment_id: PaymentId | None = None
    ) -> Order:
        """This order in ``target`` status; itself unchanged when it is already there."""
        if ORDER_TRANSITIONS.is_noop(self.status, target):
            return self
        return replace(
            self,
            status=target,
            paid_payment_id=paid_payment_id or self.paid_payment_id,
            version=self.version + 1,
            updated_at=now,
        )
