"""``payonce outbox``: what the outbox holds for the order service and other consumers, and
replaying an event to them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table

from payonce.adapters.clock import SystemClock
from payonce.adapters.storage.engine import open_engine, sqlite_url
from payonce.adapters.storage.sql import SqlStorage
from payonce.config import Settings
from payonce.domain.events import Topic
from payonce.domain.ids import EventId, OrderId
from payonce.errors import StorageUnavailable
from payonce.ports.storage import ConsumerDelivery, OutboxEntry
from payonce.service import outbox

outbox_app = typer.Typer(
    help=(
        "The outbox: payment events waiting for (or delivered to) the order service and the "
        "other consumers."
    ),
    no_args_is_help=True,
)
console = Console()

T = TypeVar("T")

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
EventArg = Annotated[str, typer.Argument(help="The event id (evt_…), also the webhook-id.")]


def _settings() -> Settings:
    try:
        return Settings.load()
    except ValueError as error:  # pydantic's ValidationError, naming every refused setting
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from error


def _run(work: Callable[[SqlStorage], Awaitable[T]]) -> T:
    """Run ``work`` against the database the settings name (never creating or migrating it)."""
    settings = _settings()
    if settings.database_url is None:
        path = settings.data_dir / "payonce.db"
        if not path.exists():
            console.print(f"[red]no database at {path}: has `payonce serve` run here?[/red]")
            raise typer.Exit(1)
        url = sqlite_url(path)
    else:
        url = settings.database_url

    async def run() -> T:
        storage = SqlStorage(open_engine(url))
        try:
            return await work(storage)
        finally:
            await storage.close()

    try:
        return asyncio.run(run())
    except StorageUnavailable as error:
        console.print(f"[red]{error}[/red] (is the schema current? `payonce db upgrade`)")
        raise typer.Exit(1) from error


def _when(moment: datetime | None) -> str:
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%SZ")


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _consumer_json(state: ConsumerDelivery) -> dict[str, Any]:
    return {
        "consumer": state.consumer,
        "attempts": state.attempts,
        "last_attempt_at": _iso(state.last_attempt_at),
        "delivered_at": _iso(state.delivered_at),
        "last_error": state.last_error,
    }


def entry_json(entry: OutboxEntry, *, payload: bool = False) -> dict[str, Any]:
    event = entry.event
    found: dict[str, Any] = {
        "event_id": event.id,
        "topic": event.topic.value,
        "order_id": event.order_id,
        "payment_id": event.payment_id,
        "occurred_at": _iso(event.occurred_at),
        "attempts": entry.attempts,
        "next_attempt_at": None if entry.delivered_at else _iso(entry.next_attempt_at),
        "delivered_at": _iso(entry.delivered_at),
        "last_error": entry.last_error,
        "consumers": [_consumer_json(state) for state in entry.consumers],
    }
    if payload:
        found["payload"] = event.payload
    return found


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, sort_keys=True))


@outbox_app.command("list")
def list_events(
    every: Annotated[
        bool, typer.Option("--all", help="Delivered events too (newest first).")
    ] = False,
    order: Annotated[str | None, typer.Option("--order", help="Only this order's events.")] = None,
    topic: Annotated[Topic | None, typer.Option(help="Only this topic.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many events.", min=1)] = 50,
    as_json: AsJson = False,
) -> None:
    """Events not yet acknowledged by every consumer, soonest retry first (--all: every event,
    newest first)."""
    entries = _run(
        lambda storage: outbox.browse(
            storage,
            undelivered_only=not every,
            order_id=OrderId(order) if order else None,
            topic=topic,
            limit=limit,
        )
    )
    if as_json:
        _print_json([entry_json(entry) for entry in entries])
        return
    if not entries:
        console.print("no events" if every else "nothing undelivered")
        return
    table = Table(title="outbox" if every else "undelivered events")
    # Ids are what an operator copies into `show` and `replay`: never shortened.
    table.add_column("event", no_wrap=True, min_width=24)
    table.add_column("topic", no_wrap=True)
    table.add_column("order", no_wrap=True, min_width=24)
    table.add_column("tries", justify="right")
    table.add_column("[green]delivered[/green] / [yellow]next try[/yellow]", no_wrap=True)
    table.add_column("last error", overflow="fold")
    for entry in entries:
        if entry.delivered_at is not None:
            state = f"[green]{_when(entry.delivered_at)}[/green]"
        else:
            state = f"[yellow]{_when(entry.next_attempt_at)}[/yellow]"
        table.add_row(
            entry.event.id,
            entry.event.topic.value,
            entry.event.order_id,
            str(entry.attempts),
            state,
            entry.last_error or "",
        )
    console.print(table)


@outbox_app.command()
def show(event_id: EventArg, as_json: AsJson = False) -> None:
    """One event: its payload, attempts, last error, next attempt, when it was delivered, and
    each consumer's side."""
    entry = _run(lambda storage: outbox.find(storage, EventId(event_id)))
    if entry is None:
        console.print(f"[red]no event {event_id}[/red]")
        raise typer.Exit(1)
    if as_json:
        _print_json(entry_json(entry, payload=True))
        return
    event = entry.event
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    facts.add_row("event", event.id)
    facts.add_row("topic", event.topic.value)
    facts.add_row("order", event.order_id)
    facts.add_row("payment", event.payment_id)
    facts.add_row("occurred", _when(event.occurred_at))
    facts.add_row("attempts", str(entry.attempts))
    if entry.delivered_at is not None:
        facts.add_row("delivered", f"[green]{_when(entry.delivered_at)}[/green]")
    else:
        facts.add_row("delivered", "[yellow]not yet[/yellow]")
        facts.add_row("next attempt", _when(entry.next_attempt_at))
    facts.add_row("last error", entry.last_error or "")
    console.print(facts)
    console.print(Syntax(json.dumps(event.payload, indent=2, sort_keys=True), "json"))
    consumers = Table(title="consumers")
    for column in ("consumer", "tries", "last try", "acknowledged", "last error"):
        consumers.add_column(column)
    for state in entry.consumers:
        consumers.add_row(
            state.consumer,
            str(state.attempts),
            _when(state.last_attempt_at),
            _when(state.delivered_at) or "[yellow]no[/yellow]",
            state.last_error or "",
        )
    if entry.consumers:
        console.print(consumers)
    else:
        console.print("no consumer has been tried yet")


@outbox_app.command()
def replay(
    event_id: EventArg,
    consumer: Annotated[
        str | None,
        typer.Option(help="Only to this consumer (e.g. order_webhook); default: every one."),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Deliver an event again, now: to every consumer, or to one. Safe: consumers apply each
    event id once (the order service deduplicates on webhook-id). A running relay (the server
    or `payonce worker`) sends it within its next pass."""
    replayed = _run(
        lambda storage: outbox.replay(
            storage, EventId(event_id), now=SystemClock().now(), consumer=consumer
        )
    )
    if as_json:
        _print_json({"event_id": event_id, "replayed": replayed, "consumer": consumer})
    elif replayed:
        console.print(f"{event_id} is due again for {consumer or 'every consumer'}")
    else:
        console.print(f"[red]no event {event_id}[/red]")
    if not replayed:
        raise typer.Exit(1)
