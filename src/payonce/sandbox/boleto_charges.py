"""The boleto PSP's records: charges and refunds, and how each is shown (API, list, wallet)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from payonce.domain.bank_days import SAO_PAULO, last_payable_day
from payonce.sandbox.boleto_codes import Numbers
from payonce.sandbox.channel import TradeListing
from payonce.sandbox.wallet import WalletView

CHANNEL = "boleto"
CURRENCY = "BRL"
API = "/boleto/v1"  # where the PSP's API sits under the sandbox's mount


class ChargeStatus(StrEnum):
    # Issued and not yet confirmed paid. A boleto paid at a bank stays "pending" to the
    # merchant until the bank's clearing confirms it, 1 to 3 business days later.
    PENDING = "pending"
    PAID = "paid"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    EXPIRED = "expired"  # unpaid when its last payable day ended


PAID_STATUSES = frozenset({ChargeStatus.PAID, ChargeStatus.PARTIALLY_REFUNDED})


@dataclass(frozen=True)
class Customer:
    name: str | None = None
    document: str | None = None  # CPF (11 digits) or CNPJ (14)


@dataclass(frozen=True)
class ChargeTerms:
    """What the merchant asked for when it created the charge."""

    account_id: str
    code: str  # the merchant's reference (payonce's out_trade_no)
    amount: int  # centavos
    due_date: date
    description: str
    notification_url: str | None
    customer: Customer | None


@dataclass
class Refund:
    id: str
    code: str  # the merchant's refund id; one refund per code and charge
    amount: int
    created_at: datetime

    def as_json(self, charge_id: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "code": self.code,
            "charge_id": charge_id,
            "amount": self.amount,
            "currency": CURRENCY,
            "status": "succeeded",  # the sandbox gives the money back at once
            "created_at": iso(self.created_at),
        }


@dataclass
class Charge:
    id: str
    terms: ChargeTerms
    nosso_numero: str  # the bank's number for this boleto
    numbers: Numbers
    created_at: datetime
    payable_until: datetime  # the first instant the voucher can no longer be paid
    status: ChargeStatus = ChargeStatus.PENDING
    paid_at_bank: datetime | None = None  # when the shopper paid (unknown to the merchant)
    confirm_at: datetime | None = None  # when the bank's clearing will confirm that payment
    paid_at: datetime | None = None  # the confirmation: the PSP captured the money
    expired_at: datetime | None = None
    captured: int = 0
    refunds: dict[str, Refund] = field(default_factory=dict)

    @property
    def code(self) -> str:
        return self.terms.code

    @property
    def amount(self) -> int:
        return self.terms.amount

    @property
    def refunded(self) -> int:
        return sum(refund.amount for refund in self.refunds.values())


def iso(moment: datetime | None) -> str | None:
    """UTC, second precision, with a ``Z``: how every instant goes on the PSP's wire."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def voucher_url(public_url: str, charge: Charge) -> str:
    """The voucher page's address: public, as a PSP's boleto link is (its id is unguessable)."""
    return f"{public_url}{API}/charges/{charge.id}/voucher"


def charge_json(charge: Charge, voucher: str) -> dict[str, Any]:
    """A charge as the API answers it (and as webhooks carry it in ``data``)."""
    terms = charge.terms
    customer = terms.customer
    return {
        "id": charge.id,
        "code": charge.code,
        "amount": charge.amount,
        "currency": CURRENCY,
        "payment_method": "boleto",
        "status": charge.status.value,
        "description": terms.description,
        "paid_amount": charge.captured,
        "refunded_amount": charge.refunded,
        "created_at": iso(charge.created_at),
        # When the shopper paid at the bank, as the clearing reports it with its confirmation
        # (unknown to the PSP before); ``confirmed_at``: that confirmation, the capture.
        "paid_at": iso(charge.paid_at_bank) if charge.paid_at is not None else None,
        "confirmed_at": iso(charge.paid_at),
        "customer": ({"name": customer.name, "document": customer.document} if customer else None),
        "boleto": {
            "digitable_line": charge.numbers.printed_line,
            "barcode": charge.numbers.barcode,
            "nosso_numero": charge.nosso_numero,
            "due_date": terms.due_date.isoformat(),
            # Past the due date on a weekend or holiday, the next business day still pays.
            "payable_until": iso(charge.payable_until),
            "url": voucher,
        },
        "refunds": [refund.as_json(charge.id) for refund in charge.refunds.values()],
    }


def listing(charge: Charge) -> TradeListing:
    return TradeListing(
        channel=CHANNEL,
        out_trade_no=charge.code,
        trade_no=charge.id,
        status=charge.status.value,
        amount=charge.amount,
        currency=CURRENCY,
        subject=charge.terms.description,
        created_at=charge.created_at,
        paid_at=charge.paid_at,
        closed_at=charge.expired_at,
        captured=charge.captured,
        refunded=charge.refunded,
    )


def _local(moment: datetime) -> str:
    return moment.astimezone(SAO_PAULO).strftime("%Y-%m-%d %H:%M")


def wallet_view(charge: Charge, now: datetime) -> WalletView:
    """What the bank shows when the shopper brings this boleto's line or barcode."""
    payable = (
        charge.status is ChargeStatus.PENDING
        and charge.paid_at_bank is None
        and now < charge.payable_until
    )
    if payable:
        last = last_payable_day(charge.terms.due_date)
        note = f"Due {charge.terms.due_date.isoformat()}; payable through {last.isoformat()}."
    elif charge.paid_at_bank is not None and charge.paid_at is None:
        assert charge.confirm_at is not None
        note = (
            f"Paid at the bank on {_local(charge.paid_at_bank)}; the payment is confirmed "
            f"to the merchant on {_local(charge.confirm_at)} (São Paulo time)."
        )
    elif charge.status in PAID_STATUSES or charge.status is ChargeStatus.REFUNDED:
        note = "Paid."
    else:
        note = "Overdue: this boleto can no longer be paid."
    return WalletView(
        channel=CHANNEL,
        code=charge.numbers.printed_line,
        out_trade_no=charge.code,
        trade_no=charge.id,
        subject=charge.terms.description,
        amount=charge.amount,
        currency=CURRENCY,
        status=charge.status.value,
        pay_deadline=charge.payable_until,
        can_scan=payable,
        can_pay=payable,
        note=note,
    )
