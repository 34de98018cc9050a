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
from payonce.service.reconcile import DailyReconciliation
from payonce.service.sweeper import sweep

log = logging.getLogger(__name__)

Pass = Callable[[Deps], Awaitable[int]]

# How often the reconciliation loop looks for a day (or a retry) that is due.
RECONCILE_INTERVAL_S = 60.0


def passes() -> tuple[tuple[str, Pass], ...]:
    """The passes of one loop. Each takes what is due now and returns how many it handled;
    what a pass claimed and could not finish is due again when its claim lapses."""
    return (
        ("outbox relay", outbox.deliver_due),
        ("trade polls", poll_due),
        ("expiry", expire_due),
        ("sweeper", sweep),
    )


async def reconcile_forever(container: Container, interval_s: float) -> None:
    """The daily reconciliation, in its own loop: a statement download or its repairs never
    hold up the relay, the polls or the expiry."""
    daily = DailyReconciliation()
    while True:
        try:
            await daily(container.deps)
        except Exception:
            log.exception("reconciliation pass failed")
        await asyncio.sleep(interval_s)


async def work_forever(container: Container, interval_s: float) -> None:
    """Run every pass, again and again, until cancelled; a failed pass never stops the loop.

    The daily reconciliation repairs missed captures and refunds extra ones, so it is one of
    the defences that ``PAYONCE_DEFENCES=off`` turns off."""
    reconciling = (
        asyncio.create_task(
            reconcile_forever(container, RECONCILE_INTERVAL_S), name="reconciliation"
        )
        if container.settings.defences == "on"
        else None
    )
    try:
        await _passes_forever(container, interval_s)
    finally:
        if reconciling is not None:
            reconciling.cancel()
            await asyncio.gather(reconciling, return_exceptions=True)


async def _passes_forever(container: Container, interval_s: float) -> None:
    loop = passes()
    while True:
        for name, work in loop:
            try:
                await work(container.deps)
            except Exception:
                log.exception("%s pass failed", name)
        await asyncio.sleep(interval_s)


@contextlib.asynccontextmanager
async def background(
    container: Container, *, interval_s: float, relay: bool = True
) -> AsyncIterator[None]:
    """Run the loops while inside. ``relay=False``: `payonce worker` processes relay and poll."""
    tasks = []
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
