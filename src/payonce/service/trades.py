"""Talking to providers about one trade: open it, close it, and ask about it then apply the answer.

No database transaction is open during any provider call: the intent is committed first and the
answer recorded after. A call that does not answer is an unknown outcome, never a failure.
"""

from __future__ import annotations

import contextlib
import logging

from payonce.domain.ids import OrderId, PaymentId
from payonce.domain.outcomes import (
    CallUnanswered,
    Outcome,
    TradeCaptured,
    TradeClosed,
    TradeOpened,
    TradeRefused,
    TradeReversed,
    TradeStillOpen,
)
from payonce.domain.payment import Payment, PaymentStatus
from payonce.domain.transitions import IllegalTransition
from payonce.errors import (
    ChannelUnsupported,
    FenceRejected,
    PaymentOutcomeUnknown,
    ProviderRejected,
    ProviderUnavailable,
)
from payonce.ports.locks import Lease
from payonce.ports.provider import PaymentProvider, TradeRequest, TradeSnapshot, TradeState
from payonce.service.context import Deps
from payonce.service.recording import CAPTURABLE, may_capture, record, request_close

log = logging.getLogger(__name__)


def provider_for(deps: Deps, payment: Payment) -> PaymentProvider:
    provider = deps.providers.get(payment.channel)
    if provider is None:
        raise ChannelUnsupported(f"channel {payment.channel} is not configured")
    return provider


async def open_trade(
    deps: Deps, intent: Payment, lease: Lease, *, order_id: OrderId, request: TradeRequest
) -> Payment:
    """Call the provider for a committed intent and record what it answered."""
    provider = provider_for(deps, intent)
    try:
        created = await provider.create(request)
    except ProviderRejected as error:
        await record(deps, intent.id, TradeRefused(str(error)), lease=lease)
        raise
    except Exception as error:
        # The request may have reached the provider: only a query can tell what happened.
        await record(deps, intent.id, CallUnanswered(f"create: {error}"), lease=lease)
        raise PaymentOutcomeUnknown(
            f"the provider did not answer opening a trade for order {order_id}; retry shortly"
        ) from error
    deps.failpoints.reach("after_provider_call")
    opened = TradeOpened(created.action, created.provider_trade_no)
    return await _record_created(deps, intent.id, opened, lease)


async def _record_created(
    deps: Deps, payment_id: PaymentId, opened: TradeOpened, lease: Lease
) -> Payment:
    """Record a create's answer under the fence; if the fence refuses it (our lock lapsed), keep
    it anyway by compare-and-set alone, then let the caller start over. No one else can learn
    it: a query does not return the QR or link, so dropping it would strand the intent until
    its grace ran out and waste the trade."""
    try:
        return await record(deps, payment_id, opened, lease=lease)
    except FenceRejected:
        # If the intent moved on while we were away (closed), the answer no longer applies.
        with contextlib.suppress(IllegalTransition):
            await record(deps, payment_id, opened)
        raise


def outcome_of(snapshot: TradeSnapshot) -> Outcome | None:
    match snapshot.state:
        case TradeState.PAID:
            return TradeCaptured(snapshot.provider_trade_no, snapshot.paid_at)
        case TradeState.CLOSED:
            return TradeClosed()
        case TradeState.REFUNDED:
            return TradeReversed(snapshot.provider_trade_no)
        case TradeState.OPEN | TradeState.APPROVED:
            return TradeStillOpen(snapshot.provider_trade_no)
        case TradeState.NOT_FOUND:
            return None


def _matches(payment: Payment, snapshot: TradeSnapshot) -> bool:
    if snapshot.amount is not None and snapshot.amount != payment.amount:
        log.error(
            "provider reports %s for %s, we hold %s: not applied",
            snapshot.amount,
            payment.out_trade_no,
            payment.amount,
        )
        return False
    return True


