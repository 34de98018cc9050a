"""Provider notifications: verify on the raw bytes, match our record, apply once, then acknowledge.

The acknowledgement is returned only after the transaction that applied the notification (or
kept it, with why it changed nothing) has committed; anything unverified or unmatched changes
nothing and is refused. A refused notification that names an open trade of ours is never
trusted, but it is a sign the trade may have moved: its poll is made due now, so the provider
is asked (by the poller, never inside this request) soon after.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping

from payonce.domain.channels import Channel
from payonce.domain.outcomes import TradeCaptured
from payonce.domain.payment import Payment, PaymentStatus
from payonce.domain.transitions import IllegalTransition
from payonce.errors import ChannelUnsupported, NotificationRejected, PayonceError
from payonce.ports.locks import Lease
from payonce.ports.provider import (
    NotificationReply,
    ProviderNotification,
    TradeSnapshot,
    TradeState,
)
from payonce.service.context import Deps, order_lock_key
from payonce.service.orders import get_payment
from payonce.service.provenance import working_on
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
        deps.metrics.notification_rejected(channel.value, rejected.reason)
        deps.metrics.notification_received(channel.value, "rejected")
        if rejected.reason != "ignored":  # (an event about nothing we hold)
            await _ask_soon(deps, channel, rejected.out_trade_no or provider.named_trade(body))
        return provider.refuse(rejected.reason)
    try:
        with working_on(payment.order_id, payment.id):
            await _apply(deps, note, payment)
    except PayonceError:
        deps.metrics.notification_received(channel.value, "not_applied")
        raise
    deps.metrics.notification_received(channel.value, "applied")
    return provider.acknowledge()


async def _matching_payment(deps: Deps, merchant_id: str, note: ProviderNotification) -> Payment:
    """Our record of the trade the verified notification is about, if every business field
    agrees with it: merchant, trade number (ours and, once we hold it, the provider's),
    currency and amount."""
    if not hmac.compare_digest(note.merchant_id.encode(), merchant_id.encode()):
        raise NotificationRejected(
            "merchant_mismatch",
            f"notification names {note.merchant_id}",
            out_trade_no=note.out_trade_no,
        )
    async with deps.storage.transaction() as uow:
        payment = await uow.payments.by_out_trade_no(note.out_trade_no)
    if payment is None or payment.channel is not note.channel:
        raise NotificationRejected("unknown_trade", f"no {note.channel} trade {note.out_trade_no}")
    hint = note.out_trade_no
    held = payment.provider_trade_no
    named = note.provider_trade_no
    if payment.is_live and held is not None and named is not None and named != held:
        # Our number on another provider trade: news of some other trade (or a mix-up), which
        # must not move this one. (A settled payment it cannot move: past here, it is kept as
        # a conflict for reconciliation and acknowledged.)
        raise NotificationRejected(
            "trade_mismatch",
            f"notification names trade {named}, the record {held}",
            out_trade_no=hint,
        )
    if note.amount.currency != payment.amount.currency:
        raise NotificationRejected(
            "currency_mismatch",
            f"notification says {note.amount.currency}, the record {payment.amount.currency}",
            out_trade_no=hint,
        )
    if note.amount != payment.amount:
        raise NotificationRejected(
            "amount_mismatch",
            f"notification says {note.amount}, the record {payment.amount}",
            out_trade_no=hint,
        )
    return payment


async def _ask_soon(deps: Deps, channel: Channel, out_trade_no: str | None) -> None:
    """Make the poll of the open trade a refused notification names due now.

    The body is not trusted (it may be forged), so nothing is applied and the provider is not
    called from here (a forger could make us call it at will); the poller asks, and only the
    provider's own answer counts. At most once per trade per read-repair interval, whatever
    the number of refused notifications naming it.
    """
    if out_trade_no is None or not deps.policy.poll_trades:
        return
    try:
        async with deps.storage.transaction() as uow:
            payment = await uow.payments.by_out_trade_no(out_trade_no)
        if payment is None or payment.channel is not channel or not payment.is_live:
            return
        asked = f"notify-suspect:{payment.id}"
        if await deps.cache.get(asked) is not None:
            return
        await deps.cache.set(asked, "1", ttl_s=deps.policy.read_repair_interval_s)
        now = deps.clock.now()
        async with deps.storage.transaction() as uow:
            job = await uow.polls.get(payment.id)
            if job is not None and job.due_at <= now:
                return  # already due: the poller will ask
            await uow.polls.schedule(
                payment.id,
                payment.order_id,
                due_at=now,
                attempts=job.attempts if job is not None else 0,
            )
        log.info("refused %s notification names %s: its poll is due now", channel, payment.id)
    except Exception:  # a refusal is answered whatever happens here; the polls go on anyway
        log.exception("could not bring the poll of %s forward", out_trade_no)


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
