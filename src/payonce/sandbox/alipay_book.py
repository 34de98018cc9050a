"""The Alipay channel's book: every order and trade, and each state change and money movement."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable
from datetime import datetime

from payonce.ports.clock import Clock
from payonce.sandbox.alipay_trades import (
    CHANNEL,
    CURRENCY,
    PAID,
    QR_VALIDITY,
    Order,
    OrderSnapshot,
    OrderTerms,
    Refund,
    Trade,
    TradeSnapshot,
    TradeStatus,
)
from payonce.sandbox.alipay_wire import CHINA_TZ, AlipayError
from payonce.sandbox.faults import Lateness, on_time
from payonce.sandbox.ledger import Ledger, Movement
from payonce.sandbox.problems import Problem

# Called on every status change that Alipay notifies (into TRADE_SUCCESS or TRADE_CLOSED).
StatusListener = Callable[[Order, Trade, datetime], None]


class AlipayBook:
    """All orders and trades of the channel. Callers hold the sandbox's state lock."""

    def __init__(
        self,
        *,
        clock: Clock,
        ledger: Ledger,
        on_status: StatusListener,
        late: Lateness = on_time,
    ) -> None:
        self._clock = clock
        self._late = late
        self._ledger = ledger
        self._on_status = on_status
        self._orders: dict[str, Order] = {}
        self._by_token: dict[str, Order] = {}
        self._by_trade_no: dict[str, Order] = {}
        self._cancelled: set[str] = set()  # out_trade_nos cancelled before Alipay knew them
        self._trade_seq = itertools.count(1)
        self._order_seq = itertools.count(1)
        # Trade numbers stay unique across restarts of the sandbox (its state lives in memory):
        # each instance numbers its trades under the instant it started.
        self._epoch = int(clock.now().timestamp()) % 10**7
        # Orders whose trade waits for payment: the only ones a deadline can close.
        self._waiting: dict[str, Order] = {}

    def provider_now(self) -> datetime:
        """Alipay's own clock, for its deadlines: behind ours by the ``pay_late_by_s`` fault."""
        return self._clock.now() - self._late()

    def _closes_at(self, order: Order) -> datetime:
        """When, on our clock, Alipay closes the order's unpaid trade for its deadline."""
        return order.pay_deadline + self._late()

    def known(self, out_trade_no: str) -> Order | None:
        """The order of this number, as it is (a read: no deadline is applied)."""
        return self._orders.get(out_trade_no)

    # -- merchant side ---------------------------------------------------------------------

    def register(self, terms: OrderTerms) -> Order:
        """A pending order for these terms; the same terms again give the same order."""
        now = self._clock.now()
        self.expire_due()
        existing = self._orders.get(terms.out_trade_no)
        if existing is not None:
            if existing.terms.amount != terms.amount:
                raise AlipayError("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改 (amount differs)")
            trade = existing.trade
            if trade is not None and trade.status in PAID:
                raise AlipayError("ACQ.TRADE_HAS_SUCCESS", "交易已被支付 (trade already paid)")
            if existing.blocked or (trade is not None and trade.status is TradeStatus.TRADE_CLOSED):
                raise AlipayError("ACQ.TRADE_HAS_CLOSE", "交易已经关闭 (trade closed)")
            return existing
        if terms.out_trade_no in self._cancelled:
            raise AlipayError("ACQ.TRADE_HAS_CLOSE", "交易已经关闭 (trade cancelled)")
        qr_expires_at = now + QR_VALIDITY
        if terms.deadline is not None:
            if terms.deadline <= now:
                raise AlipayError("ACQ.INVALID_PARAMETER", "time_expire is in the past")
            qr_expires_at = min(qr_expires_at, terms.deadline)
        order = Order(
            terms=terms,
            token=_token(terms.out_trade_no, next(self._order_seq)),
            created_at=now,
            qr_expires_at=qr_expires_at,
            pay_deadline=terms.deadline or now + QR_VALIDITY,
        )
        self._orders[terms.out_trade_no] = order
        self._by_token[order.token] = order
        return order

    def find(self, *, out_trade_no: str | None, trade_no: str | None) -> Order | None:
        self.expire_due()
        by_out = self._orders.get(out_trade_no) if out_trade_no else None
        by_trade = self._by_trade_no.get(trade_no) if trade_no else None
        if out_trade_no and trade_no and by_out is not by_trade:
            return None
        return by_out or by_trade

    def existing_trade(self, *, out_trade_no: str | None, trade_no: str | None) -> Order:
        """The order whose trade exists (was scanned), or ACQ.TRADE_NOT_EXIST."""
        order = self.find(out_trade_no=out_trade_no, trade_no=trade_no)
        if order is None or order.trade is None:
            raise AlipayError("ACQ.TRADE_NOT_EXIST", "交易不存在 (trade does not exist)")
        return order

    def close(self, order: Order) -> Trade:
        trade = order.trade
        assert trade is not None
        if trade.status in PAID:
            raise AlipayError("ACQ.TRADE_STATUS_ERROR", "交易状态不合法 (trade is already paid)")
        if trade.status is TradeStatus.WAIT_BUYER_PAY:
            self._close(order, trade, self._clock.now(), "closed")
        return trade

    def cancel(self, *, out_trade_no: str | None, trade_no: str | None) -> tuple[Order | None, str]:
        """Cancel whatever state the order is in; answers the action taken: close or refund."""
        order = self.find(out_trade_no=out_trade_no, trade_no=trade_no)
        now = self._clock.now()
        if order is None:
            if not out_trade_no:
                raise AlipayError("ACQ.TRADE_NOT_EXIST", "交易不存在 (trade does not exist)")
            self._cancelled.add(out_trade_no)
            return None, "close"
        trade = order.trade
        if trade is None:
            order.blocked = True
            return order, "close"
        if trade.status is TradeStatus.WAIT_BUYER_PAY:
            self._close(order, trade, now, "cancelled")
            return order, "close"
        if trade.status is TradeStatus.TRADE_CLOSED:
            return order, "close"
        remaining = trade.captured - trade.refunded
        if trade.status is TradeStatus.TRADE_FINISHED or remaining <= 0:
            raise AlipayError("ACQ.TRADE_STATUS_ERROR", "交易状态不合法 (cannot cancel)")
        self._refund(order, trade, f"cancel-{trade.trade_no}", remaining, now)
        return order, "refund"

    def refund(self, order: Order, out_request_no: str, amount: int) -> tuple[Refund, bool]:
        """Refund once per request number; answers the refund and whether money moved now."""
        trade = order.trade
        assert trade is not None
        previous = trade.refunds.get(out_request_no)
        if previous is not None:
            if previous.amount != amount:
                raise AlipayError(
                    "ACQ.CONTEXT_INCONSISTENT", "退款请求号已使用且金额不同 (out_request_no reused)"
                )
            return previous, False
        if trade.status is not TradeStatus.TRADE_SUCCESS:
            raise AlipayError("ACQ.TRADE_STATUS_ERROR", "交易状态不合法 (trade is not paid)")
        if trade.refunded + amount > trade.captured:
            raise AlipayError(
                "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限 (refunds would exceed the payment)"
            )
        return self._refund(order, trade, out_request_no, amount, self._clock.now()), True

    # -- shopper side ----------------------------------------------------------------------

    def order_for_token(self, token: str) -> Order | None:
        return self._by_token.get(token)

    def scan(self, order: Order) -> Trade:
        """The shopper opens the trade; from now on it exists (WAIT_BUYER_PAY)."""
        self.expire_due()
        now = self._clock.now()
        if order.blocked:
            raise Problem(409, "order_cancelled", "Order cancelled", "the merchant cancelled it")
        trade = order.trade
        if trade is None:
            if self.provider_now() >= order.qr_expires_at:
                raise Problem(409, "code_expired", "Code expired", "this payment code expired")
            trade = Trade(trade_no=self._new_trade_no(now), created_at=now)
            order.trade = trade
            self._by_trade_no[trade.trade_no] = order
            self._waiting[order.out_trade_no] = order
            return trade
        if trade.status in PAID:
            raise Problem(409, "trade_already_paid", "Already paid", "this trade is paid")
        if trade.status is TradeStatus.TRADE_CLOSED:
            raise _closed_problem(trade)
        return trade

    def pay(self, order: Order, *, despite_close: bool = False) -> Trade:
        """The shopper pays: money is captured and the TRADE_SUCCESS notice goes out.

        ``despite_close``: a merchant's close did not hold (the ``pay_after_close`` fault).
        """
        closed = order.trade
        if despite_close and closed is not None and closed.close_reason == "closed":
            closed.status, closed.closed_at, closed.close_reason = (
                TradeStatus.WAIT_BUYER_PAY,
                None,
                None,
            )
        trade = self.scan(order)
        now = self._clock.now()
        if self.provider_now() >= order.pay_deadline:
            self._close(order, trade, self._closes_at(order), "timeout")
            raise _closed_problem(trade)
        trade.status = TradeStatus.TRADE_SUCCESS
        self._waiting.pop(order.out_trade_no, None)
        trade.paid_at = now
        trade.captured = order.terms.amount
        self._ledger.record(
            Movement(
                channel=CHANNEL,
                out_trade_no=order.out_trade_no,
                trade_no=trade.trade_no,
                kind="capture",
                amount=trade.captured,
                currency=CURRENCY,
                at=now,
                reference=trade.trade_no,
            )
        )
        self._on_status(order, trade, now)
        return trade

    # -- time ------------------------------------------------------------------------------

    def expire_due(self) -> None:
        """Close every unpaid trade whose pay deadline has passed (as Alipay does on its own)."""
        now = self.provider_now()
        for order in list(self._waiting.values()):
            trade = order.trade
            if (
                trade is not None
                and trade.status is TradeStatus.WAIT_BUYER_PAY
                and now >= order.pay_deadline
            ):
                self._close(order, trade, self._closes_at(order), "timeout")

    # -- views -----------------------------------------------------------------------------

    def orders(self, code_for: Callable[[Order], str]) -> list[OrderSnapshot]:
        return [
            OrderSnapshot(
                channel=CHANNEL,
                out_trade_no=order.out_trade_no,
                code=code_for(order),
                amount=order.terms.amount,
                currency=CURRENCY,
                subject=order.terms.subject,
                product_code=order.terms.product_code,
                notify_url=order.terms.notify_url,
                created_at=order.created_at,
                qr_expires_at=order.qr_expires_at,
                pay_deadline=order.pay_deadline,
                blocked=order.blocked,
                trade_no=order.trade.trade_no if order.trade else None,
            )
            for order in self._orders.values()
        ]

    def trades(self, out_trade_no: str | None = None) -> list[TradeSnapshot]:
        now = self.provider_now()
        snapshots = []
        for order in self._orders.values():
            trade = order.trade
            if trade is None or (out_trade_no is not None and order.out_trade_no != out_trade_no):
                continue
            status, closed_at = trade.status, trade.closed_at
            # A read does not change state; show what the next locked operation will record.
            if status is TradeStatus.WAIT_BUYER_PAY and now >= order.pay_deadline:
                status, closed_at = TradeStatus.TRADE_CLOSED, self._closes_at(order)
            snapshots.append(
                TradeSnapshot(
                    channel=CHANNEL,
                    out_trade_no=order.out_trade_no,
                    trade_no=trade.trade_no,
                    status=status.value,
                    amount=order.terms.amount,
                    currency=CURRENCY,
                    subject=order.terms.subject,
                    created_at=trade.created_at,
                    paid_at=trade.paid_at,
                    closed_at=closed_at,
                    captured=trade.captured,
                    refunded=trade.refunded,
                )
            )
        return snapshots

    # -- internals -------------------------------------------------------------------------

    def _new_trade_no(self, now: datetime) -> str:
        day = now.astimezone(CHINA_TZ).strftime("%Y%m%d")
        return f"{day}22001{self._epoch:07d}{next(self._trade_seq):08d}"

    def _close(self, order: Order, trade: Trade, at: datetime, reason: str) -> None:
        trade.status = TradeStatus.TRADE_CLOSED
        self._waiting.pop(order.out_trade_no, None)
        trade.closed_at = at
        trade.close_reason = reason
        self._on_status(order, trade, at)

    def _refund(
        self, order: Order, trade: Trade, out_request_no: str, amount: int, now: datetime
    ) -> Refund:
        refund = Refund(out_request_no=out_request_no, amount=amount, at=now)
        trade.refunds[out_request_no] = refund
        self._ledger.record(
            Movement(
                channel=CHANNEL,
                out_trade_no=order.out_trade_no,
                trade_no=trade.trade_no,
                kind="refund",
                amount=amount,
                currency=CURRENCY,
                at=now,
                reference=out_request_no,
            )
        )
        if trade.refunded >= trade.captured:
            self._close(order, trade, now, "refunded")
        return refund


def _closed_problem(trade: Trade) -> Problem:
    if trade.close_reason == "timeout":
        return Problem(409, "pay_deadline_passed", "Too late", "the pay deadline has passed")
    return Problem(409, "trade_closed", "Trade closed", "the merchant closed this trade")


def _token(out_trade_no: str, sequence: int) -> str:
    # Deterministic, so a replay under the same seed shows the same codes.
    return hashlib.sha256(f"qr|{sequence}|{out_trade_no}".encode()).hexdigest()[:24]
