"""Provider notifications: verify on the raw bytes, match our record, apply once, then acknowledge.

The acknowledgement is returned only after the transaction that applied the notification (or
kept it, with why it changed nothing) has committed; anything unverified or unmatched changes
nothing and is refused.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from payonce.domain.channels import Channel
from payonce.domain.outcomes import TradeCaptured
from payonce.domain.payment import Payment, PaymentStatus
from payonce.domain.transitions import IllegalTransition
from payonce.errors import ChannelUnsupported, NotificationRejected
from payonce.ports.locks import Lease
from payonce.ports.provider import (
    NotificationReply,
    ProviderNotification,
    TradeSnapshot,
    TradeState,
)
from payonce.service.context import Deps, order_lock_key
from payonce.service.orders import get_payment
from payonce.service.recording import CAPTURABLE, note_notification, record
from payonce.service.trades import close_trade, outcome_of, sync_with_provider

log = logging.getLogger(__name__)


async def handle_notification(
    deps: Deps, channel: Channel, headers: Mapping[str, str], body: bytes
) -> NotificationReply:
    provider = deps.providers.get(channel)
    if provider is None:
        raise ChannelUnsupported(f"channel {channel} is not configured")
    try:
        note = provider.parse_notification(headers, body)
        payment = await _matching_payment(deps, provider.merchant_id, note)
    except NotificationRejected as rejected:
        log.warning("%s notification rejected: %s", channel, rejected.detail)
        return provider.refuse(rejected.reason)
    await _apply(deps, note, payment)
    return provider.acknowledge()


async def _matching_payment(deps: Deps, merchant_id: str, note: ProviderNotification) -> Payment:
    if note.merchant_id != merchant_id:
        raise NotificationRejected("merchant_mismatch", f"notification names {note.merchant_id}")
    async with deps.storage.transaction() as uow:
        payment = await uow.payments.by_out_trade_no(note.out_trade_no)
    if payment is None or payment.channel is not note.channel:
        raise NotificationRejected("unknown_trade", f"no {note.channel} trade {note.out_trade_no}")
    if note.amount != payment.amount:
        raise NotificationRejected(
            "amount_mismatch", f"notification says {note.amount}, the record {payment.amount}"
        )
    return payment


async def _apply(deps: Deps, note: ProviderNotification, payment: Payment) -> None:
    outcome = outcome_of(
        TradeSnapshot(note.state, note.provider_trade_no, note.amount, paid_at=note.paid_at)
    )
    if outcome is None:
        return
    key = (note.channel.value, note.notify_id)
    async with deps.locks.hold(
        order_lock_key(payment.order_id),
        ttl_s=deps.policy.lock_ttl_s,
        wait_s=deps.policy.lock_wait_s,
    ) as lease:
        current = await get_payment(deps, payment.id)
        try:
            if note.state is TradeState.APPROVED:
                await _approval(deps, current, lease, key)
                return
            if isinstance(outcome, TradeCaptured) and current.status in (
                PaymentStatus.CLOSING,
                PaymentStatus.CLOSED,
            ):
                await _capture_of_a_closed_trade(deps, current, lease, key)
                return
            await record(deps, payment.id, outcome, lease=lease, notification=key)
        except IllegalTransition as conflict:
            # Verified, but it contradicts what we hold. Kept (for reconciliation) before the
            # acknowledgement: asking again would tell us the same.
            log.error("notification %s conflicts with payment %s: %s", key, payment.id, conflict)
            await note_notification(deps, key, payment.id, f"conflict: {conflict}")


async def _approval(deps: Deps, payment: Payment, lease: Lease, key: tuple[str, str]) -> None:
    """The shopper approved (PayPal): capture it if we still want it, as the provider says now."""
    if payment.status in CAPTURABLE:
        settled = await sync_with_provider(deps, payment, lease, strict=True)
        await note_notification(deps, key, payment.id, f"approval: {settled.status}")
        return
    await note_notification(deps, key, payment.id, f"approval of a {payment.status} payment")


async def _capture_of_a_closed_trade(
    deps: Deps, payment: Payment, lease: Lease, key: tuple[str, str]
) -> None:
    """A capture of a trade we are closing, or closed: the provider's word now decides.

    A close may have lost the race (the trade is paid: apply it) or a cancel may have refunded
    the payment (it must not pay the order); the notification alone cannot tell which.
    """
    if payment.status is PaymentStatus.CLOSING:
        settled = await close_trade(deps, payment, lease)
    else:
        settled = await sync_with_provider(deps, payment, lease, strict=True)
    await note_notification(deps, key, payment.id, f"capture of a closing trade: {settled.status}")
