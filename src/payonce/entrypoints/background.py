"""The background loops: the outbox relay, and (where mounted) the sandbox's notification sender."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from payonce.bootstrap import Container
from payonce.service import outbox

log = logging.getLogger(__name__)


async def relay_forever(container: Container, interval_s: float) -> None:
    """Deliver due outbox events until cancelled; one failure never stops the loop."""
    while True:
        try:
            await outbox.deliver_due(container.deps)
        except Exception:
            log.exception("outbox relay pass failed")
        await asyncio.sleep(interval_s)


@contextlib.asynccontextmanager
async def background(
    container: Container, *, interval_s: float, relay: bool = True
) -> AsyncIterator[None]:
    """Run the loops while inside. ``relay=False``: a `payonce worker` process relays instead."""
    tasks = []
    if relay:
        tasks.append(asyncio.create_task(relay_forever(container, interval_s), name="outbox-relay"))
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
