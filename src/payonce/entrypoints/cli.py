"""The ``payonce`` command line: serve, work, run the sandbox or a local stack, migrate, look
into the outbox, reconcile a day, and show an order's history."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

import typer
import uvicorn
from rich.console import Console

from payonce.adapters.storage.engine import current_revision, open_engine, sqlite_url, upgrade
from payonce.bootstrap import bootstrap, clock_of
from payonce.config import Settings
from payonce.entrypoints import logs
from payonce.entrypoints.chaos_cli import chaos
from payonce.entrypoints.outbox_cli import outbox_app
from payonce.entrypoints.reconcile_cli import (
    AsJson,
    ChannelOpt,
    DayOpt,
    Repair,
    Server,
    run_reconcile,
)
from payonce.entrypoints.show_cli import AsJson as ShowAsJson
from payonce.entrypoints.show_cli import OrderArg, run_show

app = typer.Typer(
    help=(
        "payonce: a payment service where every order is paid exactly once.\n\n"
        "Settings come from PAYONCE_* environment variables (see the README)."
    ),
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(outbox_app, name="outbox")
app.command()(chaos)
console = Console()
# How long a stopping server waits for open requests (a long-poll waits up to 30 s).
GRACEFUL_SHUTDOWN_S = 10

Host = Annotated[str, typer.Option(help="Interface to listen on.")]


def _settings() -> Settings:
    """The settings, read once; the process's logging set up by them."""
    try:
        settings = Settings.load()
    except ValueError as error:  # pydantic's ValidationError, naming every refused setting
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from error
    logs.configure(settings.log_lines, level=settings.log_level)
    return settings


