"""What every service function is handed: the ports, the channels' providers and the policy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from payonce.domain.bank_days import on_a_business_day
from payonce.domain.channels import Channel
from payonce.domain.events import Event, Topic
from payonce.domain.ids import OrderId
from payonce.domain.outcomes import LateCaptures
from payonce.domain.payment import Payment
from payonce.ports.cache import Cache
from payonce.ports.clock import Clock
from payonce.ports.failpoints import Failpoints, NoFailpoints
from payonce.ports.feed import Feed
from payonce.ports.locks import Locks
from payonce.ports.metrics import Metrics, NoMetrics
from payonce.ports.provider import PaymentProvider
from payonce.ports.storage import Storage


def _seconds(*values: float) -> tuple[timedelta, ...]:
    return tuple(timedelta(seconds=value) for value in values)


# The waits between polls of an open trade, per channel: close together while the shopper is
# likely paying, then spaced past the channel's own notification retries (the last wait repeats).
DEFAULT_POLL_SCHEDULES: Mapping[Channel, tuple[timedelta, ...]] = {
    Channel.ALIPAY: _seconds(15, 15, 30, 60, 120, 300, 600),
    Channel.WECHAT: _seconds(15, 15, 30, 60, 120, 300, 600),
    Channel.PAYPAL: _seconds(30, 60, 120, 300, 600),
    # A voucher is paid at a bank and confirmed a business day or more later.
    Channel.BOLETO: _seconds(3600, 4 * 3600, 12 * 3600, 24 * 3600),
}


@dataclass(frozen=True)
class Policy:
    """Timings and bounds of the defences; defaults suit production, tests shorten some."""

    lock_ttl_s: float = 30.0
    lock_wait_s: float = 15.0
    # A reused QR or link must stay valid at least this long for the shopper to use it.
    reuse_margin: timedelta = timedelta(seconds=60)
    # An UNPAID intent older than this lost its creator (a crash); its outcome is unknown.
    intent_grace: timedelta = timedelta(seconds=60)
    # How long (real seconds) an apply waits for another request's intent to become a trade.
    in_flight_wait_s: float = 10.0
    conflict_retries: int = 30
    # Longer than the slowest apply (a lock wait and four provider calls at their time-out).
    idempotency_lease: timedelta = timedelta(seconds=120)
    idempotency_retention: timedelta = timedelta(hours=24)
    # How long a settled order's answer (paid, closed) is cached: it never changes back.
    cache_ttl_s: float = 3600.0
    # How long a live trade's action is cached: short, since closing it makes the entry stale.
    attempt_cache_ttl_s: float = 30.0
    outbox_backoff_first: timedelta = timedelta(seconds=1)
    outbox_backoff_max: timedelta = timedelta(hours=1)
    # How long a relay holds the events it claimed before others may take them again.
    outbox_claim_lease: timedelta = timedelta(seconds=60)
    order_ttl: timedelta = timedelta(minutes=30)
    poll_schedules: Mapping[Channel, tuple[timedelta, ...]] = field(
        default_factory=lambda: dict(DEFAULT_POLL_SCHEDULES)
    )
    # How long a worker holds the poll jobs it claimed before others may take them again.
    poll_claim_lease: timedelta = timedelta(seconds=60)
    # Polls go on this long past a trade's (or its order's) deadline: a payment made at the
    # last moment is still found.
    poll_past_deadline: timedelta = timedelta(hours=1)
    # A shopper's reads ask the provider about an order's open trades at most this often.
    read_repair_interval_s: float = 10.0
    # A WebSocket quiet this long (real seconds) is sent the order as it is: a lost publish is
    # made good, and the client hears its socket is alive (it gives up after 40 s of silence).
    live_heartbeat_s: float = 15.0
    # A capture after its order's deadline (or once it closed): refunded, or the order reopened.
    late_captures: LateCaptures = LateCaptures.REFUND
    # The sweeper takes a live trade unchanged this long whose poll job is missing, or late by
    # ``sweep_overdue`` (its worker is gone): the safety net under lost poll jobs.
    sweep_after: timedelta = timedelta(minutes=10)
    sweep_overdue: timedelta = timedelta(minutes=5)
    # An expiry that could not close every trade yet (a close window, an unknown outcome) is
    # tried again this much later.
    expiry_retry: timedelta = timedelta(minutes=5)
    # How long past a voucher's last payable instant its order stays open, waiting for the
    # bank's clearing to confirm a payment made in time (Boleto: up to 3 business days, and a
    # long holiday weekend on top).
    settle_windows: Mapping[Channel, timedelta] = field(
        default_factory=lambda: {Channel.BOLETO: timedelta(days=7)}
    )
    # Defences that only the chaos harness turns off (PAYONCE_DEFENCES=off, refused in
    # production), to prove its checker sees what they prevent: an open trade reused for the
    # same channel and platform; an older trade closed at its provider before a new one opens
    # (off: it is forgotten, left open); the polls of open trades and the sweeper behind them;
    # the daily reconciliation against the providers' statements.
    reuse_open_trades: bool = True
    close_before_new: bool = True
    poll_trades: bool = True
    reconcile_daily: bool = True

    def settles_by(self, payment: Payment) -> datetime | None:
        """Until when a trade that cannot be withdrawn (a voucher) may still turn into money:
        its last payable instant, plus its bank's clearing window. None for other trades."""
        window = self.settle_windows.get(payment.channel)
        action = payment.action
        if payment.closable or window is None or action is None or action.expires_at is None:
            return None
        return action.expires_at + window

    def poll_wait(self, channel: Channel, polls_made: int) -> timedelta:
        """The wait before the next poll of a trade already polled ``polls_made`` times."""
        schedule = self.poll_schedules[channel]
        return schedule[min(polls_made, len(schedule) - 1)]

    def next_poll_at(self, channel: Channel, polls_made: int, now: datetime) -> datetime:
        """When to poll next: after the channel's wait, and for a voucher on a bank business
        day only (its clearing confirms nothing on weekends and holidays)."""
        at = now + self.poll_wait(channel, polls_made)
        return on_a_business_day(at) if channel is Channel.BOLETO else at


class EventConsumer(Protocol):
    """A destination of outbox events; it must apply each event id at most once.

    One that sets ``relay_only = True`` (it calls out: a provider, a push gateway) is never
    handed an event in the attempt made right after a commit, under the order's lock; the
    relay delivers to it instead."""

    @property
    def name(self) -> str: ...

    @property
    def topics(self) -> frozenset[Topic]:
        """The topics it takes; an event no consumer takes stays undelivered (and visible)."""
        ...

    async def handle(self, event: Event) -> None: ...


@dataclass
class Deps:
    storage: Storage
    clock: Clock
    locks: Locks
    cache: Cache
    feed: Feed
    providers: Mapping[Channel, PaymentProvider]
    policy: Policy = field(default_factory=Policy)
    consumers: Sequence[EventConsumer] = ()
    # Where a shopper returns from a wallet (and falls back to), by order: "…/pay/{order_id}".
    return_url_template: str | None = None
    failpoints: Failpoints = field(default_factory=NoFailpoints)
    metrics: Metrics = field(default_factory=NoMetrics)

    def return_url(self, order_id: OrderId) -> str | None:
        if self.return_url_template is None:
            return None
        return self.return_url_template.format(order_id=order_id)


def order_lock_key(order_id: OrderId) -> str:
    return f"order:{order_id}"
