"""The outbox relay: delivers committed events to their consumers until each one is acknowledged."""

from __future__ import annotations

import logging
from datetime import timedelta

from payonce.domain.ids import OrderId
from payonce.ports.storage import OutboxEntry
from payonce.service.context import Deps

log = logging.getLogger(__name__)

BATCH = 100


def next_attempt_delay(deps: Deps, attempts: int) -> timedelta:
    """Exponential backoff from the first delay, capped."""
    policy = deps.policy
    delay = policy.outbox_backoff_first * (1 << min(attempts, 30))
    return min(delay, policy.outbox_backoff_max)


async def deliver_due(deps: Deps, *, order_id: OrderId | None = None) -> int:
    """Deliver every due event (of one order, or all); returns how many were acknowledged.

    Each relay claims what it delivers for a lease, so relays running at once (the immediate
    attempt after a commit, the background loop, other workers) take disjoint events; one that
    dies mid-way leaves its events due again when the lease ends. Consumers still deduplicate
    on the event id, so a delivery repeated after a lapsed lease is a no-op, not a repeat.
    """
    now = deps.clock.now()
    async with deps.storage.transaction() as uow:
        entries = await uow.outbox.claim(
            now=now, until=now + deps.policy.outbox_claim_lease, limit=BATCH, order_id=order_id
        )
    delivered = 0
    for entry in entries:
        if await _deliver(deps, entry):
            delivered += 1
    return delivered


async def _deliver(deps: Deps, entry: OutboxEntry) -> bool:
    event = entry.event
    consumers = [c for c in deps.consumers if event.topic in c.topics]
    try:
        if not consumers:
            # Marking it delivered would lose it: whoever comes to take this topic must see it.
            raise LookupError(f"no consumer takes {event.topic.value}")
        for consumer in consumers:
            await consumer.handle(event)
    except Exception as error:
        log.warning("delivery of %s failed (attempt %d): %s", event.id, entry.attempts + 1, error)
        async with deps.storage.transaction() as uow:
            await uow.outbox.mark_failed(
                event.id,
                next_attempt_at=deps.clock.now() + next_attempt_delay(deps, entry.attempts),
                error=f"{type(error).__name__}: {error}"[:500],
            )
        return False
    async with deps.storage.transaction() as uow:
        return await uow.outbox.mark_delivered(event.id, now=deps.clock.now())
