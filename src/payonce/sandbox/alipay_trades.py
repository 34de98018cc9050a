"""Alipay's records: merchant orders (pending QR codes), the trades opened from them, snapshots."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from payonce.sandbox.channel import TradeListing
from payonce.sandbox.wallet import NOT_SCANNED, WalletView

# What GET /trades lists for an Alipay trade.
TradeSnapshot = TradeListing

CHANNEL = "alipay"
CURRENCY = "CNY"
QR_VALIDITY = timedelta(hours=2)
BUYER_ID = "2088102177846880"
BUYER_LOGON_ID = "sho***@sandbox.com"


class TradeStatus(StrEnum):
    WAIT_BUYER_PAY = "WAIT_BUYER_PAY"
    TRADE_SUCCESS = "TRADE_SUCCESS"
    TRADE_CLOSED = "TRADE_CLOSED"
    TRADE_FINISHED = "TRADE_FINISHED"


PAID = frozenset({TradeStatus.TRADE_SUCCESS, TradeStatus.TRADE_FINISHED})


@dataclass(frozen=True)
class OrderTerms:
    """What a merchant asked for: from precreate, or from a signed wap/app pay string."""

    app_id: str
    out_trade_no: str
    amount: int
    subject: str
    notify_url: str | None
    product_code: str
    # Absolute pay deadline from time_expire / timeout_express, if the merchant gave one.
    deadline: datetime | None
    # Where the wallet sends the shopper's browser after a wap payment (signed by Alipay).
    return_url: str | None = None


@dataclass
class Refund:
    out_request_no: str
    amount: int
    at: datetime


@dataclass
class Trade:
    """A trade as Alipay holds it: it exists from the shopper's scan on."""

    trade_no: str
    created_at: datetime
    status: TradeStatus = TradeStatus.WAIT_BUYER_PAY
    paid_at: datetime | None = None
    closed_at: datetime | None = None
    close_reason: str | None = None  # "timeout" | "closed" | "cancelled" | "refunded"
    captured: int = 0
    refunds: dict[str, Refund] = field(default_factory=dict)

    @property
    def refunded(self) -> int:
        return sum(refund.amount for refund in self.refunds.values())


@dataclass
class Order:
    """A merchant's out_trade_no at Alipay: a pending code until scanned, then with its trade."""

    terms: OrderTerms
    token: str
    created_at: datetime
    qr_expires_at: datetime
    pay_deadline: datetime
    blocked: bool = False  # cancelled before any scan: never payable
    trade: Trade | None = None

    @property
    def out_trade_no(self) -> str:
        return self.terms.out_trade_no


@dataclass(frozen=True)
class OrderSnapshot:
    """A merchant order as Alipay holds it, scanned or not (the pending QR codes included)."""

    channel: str
    out_trade_no: str
    code: str
    amount: int
    currency: str
    subject: str
    product_code: str
    notify_url: str | None
    created_at: datetime
    qr_expires_at: datetime
    pay_deadline: datetime
    blocked: bool
    trade_no: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "out_trade_no": self.out_trade_no,
            "code": self.code,
            "amount": self.amount,
            "currency": self.currency,
            "subject": self.subject,
            "product_code": self.product_code,
            "notify_url": self.notify_url,
            "created_at": self.created_at.isoformat(),
            "qr_expires_at": self.qr_expires_at.isoformat(),
            "pay_deadline": self.pay_deadline.isoformat(),
            "blocked": self.blocked,
            "trade_no": self.trade_no,
        }


def notify_id(trade: Trade, sequence: int) -> str:
    """A fresh, stable id for one notified status change of one trade."""
    digest = hashlib.sha256(f"{trade.trade_no}|{trade.status}|{sequence}".encode())
    return digest.hexdigest()[:34]


def wallet_view(order: Order, code: str, now: datetime) -> WalletView:
    """What the shopper's wallet shows for this order at ``now``."""
    trade = order.trade
    note = None
    if trade is None:
        status = NOT_SCANNED
        open_ = not order.blocked and now < order.qr_expires_at
        if order.blocked:
            note = "The merchant cancelled this order."
        elif not open_:
            note = "This code has expired."
        can_scan = can_pay = open_
    else:
        status = trade.status.value
        can_scan = False
        can_pay = trade.status is TradeStatus.WAIT_BUYER_PAY and now < order.pay_deadline
        if trade.status in PAID:
            note = "Paid."
    return WalletView(
        channel=CHANNEL,
        code=code,
        out_trade_no=order.out_trade_no,
        trade_no=trade.trade_no if trade else None,
        subject=order.terms.subject,
        amount=order.terms.amount,
        currency=CURRENCY,
        status=status,
        pay_deadline=order.pay_deadline,
        can_scan=can_scan,
        can_pay=can_pay,
        note=note,
    )
