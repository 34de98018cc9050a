"""Active queries: every open trade is asked about at its provider on its channel's schedule.

The safety net under lost notifications. Each trade has one poll job, scheduled with its
intent; a worker claims due jobs (disjoint between workers), asks the provider through the one
"ask and apply" function (``sync_with_provider``) under the order's lock, and schedules the next
poll until the trade settles (past its deadline, at the slowest pace).
"""

from __future__ import annotations

import logging
from datetime import datetime

from payonce.domain.order import Order
from payonce.domain.payment import Payment
from payonce.ports.storage import PollJob
from payonce.service.context import Deps, order_lock_key
from payonce.service.provenance import working_on
from payonce.service.trades import sync_with_provider

log = logging.getLogger(__name__)

BATCH = 100


async def poll_due(deps: Deps) -> int:
    """Poll every trade whose next poll is due; returns how many were polled."""
    if not deps.policy.poll_trades:
        return 0
    now = deps.clock.now()
    async with deps.storage.transaction() as uow:
        jobs = await uow.polls.claim(now=now, until=now + deps.policy.poll_claim_lease, limit=BATCH)
    polled = 0
    for job in jobs:
        deps.metrics.poll_ran((now - job.due_at).total_seconds())
        try:
            with working_on(job.order_id, job.payment_id):
                await _poll(deps, job)
            polled += 1
        except Exception:
            # Its claim lapses and another pass takes it again: a failed poll is only late.
            log.exception("poll of payment %s failed", job.payment_id)
    return polled


async def _poll(deps: Deps, job: PollJob) -> None:
    async with deps.locks.hold(
        order_lock_key(job.order_id),
        ttl_s=deps.policy.lock_ttl_s,
        wait_s=deps.policy.lock_wait_s,
    ) as lease:
        async with deps.storage.transaction() as uow:
            payment = await uow.payments.get(job.payment_id)
            order = await uow.orders.get(job.order_id)
        if payment is None or order is None:
            next_at = None
        else:
            if payment.is_live:
                payment = await sync_with_provider(deps, payment, lease)
            next_at = _next_poll(deps, payment, order, job.attempts + 1)
        async with deps.storage.transaction() as uow:
            if next_at is None:
                await uow.polls.finish(job.payment_id)
            else:
                await uow.polls.schedule(
                    job.payment_id, job.order_id, due_at=next_at, attempts=job.attempts + 1
                )


def _next_poll(deps: Deps, payment: Payment, order: Order, polls_made: int) -> datetime | None:
    """When to ask again; None once the trade is settled."""
    if not payment.is_live:
        return None
    now = deps.clock.now()
    # A voucher paid at its last moment is confirmed by the bank's clearing days later: its
    # schedule runs through that window. Other trades: to the later of the two deadlines.
    action_expires = payment.action.expires_at if payment.action is not None else None
    deadline = max(
        order.expires_at,
        deps.policy.settles_by(payment) or action_expires or order.expires_at,
    )
    if now > deadline + deps.policy.poll_past_deadline:
        # Expiry closes trades at their deadline, so this one would not close (or its outcome
        # is unknown): it is still asked about, at the slowest pace, until it settles.
        log.warning("payment %s is still open past its deadline", payment.id)
        return now + deps.policy.poll_past_deadline
    return deps.policy.next_poll_at(payment.channel, polls_made, now)
