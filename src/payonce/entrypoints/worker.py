"""The `payonce worker` process: the distributed deployment's background loops, until stopped."""

from __future__ import annotations

import asyncio
import signal

from rich.console import Console

from payonce.bootstrap import bootstrap
from payonce.config import Settings
from payonce.entrypoints.background import work_forever

# Workers make no links for shoppers; this only fills the container's field when unset.
_UNUSED_PUBLIC_URL = "http://127.0.0.1:8000"


async def run_worker(settings: Settings, console: Console) -> None:
    """Relay the outbox and poll open trades until SIGTERM or SIGINT; workers claim disjoint
    events and jobs."""
    container = await bootstrap(settings, public_url=settings.public_url or _UNUSED_PUBLIC_URL)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    relay = asyncio.create_task(
        work_forever(container, settings.background_interval_s), name="due-work"
    )
    console.print("[bold]payonce worker[/bold] running: outbox relay, trade polls", highlight=False)
    try:
        await stop.wait()
    finally:
        relay.cancel()
        await asyncio.gather(relay, return_exceptions=True)
        await container.aclose()
        console.print("payonce worker stopped", highlight=False)
