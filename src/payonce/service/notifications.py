"""Provider notifications: verify on the raw bytes, match our record, apply once, then acknowledge.

The acknowledgement is returned only after the transaction that applied the notification (or
found it already applied) has committed; anything unverified or unmatched changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from payonce.domain.channels import Channel
from payonce.domain.transitions import IllegalTransition
from payonce.errors import ChannelUnsupported, NotificationRejected
from payonce.ports.provider import NotificationReply, ProviderNotification, TradeSnapshot
from payonce.service.context import Deps, order_lock_key
from payonce.service.recording import record
from payonce.service.trades import outcome_of

log = logging.getLogger(__name__)


async def handle_notification(
    deps: Deps, channel: Channel, headers: Mapping[str, str], body: bytes
) -> NotificationReply:
    provider = deps.providers.get(channel)
    if provider is None:
        raise ChannelUnsupported(f"channel {channel} is not configured")
    try:
        note = provider.parse_notification(headers, body)
        await _check_against_record(deps, provider.merchant_id, note)
    except NotificationRejected as rejected:
        log.warning("%s notification rejected: %s", channel, rejected.detail)
        return provider.refuse(rejected.reason)
    await _apply(deps, note)
    return provider.acknowledge()


async def _check_against_record(deps: Deps, merchant_id: str, note: ProviderNotification) -> None:
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


async def _apply(deps: Deps, note: ProviderNotification) -> None:
    async with deps.storage.transaction() as uow:
        payment = await uow.payments.by_out_trade_no(note.out_trade_no)
    assert payment is not None  # checked above; payments are never deleted
    outcome = outcome_of(TradeSnapshot(note.state, note.provider_trade_no, note.amount))
    if outcome is None:
        return
    async with deps.locks.hold(
        order_lock_key(payment.order_id),
        ttl_s=deps.policy.lock_ttl_s,
        wait_s=deps.policy.lock_wait_s,
    ):
        try:
            await record(
                deps, payment.id, outcome, notification=(note.channel.value, note.notify_id)
            )
        except IllegalTransition as conflict:
            # Verified, but it contradicts what we hold: recorded in the log for reconciliation;
            # acknowledged, since asking again would tell us the same.
            log.error(
                "notification %s conflicts with payment %s: %s",
                note.notify_id,
                payment.id,
                conflict,
            )