@app.command()
def serve(
    host: Host = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Run payonce. With no settings: the embedded default (SQLite in the data directory,
    in-process lock/cache/push, the provider sandbox at /sandbox and the background loop).
    With PAYONCE_DATABASE_URL: the API only; run `payonce worker` beside it."""
    settings = _settings()
    asyncio.run(_serve(settings, host, port))


async def _serve(settings: Settings, host: str, port: int) -> None:
    from payonce.entrypoints.web.app import create_app

    container = await bootstrap(settings, public_url=f"http://{host}:{port}")
    web = create_app(container, run_relay=settings.embedded)
    console.print(f"[bold]payonce[/bold] listening on [cyan]{container.public_url}[/cyan]")
    console.print(f"  checkout page  {container.public_url}/")
    console.print(f"  API docs       {container.public_url}/docs")
    if container.sandbox is not None:
        console.print(f"  sandbox        {container.public_url}/sandbox (provider simulator)")
    # A key is printed only when it was generated here; one that was set is never shown.
    generated = container.access.api[0] if settings.api_key is None else "(PAYONCE_API_KEY)"
    console.print(f"  API key        {generated}")
    if container.access.admin:
        admin = container.access.admin[0] if settings.admin_key is None else "(PAYONCE_ADMIN_KEY)"
        console.print(f"  admin key      {admin}")
    if settings.embedded:
        console.print(f"  data           {settings.data_dir.resolve()}")
    else:
        console.print("  outbox, polls  in `payonce worker` processes (not here)")
    server = uvicorn.Server(
        uvicorn.Config(
            web,
            host=host,
            port=port,
            log_config=None,  # logging is ours: one redacting formatter for every record
            proxy_headers=True,
            forwarded_allow_ips=settings.forwarded_allow_ips,
            # Requests still open then are cut: every acknowledgement follows its commit, so a
            # cut request loses nothing its caller was told about.
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        )
    )
    try:
        await server.serve()
    finally:
        await container.aclose()


@app.command()
def worker(
    host: Host = "127.0.0.1",
    metrics_port: Annotated[
        int | None,
        typer.Option(help="Serve /metrics (admin key), /livez and /readyz on this port."),
    ] = None,
) -> None:
    """Run a worker: the outbox relay and the polls of open trades. Run as many as you like
    next to the API instances; they share the work through the database."""
    from payonce.entrypoints.worker import run_worker

    settings = _settings()
    metrics_at = (host, metrics_port) if metrics_port is not None else None
    asyncio.run(run_worker(settings, console, metrics_at=metrics_at))


@app.command()
def sandbox(
    host: Host = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8100,
) -> None:
    """Run the provider sandbox alone, at http://HOST:PORT/sandbox (development only)."""
    settings = _settings()
    if settings.env == "production":
        console.print("[red]the sandbox never runs with production settings[/red]")
        raise typer.Exit(2)
    asyncio.run(_sandbox(settings, host, port))


async def _sandbox(settings: Settings, host: str, port: int) -> None:
    from payonce.sandbox.app import Sandbox, sandbox_root_app
    from payonce.sandbox.keys import SandboxKeys

    clock, adjustable = clock_of(settings)
    simulator = Sandbox(
        clock=clock,
        keys=SandboxKeys.load_or_create(settings.data_dir / "sandbox"),
        public_url=f"http://{host}:{port}/sandbox",
        adjustable_clock=adjustable,
    )
    console.print(f"[bold]payonce sandbox[/bold] at [cyan]http://{host}:{port}/sandbox[/cyan]")
    dispatcher = asyncio.create_task(simulator.run_dispatcher())
    server = uvicorn.Server(
        uvicorn.Config(sandbox_root_app(simulator), host=host, port=port, log_config=None)
    )
    try:
        await server.serve()
    finally:
        dispatcher.cancel()
        await simulator.aclose()


@app.command()
def stack(
    apis: Annotated[int, typer.Option(help="API instances.", min=1)] = 2,
    workers: Annotated[int, typer.Option(help="Worker processes.", min=0)] = 1,
    port: Annotated[int, typer.Option(help="The first API instance's port.")] = 8000,
    data_dir: Annotated[str, typer.Option(help="Where servers keep data and logs.")] = (
        ".payonce-stack"
    ),
) -> None:
    """Run the distributed deployment on this machine: PostgreSQL and Redis (from the machine's
    binaries, unless PAYONCE_DATABASE_URL / PAYONCE_REDIS_URL name running ones), the provider
    sandbox, API instances and workers. Ctrl-C stops everything."""
    import os
    import signal
    import time
    from pathlib import Path

    from payonce.entrypoints.stack import Stack, StackPlan

    plan = StackPlan(
        data_dir=Path(data_dir).resolve(),
        database_url=os.environ.get("PAYONCE_DATABASE_URL"),
        redis_url=os.environ.get("PAYONCE_REDIS_URL"),
        api_instances=apis,
        workers=workers,
        port=port,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not every readiness probe

    def interrupted(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # stop the children in order, whatever signal stops the stack

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupted)
    console.print("starting the local stack …")
    with Stack(plan) as running:
        console.print("[bold]payonce stack[/bold] running")
        for url in running.api_urls:
            console.print(f"  API instance   [cyan]{url}[/cyan] (checkout page: /)", soft_wrap=True)
        console.print(f"  workers        {len(running.workers)}")
        console.print(f"  sandbox        {running.sandbox_url}")
        console.print(f"  PostgreSQL     {running.database_url}")
        console.print(f"  Redis          {running.redis_url}")
        console.print(f"  API key        {running.api_key}")
        console.print(f"  logs           {plan.data_dir / 'logs'}")
        try:
            while all(child.process and child.process.poll() is None for child in running.children):
                time.sleep(0.5)
            console.print("[red]a process exited; stopping the stack[/red]")
        except KeyboardInterrupt:
            console.print("stopping …")


@app.command("reconcile")
def reconcile_command(
    channel: ChannelOpt,
    day: DayOpt,
    as_json: AsJson = False,
    repair: Repair = True,
    server: Server = "http://127.0.0.1:8000",
) -> None:
    """Match a channel's statement of a day against payonce's records: repair missed captures,
    report every other break, and exit 1 while breaks remain (3: no statement yet)."""
    run_reconcile(_settings(), channel, day, as_json=as_json, repair=repair, server=server)


@app.command("show")
def show_command(order_id: OrderArg, as_json: ShowAsJson = False) -> None:
    """An order's whole history as a timeline: every status change of it, its payments and
    refunds (from, to, why, and which request or job), the notifications and the events."""
    run_show(_settings(), order_id, as_json=as_json)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration to PAYONCE_DATABASE_URL (or the embedded SQLite file)."""
    settings = _settings()
    asyncio.run(_db_upgrade(settings))


async def _db_upgrade(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = open_engine(settings.database_url or sqlite_url(settings.data_dir / "payonce.db"))
    try:
        await upgrade(engine)
        console.print(f"database at revision {await current_revision(engine)}")
    finally:
        await engine.dispose()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    app()
