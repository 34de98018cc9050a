"""Reconciliation: every line of a provider's daily statement matched against payonce's records.

The last backstop (layer 11). A capture the provider holds that payonce never recorded is a
shopper who paid and got nothing: it is repaired by asking the provider about that trade through
the one "ask and apply" function, which applies it, or records it as an extra capture to be
refunded. Everything else that does not match (an unknown trade, a different amount, a refund
payonce never asked for) is reported, never guessed at: those are for a person to look at.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import StrEnum
from typing import Any

from payonce.domain.channels import Channel, can_close
from payonce.domain.payment import Payment, PaymentStatus
from payonce.domain.refund import RefundReason
from payonce.errors import ChannelUnsupported, ProviderUnavailable
from payonce.ports.provider import StatementLine
from payonce.service.context import Deps, order_lock_key
from payonce.service.refunds import refund_extra_capture
from payonce.service.trades import sync_with_provider

log = logging.getLogger(__name__)

# Our records of a trade whose money the provider took (and may have given back since).
CAPTURED = frozenset({PaymentStatus.PAID, PaymentStatus.REFUNDING, PaymentStatus.REFUNDED})


class BreakKind(StrEnum):
    # The provider captured money on a trade we do not hold as captured: a lost payment.
    CAPTURE_UNRECORDED = "capture_unrecorded"
    # A movement naming a trade number we never issued (on this channel).
    UNKNOWN_TRADE = "unknown_trade"
    # The statement and our record disagree on the amount or currency.
    AMOUNT_MISMATCH = "amount_mismatch"
    # The provider refunded money on a request number we never made (e.g. from its dashboard).
    REFUND_UNRECORDED = "refund_unrecorded"
    # A capture we hold that the provider's statement of its day does not show.
    CAPTURE_MISSING = "capture_missing"
    # A capture that did not pay its order and is not refunded yet (its refund keeps failing).
    EXTRA_NOT_REFUNDED = "extra_not_refunded"


@dataclass(frozen=True, slots=True)
class Break:
    kind: BreakKind
    out_trade_no: str
    reference: str
    amount: int
    currency: str
    detail: str
    repaired: bool = False

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "kind": self.kind.value}


@dataclass(frozen=True, slots=True)
class Reconciliation:
    channel: Channel
    day: date
    lines: int
    matched: int
    breaks: tuple[Break, ...] = field(default=())

    @property
    def remaining(self) -> tuple[Break, ...]:
        """The breaks that still need a person."""
        return tuple(b for b in self.breaks if not b.repaired)

    def as_json(self) -> dict[str, Any]:
        return {
            "channel": self.channel.value,
            "day": self.day.isoformat(),
            "lines": self.lines,
            "matched": self.matched,
            "repaired": len(self.breaks) - len(self.remaining),
            "remaining": len(self.remaining),
            "breaks": [b.as_json() for b in self.breaks],
        }


async def reconcile(
    deps: Deps, channel: Channel, day: date, *, repair: bool = True
) -> Reconciliation:
    """Match the channel's statement of ``day`` against our records; repair what is safe."""
    provider = deps.providers.get(channel)
    if provider is None:
        raise ChannelUnsupported(f"channel {channel} is not configured")
    lines = await provider.statement(day)  # ProviderUnavailable: not ready, try again later
    matched = 0
    breaks: list[Break] = []
    for line in lines:
        found = await _check(deps, channel, line, repair=repair)
        if found is None:
            matched += 1
        else:
            breaks.append(found)
    breaks.extend(await _missing_captures(deps, channel, day, provider.statement_zone, lines))
    result = Reconciliation(channel, day, len(lines), matched, tuple(breaks))
    for kept in result.breaks:
        level = logging.INFO if kept.repaired else logging.ERROR
        log.log(level, "reconciliation %s %s: %s", channel.value, day, kept)
    return result


async def _check(
    deps: Deps, channel: Channel, line: StatementLine, *, repair: bool
) -> Break | None:
    async with deps.storage.transaction() as uow:
        payment = await uow.payments.by_out_trade_no(line.out_trade_no)
        refund = await uow.refunds.get(line.reference) if line.kind == "refund" else None

    def broken(kind: BreakKind, detail: str, *, repaired: bool = False) -> Break:
        return Break(
            kind,
            line.out_trade_no,
            line.reference,
            line.amount.amount,
            line.amount.currency,
            detail,
            repaired,
        )

    if payment is None or payment.channel is not channel:
        return broken(BreakKind.UNKNOWN_TRADE, f"no {channel.value} trade of ours has this number")
    if line.kind == "capture" and line.amount != payment.amount:
        return broken(BreakKind.AMOUNT_MISMATCH, f"our record says {payment.amount}")
    if line.kind == "refund":
        if refund is not None and refund.amount != line.amount:
            return broken(BreakKind.AMOUNT_MISMATCH, f"we asked for {refund.amount}")
        if refund is not None and refund.payment_id == payment.id:
            return None
        if payment.status is PaymentStatus.REFUNDED and not payment.applied and refund is None:
            return None  # given back by the provider's own cancel of a paid trade, recorded so
        return broken(
            BreakKind.REFUND_UNRECORDED,
            f"we never asked for this refund; our payment is {payment.status.value}"
            + (" and pays its order" if payment.applied else ""),
        )
    if payment.status in CAPTURED:
        if payment.applied or payment.status is PaymentStatus.REFUNDED:
            return None
        return await _refund_extra(deps, payment, broken, repair=repair)
    if not repair:
        return broken(BreakKind.CAPTURE_UNRECORDED, f"our record is {payment.status.value}")
    repaired = await _ask_again(deps, payment)
    return broken(
        BreakKind.CAPTURE_UNRECORDED,
        f"our record was {payment.status.value}; the provider, asked again, "
        f"makes it {repaired.status.value}" + (" (applied)" if repaired.applied else ""),
        repaired=repaired.status in CAPTURED,
    )