async def close_trade(
    deps: Deps, payment: Payment, lease: Lease, *, why: str | None = None
) -> Payment:
    """Close a trade at the provider: CLOSING first, then the call, then what it answered.

    Raises PaymentOutcomeUnknown when the provider does not answer (the record stays CLOSING
    until a later close or query settles it). ``why``: what the close is for (the audit trail).
    """
    provider = provider_for(deps, payment)
    asked = f"close requested: {why}" if why else None
    closing = await request_close(deps, payment, lease, why=asked)
    try:
        snapshot = await provider.close(
            closing.out_trade_no, provider_trade_no=closing.provider_trade_no
        )
    except (ProviderUnavailable, ProviderRejected) as error:
        raise PaymentOutcomeUnknown(
            f"closing trade {closing.out_trade_no} did not complete; retry shortly"
        ) from error
    if not _matches(closing, snapshot):
        raise PaymentOutcomeUnknown("provider and payonce disagree on the amount")
    outcome = outcome_of(snapshot) or TradeClosed()  # NOT_FOUND after a close: never opened
    if isinstance(outcome, TradeStillOpen):
        raise PaymentOutcomeUnknown(f"trade {closing.out_trade_no} is still open after closing")
    said = f"close at the provider: {snapshot.state.value}"
    return await record(deps, closing.id, outcome, lease=lease, why=said)


async def forget_trade(deps: Deps, payment: Payment, lease: Lease) -> Payment:
    """Record a trade closed without closing it at its provider: what payonce would do without
    close-before-new (``Policy.close_before_new`` off, the chaos harness's defences-off run)."""
    forgotten = "forgotten, not closed at the provider (close-before-new off)"
    closing = await request_close(deps, payment, lease, why=forgotten)
    return await record(deps, closing.id, TradeClosed(), lease=lease, why=forgotten)


async def sync_with_provider(
    deps: Deps, payment: Payment, lease: Lease, *, strict: bool = False
) -> Payment:
    """Ask the provider about a trade and apply the answer: the one way every query is applied.

    A trade the provider does not know while we hold an unanswered create is made unpayable
    (closed) before it is recorded closed, so a late-arriving create cannot open it behind us.
    An unanswered query changes nothing; with ``strict`` it raises PaymentOutcomeUnknown.
    """
    provider = provider_for(deps, payment)
    try:
        snapshot = await provider.query(
            payment.out_trade_no, provider_trade_no=payment.provider_trade_no
        )
        if snapshot.state is TradeState.APPROVED and payment.status in CAPTURABLE:
            if not await may_capture(deps, payment, lease):
                # The order no longer wants it (paid, expired): the approval lapses unused.
                return await close_trade(deps, payment, lease, why="approval no longer wanted")
            snapshot = await provider.capture(
                payment.out_trade_no, provider_trade_no=payment.provider_trade_no
            )
    except (ProviderUnavailable, ProviderRejected) as error:
        log.info("query of %s did not answer: %s", payment.out_trade_no, error)
        if strict:
            raise PaymentOutcomeUnknown(f"query of {payment.out_trade_no}: {error}") from error
        return payment
    deps.failpoints.reach("after_provider_call")
    if not _matches(payment, snapshot):
        return payment
    outcome = outcome_of(snapshot)
    if outcome is None:  # NOT_FOUND
        if payment.status in (PaymentStatus.UNKNOWN, PaymentStatus.UNPAID, PaymentStatus.CLOSING):
            try:
                return await close_trade(deps, payment, lease, why="unknown to the provider")
            except (PaymentOutcomeUnknown, IllegalTransition):
                return payment  # still unknown, or settled meanwhile by someone else
        return payment  # e.g. an Alipay QR nobody has scanned yet
    try:
        return await record(
            deps, payment.id, outcome, lease=lease, why=f"query: {snapshot.state.value}"
        )
    except IllegalTransition as error:
        log.error("provider answer for %s conflicts with our record: %s", payment.id, error)
        return payment
