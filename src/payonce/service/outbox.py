"""The outbox relay: delivers committed events to their consumers until each one is acknowledged.

Delivery is tracked per consumer. An event counts as delivered once every consumer of its topic
has acknowledged it; one that acknowledged is not asked again when another (an order service
that is down for an hour) keeps the event due, so its retries cost that consumer alone.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from payonce.domain.events import Topic
from payonce.domain.ids import EventId, OrderId
from payonce.ports.storage import OutboxEntry, Storage
from payonce.service.context import Deps, EventConsumer
from payonce.service.provenance import working_on

log = logging.getLogger(__name__)

BATCH = 100  # at most this many events per pass
# Events claimed and delivered at once: a slow consumer (a webhook that waits out its time-out)
# must not keep a claim past its lease, when other relays would take it again.
CONCURRENCY = 8


def next_attempt_delay(deps: Deps, attempts: int) -> timedelta:
    """Exponential backoff from the first delay, capped."""
    policy = deps.policy
    delay = policy.outbox_backoff_first * (1 << min(attempts, 30))
    return min(delay, policy.outbox_backoff_max)


async def deliver_due(deps: Deps, *, order_id: OrderId | None = None, inline: bool = False) -> int:
    """Deliver every due event (of one order, or all); returns how many were acknowledged.

    Each relay claims what it delivers for a lease, so relays running at once (the immediate
    attempt after a commit, the background loop, other workers) take disjoint events; one that
    dies mid-way leaves its events due again when the lease ends. Consumers still deduplicate
    on the event id, so a delivery repeated after a lapsed lease is a no-op, not a repeat.

    ``inline`` is the attempt made right after a commit, while the caller may hold the order's
    lock: relay-only consumers (a provider call, an outside gateway) are left out of it, and
    the event stays due at once for the relay to take to them.
    """
    delivered = taken = 0
    while taken < BATCH:
        # A few at a time, each claim's lease covering one round of attempts: events claimed
        # long before their turn would outlive their lease and be taken by another relay.
        now = deps.clock.now()
        async with deps.storage.transaction() as uow:
            entries = await uow.outbox.claim(
                now=now,
                until=now + deps.policy.outbox_claim_lease,
                limit=CONCURRENCY,
                order_id=order_id,
            )
        outcomes = await asyncio.gather(
            *(_deliver(deps, e, inline=inline) for e in entries), return_exceptions=True
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                # The others finished first; what this one claimed is due again after its lease.
                raise outcome
        delivered += sum(1 for outcome in outcomes if outcome is True)
        taken += len(entries)
        if len(entries) < CONCURRENCY:
            break
    return delivered


def relay_only(consumer: EventConsumer) -> bool:
    return bool(getattr(consumer, "relay_only", False))


async def _deliver(deps: Deps, entry: OutboxEntry, *, inline: bool) -> bool:
    with working_on(entry.event.order_id, entry.event.payment_id):
        return await _deliver_to_consumers(deps, entry, inline=inline)


async def _deliver_to_consumers(deps: Deps, entry: OutboxEntry, *, inline: bool) -> bool:
    event = entry.event
    takers = [c for c in deps.consumers if event.topic in c.topics]
    if not takers:
        # Marking it delivered would lose it: whoever comes to take this topic must see it.
        await _failed(deps, entry, f"LookupError: no consumer takes {event.topic.value}")
        return False
    outcomes: dict[str, str | None] = {}
    for consumer in takers:
        if consumer.name in entry.acknowledged_by or (inline and relay_only(consumer)):
            continue
        try:
            await consumer.handle(event)
        except Exception as error:
            outcomes[consumer.name] = f"{type(error).__name__}: {error}"[:500]
            log.warning(
                "delivery of %s to %s failed (attempt %d): %s",
                event.id,
                consumer.name,
                entry.attempts + 1,
                error,
            )
        else:
            outcomes[consumer.name] = None
            lag = deps.clock.now() - event.occurred_at
            deps.metrics.outbox_delivered(consumer.name, lag.total_seconds())
    failures = [f"{name}: {error}" for name, error in outcomes.items() if error is not None]
    now = deps.clock.now()
    async with deps.storage.transaction() as uow:
        acknowledged = {name for name, error in outcomes.items() if error is None}
        if any(c.name in entry.acknowledged_by for c in takers):
            # Some were skipped as acknowledged when claimed: read the event as it is now,
            # since a replay meanwhile may have reopened one. (A first delivery skips none as
            # acknowledged, so it needs no second read: the notify path's inline attempt, even
            # when it leaves relay-only consumers to the relay.)
            current = await uow.outbox.get(event.id, lock=True)
            if current is not None:
                acknowledged |= current.acknowledged_by
        await uow.outbox.record_consumers(event.id, outcomes, now=now)
        waiting = sorted(c.name for c in takers if c.name not in acknowledged)
        if not failures and not waiting:
            return await uow.outbox.mark_delivered(event.id, now=now)
        # Reopened by a replay while we delivered, or left for the relay by the inline
        # attempt: due again at once, for those consumers.
        why = "left for the relay" if inline else "replayed while delivering"
        await uow.outbox.mark_failed(
            event.id,
            next_attempt_at=now + next_attempt_delay(deps, entry.attempts) if failures else now,
            error="; ".join(failures or [f"{why}: {', '.join(waiting)}"])[:500],
        )
        return False


async def _failed(deps: Deps, entry: OutboxEntry, error: str) -> None:
    now = deps.clock.now()
    async with deps.storage.transaction() as uow:
        await uow.outbox.mark_failed(
            entry.event.id,
            next_attempt_at=now + next_attempt_delay(deps, entry.attempts),
            error=error,
        )


# What operators do (`payonce outbox`): they need storage and the time, not a running service.


async def browse(
    storage: Storage,
    *,
    undelivered_only: bool = True,
    order_id: OrderId | None = None,
    topic: Topic | None = None,
    limit: int = 50,
) -> list[OutboxEntry]:
    """Undelivered events soonest due first, or (``undelivered_only=False``) all, newest first."""
    async with storage.transaction() as uow:
        return await uow.outbox.search(
            undelivered_only=undelivered_only, limit=limit, order_id=order_id, topic=topic
        )


async def find(storage: Storage, event_id: EventId) -> OutboxEntry | None:
    async with storage.transaction() as uow:
        return await uow.outbox.get(event_id)


async def replay(
    storage: Storage, event_id: EventId, *, now: datetime, consumer: str | None = None
) -> bool:
    """Make an event due now again, for every consumer or one; False if there is no such event.

    Safe at any time: consumers apply each event id once, so a replay can only repeat a
    delivery, never its effect.
    """
    async with storage.transaction() as uow:
        return await uow.outbox.replay(event_id, now=now, consumer=consumer)


async def measure_backlog(deps: Deps) -> None:
    """Set the backlog gauges: undelivered events, and the oldest one's age (0 when none)."""
    async with deps.storage.transaction() as uow:
        waiting, oldest = await uow.outbox.backlog()
    now = deps.clock.now()
    deps.metrics.outbox_backlog(waiting, (now - (oldest or now)).total_seconds())