async def _refund_extra(
    deps: Deps, payment: Payment, broken: Callable[..., Break], *, repair: bool
) -> Break:
    """An extra capture still not refunded once its day is over: refund it now (the same refund
    number as every earlier attempt, so the money moves at most once), and say so."""
    if not repair:
        return broken(BreakKind.EXTRA_NOT_REFUNDED, f"our record is {payment.status.value}")
    async with deps.storage.transaction() as uow:
        refund = await uow.refunds.for_payment(payment.id)
    reason = refund.reason if refund is not None else RefundReason.DUPLICATE
    try:
        refunded = await refund_extra_capture(deps, payment.id, reason)
    except Exception as error:  # the refund keeps failing: a person must look at it
        return broken(BreakKind.EXTRA_NOT_REFUNDED, f"refund failed again: {error}")
    return broken(
        BreakKind.EXTRA_NOT_REFUNDED,
        f"refunded now; our record is {refunded.status.value}",
        repaired=refunded.status is PaymentStatus.REFUNDED,
    )


async def _missing_captures(
    deps: Deps, channel: Channel, day: date, zone: tzinfo, lines: list[StatementLine]
) -> list[Break]:
    """Our captures of that day (the statement's calendar) that the statement does not show.

    Not for a channel that bills a capture on another day than it was paid (a voucher is billed
    on its clearing day, days after the shopper paid at the bank): those are not looked for.
    """
    if not can_close(channel):
        return []
    start = datetime.combine(day, time(0), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    async with deps.storage.transaction() as uow:
        ours = await uow.payments.paid_between(
            channel.value, start=start.astimezone(UTC), end=end.astimezone(UTC)
        )
    shown = {line.out_trade_no for line in lines if line.kind == "capture"}
    return [
        Break(
            BreakKind.CAPTURE_MISSING,
            payment.out_trade_no,
            payment.provider_trade_no or "",
            payment.amount.amount,
            payment.amount.currency,
            f"we hold it {payment.status.value}, paid at {payment.paid_at}",
        )
        for payment in ours
        if payment.status in CAPTURED and payment.out_trade_no not in shown
    ]


async def _ask_again(deps: Deps, payment: Payment) -> Payment:
    async with deps.locks.hold(
        order_lock_key(payment.order_id),
        ttl_s=deps.policy.lock_ttl_s,
        wait_s=deps.policy.lock_wait_s,
    ) as lease:
        async with deps.storage.transaction() as uow:
            current = await uow.payments.get(payment.id)  # as it is now, under the lock
        return await sync_with_provider(deps, current or payment, lease)


class DailyReconciliation:
    """The worker's daily pass: each channel's recent days, each once its statement is ready.

    A day is taken once it has ended in every channel's time zone, with time for the bill to
    be made (noon UTC of the next day). The last ``LOOKBACK`` days are covered, so a day missed
    while no worker ran, or whose bill came late, is still reconciled. Repairs are idempotent,
    so two workers reconciling the same day do no harm; a statement that is not ready is asked
    for again ``RETRY`` later.
    """

    RETRY = timedelta(minutes=10)
    LOOKBACK = 3

    def __init__(self) -> None:
        self._done: set[tuple[Channel, date]] = set()
        self._retry_at: dict[Channel, datetime] = {}

    async def __call__(self, deps: Deps) -> int:
        """Reconcile what is due; returns how many breaks remain in what it reconciled."""
        now = deps.clock.now()
        latest = (now - timedelta(hours=12)).date() - timedelta(days=1)
        days = [latest - timedelta(days=back) for back in range(self.LOOKBACK - 1, -1, -1)]
        breaks = 0
        for channel in deps.providers:
            if now < self._retry_at.get(channel, now):
                continue
            for day in days:
                if (channel, day) in self._done:
                    continue
                try:
                    result = await reconcile(deps, channel, day)
                except ProviderUnavailable as error:
                    log.info("statement of %s for %s not ready: %s", channel.value, day, error)
                    self._retry_at[channel] = now + self.RETRY
                    break
                except Exception:
                    log.exception("reconciliation of %s for %s failed", channel.value, day)
                    self._retry_at[channel] = now + self.RETRY
                    break
                self._done.add((channel, day))
                breaks += len(result.remaining)
        return breaks
