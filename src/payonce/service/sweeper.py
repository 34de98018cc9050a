"""The sweeper: the safety net under lost poll jobs, over an index of live trades only.

A live trade normally has a poll job (scheduled in the transaction that opened it). If that job
is missing, or its worker stopped taking it, the trade would never be asked about again. The
sweeper takes such trades (live, unchanged for ``Policy.sweep_after``, with no poll job or one
late by ``Policy.sweep_overdue``), asks the provider through the same "ask and apply" function
as every poll, and gives each a poll job again. Its query reads an index that holds live
trades only, so its cost follows them, never the size of the payments table.
"""

from __future__ import annotations

import logging
from datetime import datetime

from payonce.domain.ids import PaymentId
from payonce.domain.payment import Payment
from payonce.service.context import Deps, order_lock_key
from payonce.service.provenance import working_on
from payonce.service.trades import sync_with_provider

log = logging.getLogger(__name__)

BATCH = 100


async def sweep(deps: Deps) -> int:
    """Ask about every unwatched live trade and watch it again; returns how many were swept."""
    if not deps.policy.poll_trades:
        return 0
    swept = 0
    now = deps.clock.now()
    after: tuple[datetime, PaymentId] | None = None
    while True:
        # One pass walks the index once, each batch going on from the last (never from the
        # start again, past the trades it just took).
        async with deps.storage.transaction() as uow:
            batch = await uow.payments.unwatched(
                stale_before=now - deps.policy.sweep_after,
                overdue_before=now - deps.policy.sweep_overdue,
                limit=BATCH,
                after=after,
            )
        if not batch:
            return swept
        after = (batch[-1].updated_at, batch[-1].id)
        for payment in batch:
            try:
                with working_on(payment.order_id, payment.id):
                    await _sweep_one(deps, payment)
                swept += 1
            except Exception:
                log.exception("sweep of payment %s failed", payment.id)
                await _watch_again(deps, payment)


async def _watch_again(deps: Deps, payment: Payment) -> None:
    """A sweep that failed (the lock busy, the provider down) leaves a poll job due later, so
    the trade is neither lost nor retried on every pass ahead of the others."""
    async with deps.storage.transaction() as uow:
        job = await uow.polls.get(payment.id)
        await uow.polls.schedule(
            payment.id,
            payment.order_id,
            due_at=deps.clock.now() + deps.policy.sweep_overdue,
            attempts=job.attempts if job is not None else 0,
        )


async def _sweep_one(deps: Deps, payment: Payment) -> None:
    log.warning("payment %s was not being polled: the sweeper asks its provider", payment.id)
    async with deps.locks.hold(
        order_lock_key(payment.order_id),
        ttl_s=deps.policy.lock_ttl_s,
        wait_s=deps.policy.lock_wait_s,
    ) as lease:
        async with deps.storage.transaction() as uow:
            job = await uow.polls.get(payment.id)
            current = await uow.payments.get(payment.id)  # as it is now, under the lock
        attempts = job.attempts if job is not None else 0
        if current is None:
            return
        if current.is_live:
            current = await sync_with_provider(deps, current, lease)
        async with deps.storage.transaction() as uow:
            if current.is_live:
                await uow.polls.schedule(
                    current.id,
                    current.order_id,
                    due_at=deps.policy.next_poll_at(current.channel, attempts, deps.clock.now()),
                    attempts=attempts,
                )
            else:
                await uow.polls.finish(current.id)
