"""The background loops: outbox relay and trade polls, and (where mounted) the sandbox's sender."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from payonce.bootstrap import Container
from payonce.service import outbox
from payonce.service.polling import poll_due

log = logging.getLogger(__name__)


async def work_forever(container: Container, interval_s: float) -> None:
    """Deliver due outbox events and poll due trades until cancelled; a failed pass never stops
    the loop (what it claimed is due again when its lease ends)."""
    while True:
        for name, work in (("outbox relay", outbox.deliver_due), ("trade polls", poll_due)):
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
