"""PayPal's records: orders as merchants create them, their capture and refunds, and ids."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

CHANNEL = "paypal"
# The buyer's approval is possible for this long after the order is created; an order not
# captured by then is void (it can be neither approved nor captured).
APPROVAL_WINDOW = timedelta(hours=3)
# How long PayPal remembers a create's PayPal-Request-Id (its documented default; an account
# manager can raise it to 72 h). A replay within it answers the same order; after it, the same id
# is a new request.
CREATE_REQUEST_ID_RETENTION = timedelta(hours=6)
# The sandbox's one buyer account.
BUYER_PAYER_ID = "QYR5Z8XDVJNXQ"
BUYER_EMAIL = "sb-buyer@personal.example.com"
FOREIGN_MERCHANT_ID = "ZZZZZZZZZZZZZ"  # a payee that is not the addressee (forgeries)
_ID_ALPHABET = "0123456789ABCDEFGHJKLMNPRSTUVWXY"  # PayPal-like ids: upper case and digits


class OrderStatus(StrEnum):
    CREATED = "CREATED"  # created with application_context: the buyer approves at rel "approve"
    PAYER_ACTION_REQUIRED = "PAYER_ACTION_REQUIRED"  # payment_source.paypal: rel "payer-action"
    APPROVED = "APPROVED"
    COMPLETED = "COMPLETED"
    VOIDED = "VOIDED"  # the sandbox's word for an order whose approval window passed


APPROVABLE = frozenset({OrderStatus.CREATED, OrderStatus.PAYER_ACTION_REQUIRED})


class CaptureStatus(StrEnum):
    COMPLETED = "COMPLETED"
    PARTIALLY_REFUNDED = "PARTIALLY_REFUNDED"
    REFUNDED = "REFUNDED"


@dataclass(frozen=True)
class OrderTerms:
    """What the merchant asked for in ``POST /v2/checkout/orders``."""

    merchant_id: str
    client_id: str
    request_id: str | None
    reference_id: str
    custom_id: str | None
    invoice_id: str | None
    description: str
    amount: int  # minor units
    currency: str
    return_url: str | None
    cancel_url: str | None
    # Which request style the merchant used: it decides the first status and the link's rel.
    payment_source: bool

    @property
    def out_trade_no(self) -> str:
        """The merchant's own number for the order (payonce sends it in all three fields)."""
        return self.invoice_id or self.custom_id or self.reference_id


@dataclass
class Refund:
    id: str
    request_id: str
    capture_id: str
    amount: int
    currency: str
    at: datetime
    # What the merchant named the refund in its request (shown in reports), if anything.
    custom_id: str | None = None
    invoice_id: str | None = None


@dataclass
class Capture:
    id: str
    request_id: str | None
    amount: int
    currency: str
    at: datetime
    refunds: dict[str, Refund] = field(default_factory=dict)  # by PayPal-Request-Id

    @property
    def refunded(self) -> int:
        return sum(refund.amount for refund in self.refunds.values())

    @property
    def status(self) -> CaptureStatus:
        if self.refunded == 0:
            return CaptureStatus.COMPLETED
        if self.refunded >= self.amount:
            return CaptureStatus.REFUNDED
        return CaptureStatus.PARTIALLY_REFUNDED


@dataclass
class Order:
    id: str
    terms: OrderTerms
    created_at: datetime
    expires_at: datetime
    status: OrderStatus
    opened_at: datetime | None = None  # the buyer opened the approval page
    approved_at: datetime | None = None
    voided_at: datetime | None = None
    capture: Capture | None = None

    @property
    def out_trade_no(self) -> str:
        return self.terms.out_trade_no

    @property
    def link_rel(self) -> str:
        return "payer-action" if self.terms.payment_source else "approve"


def paypal_id(kind: str, epoch: int, sequence: int) -> str:
    """A 17-character id like PayPal's (``5O190127TN364715T``), unique per kind and instance.

    Deterministic, so a replay under the same seed and start time shows the same ids.
    """
    digest = hashlib.sha256(f"{kind}|{epoch}|{sequence}".encode()).digest()
    return "".join(_ID_ALPHABET[byte % len(_ID_ALPHABET)] for byte in digest[:17])
