"""A refund payonce asked a provider for: one per captured payment that did not pay its order."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from payonce.domain.ids import OrderId, PaymentId
from payonce.domain.money import Money
from payonce.domain.payment import Payment


class RefundReason(StrEnum):
    # A second capture of an order another payment already paid (two channels, a lost close race).
    DUPLICATE = "duplicate"
    # A capture that came after its order closed (expired or cancelled).
    LATE = "late"


class RefundStatus(StrEnum):
    REQUESTED = "REQUESTED"  # recorded; asked (or about to ask) the provider, not yet confirmed
    SUCCEEDED = "SUCCEEDED"  # the provider says the money went back


@dataclass(frozen=True, slots=True)
class Refund:
    """``refund_no`` is derived from the payment, so every attempt, by any process, asks the
    provider for the same refund: providers refund a given request number at most once."""

    refund_no: str
    payment_id: PaymentId
    order_id: OrderId
    amount: Money
    reason: RefundReason
    status: RefundStatus
    requested_at: datetime
    completed_at: datetime | None = None

    @classmethod
    def of_extra_capture(cls, payment: Payment, reason: RefundReason, now: datetime) -> Refund:
        return cls(
            refund_no=refund_no_for(payment),
            payment_id=payment.id,
            order_id=payment.order_id,
            amount=payment.amount,
            reason=reason,
            status=RefundStatus.REQUESTED,
            requested_at=now,
        )

    def succeeded(self, now: datetime) -> Refund:
        if self.status is RefundStatus.SUCCEEDED:
            return self
        return replace(self, status=RefundStatus.SUCCEEDED, completed_at=now)


def refund_no_for(payment: Payment) -> str:
    """The one refund request number of a payment's full refund (fits every channel's limit)."""
    return f"{payment.out_trade_no}R1"
