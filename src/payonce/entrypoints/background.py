"""The background loops: outbox relay, trade polls, expiry, the sweeper and the daily
reconciliation, and (where mounted) the sandbox's sender."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from payonce.bootstrap import Container
from payonce.service import outbox
from payonce.service.context import Deps
from payonce.service.expiry import expire_due
from payonce.service.polling import poll_due
from payonce.service.provenance import caused_by
from payonce.service.reconcile import DailyReconciliation
from payonce.service.sweeper import sweep

log = logging.getLogger(__name__)

Pass = Callable[[Deps], Awaitable[int]]

# How often the reconciliation loop looks for a day (or a retry) that is due.
RECONCILE_INTERVAL_S = 60.0
# How often the outbox's backlog is measured for the metrics (a read of up to 1000 rows).
BACKLOG_INTERVAL_S = 15.0


def passes() -> tuple[tuple[str, Pass], ...]:
    """The passes of one loop. Each takes what is due now and returns how many it handled;
    what a pass claimed and could not finish is due again when its claim lapses."""
    return (
        ("outbox relay", outbox.deliver_due),
        ("trade polls", poll_due),
        ("expiry", expire_due),
        ("sweeper", sweep),
    )


# What the audit trail names as the cause of each pass's changes.
CAUSES = {
    "outbox relay": "job relay",
    "trade polls": "job poll",
    "expiry": "job expiry",
    "sweeper": "job sweeper",
}


async def reconcile_forever(container: Container, interval_s: float) -> None:
    """The daily reconciliation, in its own loop: a statement download or its repairs never
    hold up the relay, the polls or the expiry."""
    daily = DailyReconciliation()
    while True:
        try:
            with caused_by("job reconcile"):
                await daily(container.deps)
        except Exception:
            log.exception("reconciliation pass failed")
        await asyncio.sleep(interval_s)


async def measure_forever(container: Container, interval_s: float) -> None:
    """The outbox backlog's gauges (how many wait, the oldest's age), now and then."""
    while True:
        try:
            await outbox.measure_backlog(container.deps)
        except Exception:
            log.exception("outbox backlog not measured")
        await asyncio.sleep(interval_s)


async def work_forever(container: Container, interval_s: float) -> None:
    """Run every pass, again and again, until cancelled; a failed pass never stops the loop.

    The daily reconciliation repairs missed captures and refunds extra ones, so it is one of
    the defences that ``PAYONCE_DEFENCES=off`` turns off (its policy flag)."""
    beside = []
    if container.deps.policy.reconcile_daily:
        beside.append(
            asyncio.create_task(
                reconcile_forever(container, RECONCILE_INTERVAL_S), name="reconciliation"
            )
        )
    try:
        await _passes_forever(container, interval_s)
    finally:
        for task in beside:
            task.cancel()
        await asyncio.gather(*beside, return_exceptions=True)


async def _passes_forever(container: Container, interval_s: float) -> None:
    loop = passes()
    while True:
        for name, work in loop:
            try:
                with caused_by(CAUSES.get(name, f"job {name}")):
                    await work(container.deps)
            except Exception:
                log.exception("%s pass failed", name)
        await asyncio.sleep(interval_s)


@contextlib.asynccontextmanager
async def background(
    container: Container, *, interval_s: float, relay: bool = True
) -> AsyncIterator[None]:
    """Run the loops while inside. ``relay=False``: `payonce worker` processes relay and poll."""
    # Every process measures the backlog, so each one's /metrics shows it.
    tasks = [asyncio.create_task(measure_forever(container, BACKLOG_INTERVAL_S), name="backlog")]
    if relay:
        tasks.append(asyncio.create_task(work_forever(container, interval_s), name="due-work"))
    if container.sandbox is not None:
        tasks.append(
            asyncio.create_task(container.sandbox.run_dispatcher(), name="sandbox-notifier")
        )
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
