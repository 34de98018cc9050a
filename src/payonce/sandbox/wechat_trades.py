"""WeChat Pay's records: trades (they exist from the merchant's create), refunds, JSON forms."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from payonce.sandbox.wallet import WalletView
from payonce.sandbox.wechat_wire import china_time

CHANNEL = "wechat"
CURRENCY = "CNY"
# A code_url and an app's prepay_id are valid for two hours, an h5_url for five minutes.
CODE_VALIDITY = timedelta(hours=2)
H5_VALIDITY = timedelta(minutes=5)
# WeChat refuses to close an order in its first five minutes.
CLOSE_MIN_AGE = timedelta(minutes=5)
OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"


class TradeState(StrEnum):
    SUCCESS = "SUCCESS"
    REFUND = "REFUND"
    NOTPAY = "NOTPAY"
    CLOSED = "CLOSED"
    USERPAYING = "USERPAYING"
    PAYERROR = "PAYERROR"


PAID = frozenset({TradeState.SUCCESS, TradeState.REFUND})
PAYABLE = frozenset({TradeState.NOTPAY, TradeState.USERPAYING})
STATE_DESC = {
    TradeState.SUCCESS: "支付成功",
    TradeState.REFUND: "转入退款",
    TradeState.NOTPAY: "订单未支付",
    TradeState.CLOSED: "已关闭",
    TradeState.USERPAYING: "用户支付中",
    TradeState.PAYERROR: "支付失败",
}
# The create endpoint's last path segment, and the trade_type it answers in queries.
TRADE_TYPES = {"native": "NATIVE", "h5": "MWEB", "app": "APP"}


@dataclass(frozen=True)
class OrderTerms:
    """What the merchant asked for in its create call."""

    mchid: str
    appid: str
    out_trade_no: str
    trade_type: str
    description: str
    total: int
    currency: str
    notify_url: str
    time_expire: datetime | None
    attach: str
    # H5 only: the shopper's IP the merchant named (not part of the terms a repeat must match).
    payer_client_ip: str | None = field(default=None, compare=False)

    def same_order(self, other: OrderTerms) -> bool:
        """A repeated create of the same order (WeChat answers it with the same code)."""
        return (
            self.appid,
            self.trade_type,
            self.description,
            self.total,
            self.currency,
        ) == (other.appid, other.trade_type, other.description, other.total, other.currency)


@dataclass
class Refund:
    out_refund_no: str
    refund_id: str
    amount: int
    at: datetime


@dataclass
class Trade:
    """A merchant's out_trade_no at WeChat Pay, from its create call on."""

    terms: OrderTerms
    token: str  # the code_url's ``pr``
    prepay_id: str
    created_at: datetime
    pay_deadline: datetime
    code_expires_at: datetime  # of the code_url and the prepay_id
    # Every h5_url handed out for the trade (each create answers a fresh one): package -> expiry.
    h5_links: dict[str, datetime] = field(default_factory=dict)
    state: TradeState = TradeState.NOTPAY
    transaction_id: str | None = None
    scanned_at: datetime | None = None
    paid_at: datetime | None = None
    closed_at: datetime | None = None
    close_reason: str | None = None  # "closed" | "timeout"
    captured: int = 0
    refunds: dict[str, Refund] = field(default_factory=dict)

    @property
    def out_trade_no(self) -> str:
        return self.terms.out_trade_no

    @property
    def refunded(self) -> int:
        return sum(refund.amount for refund in self.refunds.values())

    def state_at(self, now: datetime) -> TradeState:
        """The state as the next locked operation would record it (a read changes nothing)."""
        if self.state in PAYABLE and now >= self.pay_deadline:
            return TradeState.CLOSED
        return self.state


def transaction_json(trade: Trade, now: datetime) -> dict[str, Any]:
    """The transaction as a query answers it (and as a payment notification's resource)."""
    terms = trade.terms
    state = trade.state_at(now)
    data: dict[str, Any] = {
        "appid": terms.appid,
        "mchid": terms.mchid,
        "out_trade_no": terms.out_trade_no,
        "trade_state": state.value,
        "trade_state_desc": STATE_DESC[state],
        "amount": {"total": terms.total, "currency": terms.currency},
    }
    if terms.attach:
        data["attach"] = terms.attach
    if trade.transaction_id is not None and trade.paid_at is not None:
        data |= {
            "transaction_id": trade.transaction_id,
            "trade_type": terms.trade_type,
            "bank_type": "OTHERS",
            "success_time": china_time(trade.paid_at),
            "payer": {"openid": OPENID},
        }
        data["amount"] |= {"payer_total": trade.captured, "payer_currency": terms.currency}
    return data


def refund_json(trade: Trade, refund: Refund) -> dict[str, Any]:
    """A refund as the refund and refund-query endpoints answer it (completed at once here)."""
    return {
        "refund_id": refund.refund_id,
        "out_refund_no": refund.out_refund_no,
        "transaction_id": trade.transaction_id or "",
        "out_trade_no": trade.out_trade_no,
        "channel": "ORIGINAL",
        "user_received_account": "支付用户零钱",
        "success_time": china_time(refund.at),
        "create_time": china_time(refund.at),
        "status": "SUCCESS",
        "funds_account": "AVAILABLE",
        "amount": {
            "total": trade.terms.total,
            "refund": refund.amount,
            "payer_total": trade.captured,
            "payer_refund": refund.amount,
            "settlement_total": trade.captured,
            "settlement_refund": refund.amount,
            "discount_refund": 0,
            "currency": trade.terms.currency,
        },
    }


def wallet_view(trade: Trade, code: str, now: datetime, code_expires_at: datetime) -> WalletView:
    """What the shopper's wallet shows for this trade, opened with a code valid until then."""
    state = trade.state_at(now)
    payable = state in PAYABLE and now < code_expires_at
    note = None
    if state in PAID:
        note = "Paid."
    elif state is TradeState.PAYERROR:
        note = "The payment failed."
    elif state is TradeState.CLOSED:
        note = "This order is closed."
    elif not payable:
        note = "This code has expired."
    return WalletView(
        channel=CHANNEL,
        code=code,
        out_trade_no=trade.out_trade_no,
        trade_no=trade.transaction_id,
        subject=trade.terms.description,
        amount=trade.terms.total,
        currency=trade.terms.currency,
        status=state.value,
        pay_deadline=trade.pay_deadline,
        can_scan=payable,
        can_pay=payable,
        note=note,
    )
