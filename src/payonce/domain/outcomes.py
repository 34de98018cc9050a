"""How a payment record reacts to what happened at the provider: one pure function, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from payonce.domain.events import Event, Topic
from payonce.domain.order import Order, OrderStatus
from payonce.domain.payment import Action, Payment, PaymentStatus
from payonce.domain.transitions import IllegalTransition


class LateCaptures(StrEnum):
    """What a capture after its order's deadline (or after the order closed) does."""

    REFUND = "refund"  # the default: the money goes back, the order stays as it is
    REOPEN = "reopen"  # the order is paid after all, if it can still be fulfilled


@dataclass(frozen=True, slots=True)
class TradeOpened:
    action: Action
    provider_trade_no: str | None = None


@dataclass(frozen=True, slots=True)
class CallUnanswered:
    """A call that may have reached the provider got no answer: the outcome is unknown."""

    reason: str


@dataclass(frozen=True, slots=True)
class TradeRefused:
    reason: str


@dataclass(frozen=True, slots=True)
class CloseRequested:
    pass


@dataclass(frozen=True, slots=True)
class TradeStillOpen:
    provider_trade_no: str | None = None


@dataclass(frozen=True, slots=True)
class TradeClosed:
    pass


@dataclass(frozen=True, slots=True)
class TradeCaptured:
    provider_trade_no: str | None
    # When the provider took the money, when it says; a capture after the order's deadline is
    # late even when its news arrives while the order is still open.
    paid_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RefundRequested:
    """The decision to give an extra capture back, committed before the provider is asked."""


@dataclass(frozen=True, slots=True)
class TradeReversed:
    """The provider captured the trade and gave the money back (a cancel that found it paid)."""

    provider_trade_no: str | None


Outcome = (
    TradeOpened
    | CallUnanswered
    | TradeRefused
    | CloseRequested
    | RefundRequested
    | TradeStillOpen
    | TradeClosed
    | TradeCaptured
    | TradeReversed
)

S = PaymentStatus
_SETTLED = frozenset({S.PAID, S.REFUNDING, S.REFUNDED})


@dataclass(frozen=True, slots=True)
class Reaction:
    payment: Payment
    events: tuple[Event, ...] = ()

    def changed(self, before: Payment) -> bool:
        return self.payment is not before


def _deadline(payment: Payment, order: Order) -> datetime:
    """Until when a payment of this trade pays its order: the order's deadline, or for a trade
    that cannot be withdrawn (a voucher) its own last payable instant, when that is later."""
    action = payment.action
    if payment.closable or action is None or action.expires_at is None:
        return order.expires_at
    return max(order.expires_at, action.expires_at)


def react(
    payment: Payment,
    outcome: Outcome,
    *,
    order: Order,
    order_has_applied: bool,
    now: datetime,
    late_captures: LateCaptures = LateCaptures.REFUND,
) -> Reaction:
    """The payment after ``outcome``, and the events to publish with it.

    A repeated outcome returns the payment unchanged; a conflicting one raises
    ``IllegalTransition``. A capture applies to the order only while the order is unpaid and
    no other payment is applied, and only if it was made before the order's deadline (unless
    ``late_captures`` reopens orders); otherwise it is an extra capture, to be refunded.
    """
    match outcome:
        case TradeOpened(action=action, provider_trade_no=trade_no):
            return Reaction(
                payment.moved_to(
                    S.PAYING,
                    now=now,
                    action=action,
                    provider_trade_no=trade_no or payment.provider_trade_no,
                )
            )
        case CallUnanswered(reason=reason):
            if payment.status in (S.CLOSING, S.UNKNOWN):
                return Reaction(payment)  # still waiting for a query to tell
            return Reaction(payment.moved_to(S.UNKNOWN, now=now, last_error=reason))
        case TradeRefused(reason=reason):
            return Reaction(payment.moved_to(S.FAILED, now=now, last_error=reason))
        case CloseRequested():
            return Reaction(payment.moved_to(S.CLOSING, now=now))
        case RefundRequested():
            if payment.applied:
                # The payment that paid the order is never given back automatically.
                raise IllegalTransition("payment", payment.status, S.REFUNDING)
            if payment.status in (S.REFUNDING, S.REFUNDED):
                return Reaction(payment)
            return Reaction(payment.moved_to(S.REFUNDING, now=now))
        case TradeStillOpen(provider_trade_no=trade_no):
            if payment.status is not S.UNKNOWN:
                return Reaction(payment)  # open is what PAYING, CLOSING and UNPAID already say
            return Reaction(
                payment.moved_to(
                    S.PAYING, now=now, provider_trade_no=trade_no or payment.provider_trade_no
                )
            )
        case TradeClosed():
            if payment.status in (S.REFUNDING, S.REFUNDED):
                return Reaction(payment)  # a refunded trade is closed: nothing new
            return Reaction(payment.moved_to(S.CLOSED, now=now))
        case TradeReversed(provider_trade_no=trade_no):
            if payment.applied:
                # The money of the payment that paid the order went back: not ours to undo here.
                raise IllegalTransition("payment", payment.status, S.REFUNDED)
            return Reaction(
                payment.moved_to(
                    S.REFUNDED, now=now, provider_trade_no=trade_no or payment.provider_trade_no
                )
            )
        case TradeCaptured(provider_trade_no=trade_no, paid_at=paid_at):
            if payment.status in _SETTLED:
                return Reaction(payment)
            late = order.status is OrderStatus.CLOSED or (
                paid_at is not None and paid_at >= _deadline(payment, order)
            )
            duplicate = order_has_applied or order.status is OrderStatus.READY_FOR_SHIPMENT
            refused_late = late and late_captures is LateCaptures.REFUND
            applies = not duplicate and not refused_late
            paid = payment.moved_to(
                S.PAID,
                now=now,
                applied=applies,
                provider_trade_no=trade_no or payment.provider_trade_no,
                last_error=None,
                paid_at=paid_at or now,
            )
            if applies:
                # A late capture applied (the reopen policy) reopens its order if it closed:
                # decided here, once, and carried by the event to the order side.
                details = {"reopens": True} if late else {}
                succeeded = Event.about(Topic.PAYMENT_SUCCEEDED, paid, now, **details)
                return Reaction(paid, (succeeded,))
            reason = "duplicate" if duplicate else "late"
            extra = Event.about(Topic.PAYMENT_EXTRA_CAPTURED, paid, now, reason=reason)
            return Reaction(paid, (extra,))
