"""How a payment record reacts to what happened at the provider: one pure function, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from payonce.domain.events import Event, Topic
from payonce.domain.order import Order, OrderStatus
from payonce.domain.payment import Action, Payment, PaymentStatus
from payonce.domain.transitions import IllegalTransition


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


@dataclass(frozen=True, slots=True)
class TradeReversed:
    """The provider captured the trade and gave the money back (a cancel that found it paid)."""

    provider_trade_no: str | None


Outcome = (
    TradeOpened
    | CallUnanswered
    | TradeRefused
    | CloseRequested
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


def react(
    payment: Payment, outcome: Outcome, *, order: Order, order_has_applied: bool, now: datetime
) -> Reaction:
    """The payment after ``outcome``, and the events to publish with it.

    A repeated outcome returns the payment unchanged; a conflicting one raises
    ``IllegalTransition``. A capture applies to the order only while the order is unpaid and
    no other payment is applied; otherwise it is an extra capture, to be refunded.
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
        case TradeCaptured(provider_trade_no=trade_no):
            if payment.status in _SETTLED:
                return Reaction(payment)
            applies = order.status is OrderStatus.UNPAID and not order_has_applied
            paid = payment.moved_to(
                S.PAID,
                now=now,
                applied=applies,
                provider_trade_no=trade_no or payment.provider_trade_no,
                last_error=None,
            )
            topic = Topic.PAYMENT_SUCCEEDED if applies else Topic.PAYMENT_EXTRA_CAPTURED
            return Reaction(paid, (Event.about(topic, paid, now),))
