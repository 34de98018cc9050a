"""The `payonce worker` process: the distributed deployment's background loops, until stopped."""

from __future__ import annotations

import asyncio
import signal

import uvicorn
from rich.console import Console

from payonce.bootstrap import bootstrap
from payonce.config import Settings
from payonce.entrypoints.background import BACKLOG_INTERVAL_S, measure_forever, work_forever
from payonce.entrypoints.web.app import create_operations_app

# Workers make no links for shoppers; this only fills the container's field when unset.
_UNUSED_PUBLIC_URL = "http://127.0.0.1:8000"


async def run_worker(
    settings: Settings, console: Console, *, metrics_at: tuple[str, int] | None = None
) -> None:
    """Relay the outbox and poll open trades until SIGTERM or SIGINT; workers claim disjoint
    events and jobs. ``metrics_at`` (host, port): serve /metrics (admin key), /livez and
    /readyz there, for the polls, the relay and the refunds this process does."""
    container = await bootstrap(settings, public_url=settings.public_url or _UNUSED_PUBLIC_URL)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    work = [
        asyncio.create_task(
            work_forever(container, settings.background_interval_s), name="due-work"
        ),
        asyncio.create_task(measure_forever(container, BACKLOG_INTERVAL_S), name="backlog"),
    ]
    server = None
    if metrics_at is not None:
        host, port = metrics_at
        app = create_operations_app(container)
        server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_config=None))
        serving = asyncio.create_task(server.serve(), name="metrics")
    console.print("[bold]payonce worker[/bold] running: outbox relay, trade polls", highlight=False)
    if metrics_at is not None:
        console.print(f"  metrics        http://{metrics_at[0]}:{metrics_at[1]}/metrics")
    try:
        await stop.wait()
    finally:
        for task in work:
            task.cancel()
        await asyncio.gather(*work, return_exceptions=True)
        if server is not None:
            server.should_exit = True
            await asyncio.gather(serving, return_exceptions=True)
        await container.aclose()
        console.print("payonce worker stopped", highlight=False)
