"""The payment record: one provider trade of an order, its status table and its action."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from payonce.domain.channels import Channel, Platform, can_close
from payonce.domain.ids import OrderId, PaymentId, new_out_trade_no, new_payment_id
from payonce.domain.money import Money
from payonce.domain.transitions import TransitionTable


class PaymentStatus(StrEnum):
    UNPAID = "UNPAID"  # recorded; the provider has not been called yet
    PAYING = "PAYING"  # the trade is open at the provider
    UNKNOWN = "UNKNOWN"  # a provider call did not answer; only a query resolves it
    PAID = "PAID"
    FAILED = "FAILED"
    CLOSING = "CLOSING"
    CLOSED = "CLOSED"
    REFUNDING = "REFUNDING"
    REFUNDED = "REFUNDED"


S = PaymentStatus

# Statuses in which money may still move at the provider without us having asked again.
LIVE_STATUSES: frozenset[PaymentStatus] = frozenset({S.UNPAID, S.PAYING, S.UNKNOWN, S.CLOSING})

# A capture is a fact: a closed, failed or unknown trade that the provider says was paid is PAID
# (and refunded if its order is paid by another), never ignored. A trade the provider captured
# and gave back in one step (Alipay's cancel of a paid trade) goes straight to REFUNDED.
PAYMENT_TRANSITIONS: TransitionTable[PaymentStatus] = TransitionTable(
    "payment",
    {
        S.UNPAID: frozenset({S.PAYING, S.UNKNOWN, S.FAILED, S.PAID, S.CLOSING, S.CLOSED}),
        S.PAYING: frozenset({S.PAID, S.CLOSING, S.CLOSED, S.FAILED, S.REFUNDED}),
        S.UNKNOWN: frozenset({S.PAYING, S.PAID, S.CLOSING, S.CLOSED, S.FAILED, S.REFUNDED}),
        S.CLOSING: frozenset({S.CLOSED, S.PAID, S.REFUNDED}),
        S.CLOSED: frozenset({S.PAID, S.REFUNDED}),
        S.FAILED: frozenset({S.PAID}),
        S.PAID: frozenset({S.REFUNDING, S.REFUNDED}),
        S.REFUNDING: frozenset({S.REFUNDED}),
        S.REFUNDED: frozenset(),
    },
)


class ActionType(StrEnum):
    QR_CODE = "qr_code"
    LAUNCH_URL = "launch_url"
    APP_ORDER = "app_order"
    REDIRECT_URL = "redirect_url"
    VOUCHER = "voucher"


@dataclass(frozen=True, slots=True)
class Action:
    """What the shopper does next to pay: scan a QR, open a wallet, follow a redirect, ..."""

    type: ActionType
    fields: dict[str, str] = field(default_factory=dict)
    expires_at: datetime | None = None

    def is_valid_at(self, when: datetime) -> bool:
        return self.expires_at is None or when < self.expires_at

    def to_json(self) -> str:
        return json.dumps(
            {
                "type": self.type.value,
                "fields": self.fields,
                "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> Action:
        data: dict[str, Any] = json.loads(text)
        expires = data.get("expires_at")
        return cls(
            type=ActionType(data["type"]),
            fields=dict(data.get("fields") or {}),
            expires_at=datetime.fromisoformat(expires) if expires else None,
        )


@dataclass(frozen=True, slots=True)
class Payment:
    """One provider trade. ``applied`` marks the one payment that paid its order (at most one)."""

    id: PaymentId
    order_id: OrderId
    number: int  # 1, 2, ... within its order; 0 until the intent is stored
    channel: Channel
    platform: Platform
    amount: Money
    out_trade_no: str
    status: PaymentStatus
    version: int
    closable: bool
    applied: bool
    action: Action | None
    provider_trade_no: str | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    # When the provider took the money (its own word, else when payonce learnt it).
    paid_at: datetime | None = None

    @classmethod
    def open_intent(
        cls,
        *,
        order_id: OrderId,
        channel: Channel,
        platform: Platform,
        amount: Money,
        now: datetime,
    ) -> Payment:
        """The record written (and committed) before the provider is called."""
        return cls(
            id=new_payment_id(),
            order_id=order_id,
            number=0,
            channel=channel,
            platform=platform,
            amount=amount,
            out_trade_no=new_out_trade_no(),
            status=S.UNPAID,
            version=1,
            closable=can_close(channel),
            applied=False,
            action=None,
            provider_trade_no=None,
            last_error=None,
            created_at=now,
            updated_at=now,
        )

    @property
    def is_live(self) -> bool:
        return self.status in LIVE_STATUSES

    def moved_to(self, target: PaymentStatus, *, now: datetime, **changes: Any) -> Payment:
        """This payment in ``target`` status with ``changes``; itself when nothing would change."""
        noop = PAYMENT_TRANSITIONS.is_noop(self.status, target)
        changed = {k: v for k, v in changes.items() if getattr(self, k) != v}
        if noop and not changed:
            return self
        return replace(self, status=target, version=self.version + 1, updated_at=now, **changed)

    def reusable_for(
        self,
        *,
        channel: Channel,
        platform: Platform,
        amount: Money,
        now: datetime,
        margin: timedelta,
    ) -> bool:
        """Whether a repeated apply may be answered with this open trade (the same QR or link).

        A trade that cannot be closed (a Boleto voucher) serves every platform: the same voucher
        is shown on a phone and a desktop, since a second one could be paid as well.
        """
        return (
            self.status is S.PAYING
            and self.channel is channel
            and (self.platform is platform or not self.closable)
            and self.amount == amount
            and self.action is not None
            and self.action.is_valid_at(now + margin)
        )
