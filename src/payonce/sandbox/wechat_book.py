"""The WeChat Pay channel's book: every trade and refund, each state change and money movement."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable
from datetime import datetime

from payonce.ports.clock import Clock
from payonce.sandbox.channel import TradeListing
from payonce.sandbox.faults import Lateness, on_time
from payonce.sandbox.ledger import Ledger, Movement
from payonce.sandbox.problems import Problem
from payonce.sandbox.wechat_trades import (
    CHANNEL,
    CLOSE_MIN_AGE,
    CODE_VALIDITY,
    H5_VALIDITY,
    PAID,
    PAYABLE,
    OrderTerms,
    Refund,
    Trade,
    TradeState,
)
from payonce.sandbox.wechat_wire import CHINA_TZ, WechatError

# Called when a trade is paid: WeChat notifies successful payments only.
PaidListener = Callable[[Trade], None]
# The code a merchant reads when WeChat refuses to close a trade younger than five minutes.
CLOSE_TOO_SOON = "CLOSE_TOO_SOON"


def order_not_exist() -> WechatError:
    return WechatError(404, "ORDER_NOT_EXIST", "订单不存在 (no such order)")


class WechatBook:
    """All trades and refunds of the channel. Callers hold the sandbox's state lock."""

    def __init__(
        self,
        *,
        clock: Clock,
        ledger: Ledger,
        on_paid: PaidListener,
        late: Lateness = on_time,
    ) -> None:
        self._clock = clock
        self._late = late
        self._ledger = ledger
        self._on_paid = on_paid
        self._trades: dict[str, Trade] = {}
        self._by_token: dict[str, Trade] = {}
        self._by_prepay: dict[str, Trade] = {}
        self._by_transaction: dict[str, Trade] = {}
        # Refund numbers are unique per merchant, not per trade.
        self._refunds: dict[str, tuple[Trade, Refund]] = {}
        self._seq = itertools.count(1)
        # Numbers stay unique across restarts of the sandbox (its state lives in memory): each
        # instance numbers under the instant it started.
        self._epoch = int(clock.now().timestamp()) % 10**7
        # Trades waiting for payment: the only ones a deadline can close.
        self._waiting: dict[str, Trade] = {}

    def provider_now(self) -> datetime:
        """WeChat's own clock, for its deadlines: behind ours by the ``pay_late_by_s`` fault."""
        return self._clock.now() - self._late()

    def known(self, out_trade_no: str) -> Trade | None:
        """The trade of this number, as it is (a read: no deadline is applied)."""
        return self._trades.get(out_trade_no)

    # -- merchant side ---------------------------------------------------------------------

    def create(self, terms: OrderTerms) -> Trade:
        """A new trade for these terms; the same terms again answer the same trade."""
        self.expire_due()
        now = self._clock.now()
        existing = self._trades.get(terms.out_trade_no)
        if existing is not None:
            if existing.state in PAID:
                raise WechatError(400, "ORDERPAID", "该订单已支付 (the order is paid)")
            if existing.state is TradeState.CLOSED:
                raise WechatError(400, "ORDER_CLOSED", "订单已关闭 (the order is closed)")
            if not existing.terms.same_order(terms):
                raise WechatError(
                    400,
                    "INVALID_REQUEST",
                    "201 商户订单号重复 (out_trade_no used with other terms)",
                )
            return existing
        if terms.time_expire is not None and terms.time_expire <= now:
            raise WechatError(400, "PARAM_ERROR", "time_expire 已过期 (time_expire has passed)")
        deadline = terms.time_expire or now + CODE_VALIDITY
        sequence = next(self._seq)
        digest = hashlib.sha256(f"{self._epoch}|{sequence}|{terms.out_trade_no}".encode())
        trade = Trade(
            terms=terms,
            token=digest.hexdigest()[:20],
            prepay_id=f"wx{now.astimezone(CHINA_TZ):%Y%m%d%H%M%S}{digest.hexdigest()[20:40]}",
            created_at=now,
            pay_deadline=deadline,
            code_expires_at=min(deadline, now + CODE_VALIDITY),
        )
        self._trades[terms.out_trade_no] = trade
        self._by_token[trade.token] = trade
        self._by_prepay[trade.prepay_id] = trade
        self._waiting[terms.out_trade_no] = trade
        return trade

    def issue_h5_link(self, trade: Trade) -> str:
        """A fresh h5_url ``package`` for the trade, valid for five minutes."""
        package = f"{next(self._seq):010d}"
        trade.h5_links[package] = min(trade.pay_deadline, self._clock.now() + H5_VALIDITY)
        return package

    def find(self, out_trade_no: str) -> Trade | None:
        self.expire_due()
        return self._trades.get(out_trade_no)

    def existing(self, out_trade_no: str) -> Trade:
        trade = self.find(out_trade_no)
        if trade is None:
            raise order_not_exist()
        return trade

    def by_transaction_id(self, transaction_id: str) -> Trade:
        self.expire_due()
        trade = self._by_transaction.get(transaction_id)
        if trade is None:
            raise order_not_exist()
        return trade

    def by_token(self, token: str) -> Trade | None:
        return self._by_token.get(token)

    def by_prepay_id(self, prepay_id: str) -> Trade | None:
        return self._by_prepay.get(prepay_id)

    def close(self, trade: Trade) -> None:
        """Close an unpaid trade; a paid one answers ORDERPAID, a young one CLOSE_TOO_SOON."""
        self.expire_due()
        now = self._clock.now()
        if trade.state in PAID:
            raise WechatError(400, "ORDERPAID", "该订单已支付 (the order is paid)")
        if trade.state is TradeState.CLOSED:
            return  # closing twice is closing once
        if now - trade.created_at < CLOSE_MIN_AGE:
            raise WechatError(
                400,
                CLOSE_TOO_SOON,
                "订单生成后不能马上调用关单接口, 最短调用时间间隔为5分钟 "
                "(an order cannot be closed within 5 minutes of its creation)",
            )
        self._close(trade, now, "closed")

    def refund(
        self, trade: Trade, out_refund_no: str, amount: int, total: int
    ) -> tuple[Refund, bool]:
        """Refund once per refund number; answers the refund and whether money moved now."""
        previous = self._refunds.get(out_refund_no)
        if previous is not None:
            earlier_trade, earlier = previous
            if earlier_trade is not trade or earlier.amount != amount:
                raise WechatError(
                    400, "INVALID_REQUEST", "退款单号已使用 (out_refund_no used with other terms)"
                )
            return earlier, False
        if trade.state not in PAID:
            raise WechatError(400, "INVALID_REQUEST", "订单未支付 (the trade is not paid)")
        if total != trade.terms.total:
            raise WechatError(
                400, "PARAM_ERROR", "订单金额不一致 (amount.total differs from the order)"
            )
        if trade.refunded + amount > trade.captured:
            raise WechatError(
                400, "INVALID_REQUEST", "退款金额超过可退金额 (refunds would exceed the payment)"
            )
        now = self._clock.now()
        refund = Refund(
            out_refund_no=out_refund_no,
            refund_id=f"50300{self._epoch:07d}{now.astimezone(CHINA_TZ):%Y%m%d}"
            f"{next(self._seq):08d}",
            amount=amount,
            at=now,
        )
        trade.refunds[out_refund_no] = refund
        self._refunds[out_refund_no] = (trade, refund)
        trade.state = TradeState.REFUND
        self._record(trade, "refund", amount, out_refund_no, now)
        return refund, True

    def refund_of(self, out_refund_no: str) -> tuple[Trade, Refund] | None:
        return self._refunds.get(out_refund_no)

    # -- shopper side ----------------------------------------------------------------------

    def scan(self, trade: Trade) -> None:
        """The shopper opens the trade in the wallet; WeChat still says NOTPAY until paid."""
        self.expire_due()
        if trade.state in PAID:
            raise Problem(409, "trade_already_paid", "Already paid", "this trade is paid")
        if trade.state is TradeState.PAYERROR:
            raise Problem(409, "payment_failed", "Payment failed", "this trade's payment failed")
        if trade.state is TradeState.CLOSED:
            if trade.close_reason == "timeout":
                raise Problem(409, "pay_deadline_passed", "Too late", "the deadline has passed")
            raise Problem(409, "trade_closed", "Trade closed", "the merchant closed this trade")
        if trade.scanned_at is None:
            trade.scanned_at = self._clock.now()

    def pay(self, trade: Trade) -> None:
        """The shopper pays: money is captured and the TRANSACTION.SUCCESS notice goes out."""
        self.scan(trade)
        now = self._clock.now()
        trade.state = TradeState.SUCCESS
        self._waiting.pop(trade.out_trade_no, None)
        trade.paid_at = now
        trade.captured = trade.terms.total
        trade.transaction_id = (
            f"42000{self._epoch:07d}{now.astimezone(CHINA_TZ):%Y%m%d}{next(self._seq):08d}"
        )
        self._by_transaction[trade.transaction_id] = trade
        self._record(trade, "capture", trade.captured, trade.transaction_id, now)
        self._on_paid(trade)

    def decline(self, trade: Trade) -> None:
        """The shopper's bank refuses the payment: PAYERROR, and no notification (success only)."""
        self.scan(trade)
        trade.state = TradeState.PAYERROR
        self._waiting.pop(trade.out_trade_no, None)

    # -- time ------------------------------------------------------------------------------

    def expire_due(self) -> None:
        """Close every unpaid trade whose deadline (time_expire) has passed."""
        now = self.provider_now()
        for trade in list(self._waiting.values()):
            if trade.state in PAYABLE and now >= trade.pay_deadline:
                self._close(trade, trade.pay_deadline + self._late(), "timeout")

    # -- views -----------------------------------------------------------------------------

    def trades(self, out_trade_no: str | None = None) -> list[TradeListing]:
        now = self.provider_now()
        listed = []
        for trade in self._trades.values():
            if out_trade_no is not None and trade.out_trade_no != out_trade_no:
                continue
            state, closed_at = trade.state_at(now), trade.closed_at
            if state is TradeState.CLOSED and closed_at is None:
                closed_at = trade.pay_deadline + self._late()
            listed.append(
                TradeListing(
                    channel=CHANNEL,
                    out_trade_no=trade.out_trade_no,
                    trade_no=trade.transaction_id or "",
                    status=state.value,
                    amount=trade.terms.total,
                    currency=trade.terms.currency,
                    subject=trade.terms.description,
                    created_at=trade.created_at,
                    paid_at=trade.paid_at,
                    closed_at=closed_at,
                    captured=trade.captured,
                    refunded=trade.refunded,
                )
            )
        return listed

    # -- internals -------------------------------------------------------------------------

    def _close(self, trade: Trade, at: datetime, reason: str) -> None:
        trade.state = TradeState.CLOSED
        self._waiting.pop(trade.out_trade_no, None)
        trade.closed_at = at
        trade.close_reason = reason

    def _record(self, trade: Trade, kind: str, amount: int, reference: str, at: datetime) -> None:
        assert kind in ("capture", "refund")
        self._ledger.record(
            Movement(
                channel=CHANNEL,
                out_trade_no=trade.out_trade_no,
                trade_no=trade.transaction_id or "",
                kind="capture" if kind == "capture" else "refund",
                amount=amount,
                currency=trade.terms.currency,
                at=at,
                reference=reference,
            )
        )
