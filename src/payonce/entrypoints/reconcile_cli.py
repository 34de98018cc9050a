"""``payonce reconcile``: one channel's statement of one day against payonce's records."""

from __future__ import annotations

import asyncio
import json
from datetime import date
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from payonce.bootstrap import bootstrap
from payonce.config import Settings
from payonce.domain.channels import Channel
from payonce.errors import ProviderUnavailable
from payonce.service.provenance import caused_by
from payonce.service.reconcile import Reconciliation, reconcile

console = Console()

ChannelOpt = Annotated[Channel, typer.Option("--channel", help="The channel to reconcile.")]
DayOpt = Annotated[
    str, typer.Option("--date", help="The statement's day (YYYY-MM-DD, the channel's zone).")
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
Repair = Annotated[
    bool,
    typer.Option(
        "--repair/--no-repair", help="Apply missed captures (by asking the provider again)."
    ),
]
Server = Annotated[
    str,
    typer.Option(
        "--server",
        help="The embedded server whose mounted sandbox to ask (development, when "
        "PAYONCE_SANDBOX_URL is unset).",
    ),
]


def run_reconcile(
    settings: Settings,
    channel: Channel,
    day_text: str,
    *,
    as_json: bool,
    repair: bool,
    server: str,
) -> None:
    try:
        day = date.fromisoformat(day_text)
    except ValueError as error:
        console.print(f"[red]--date {day_text!r} is not a YYYY-MM-DD date[/red]")
        raise typer.Exit(2) from error
    if settings.sandbox_mounted:
        # That sandbox lives in the server's process: ask it there, not a new empty one.
        settings = settings.model_copy(
            update={"sandbox_url": f"{server.rstrip('/')}/sandbox", "mount_sandbox": False}
        )
    try:
        result = asyncio.run(_reconcile(settings, channel, day, repair=repair))
    except ProviderUnavailable as error:
        console.print(f"[red]no statement of {channel.value} for {day}: {error}[/red]")
        raise typer.Exit(3) from error
    if as_json:
        print(json.dumps(result.as_json(), indent=2))
    else:
        _print_table(result)
    if result.remaining:
        raise typer.Exit(1)


async def _reconcile(
    settings: Settings, channel: Channel, day: date, *, repair: bool
) -> Reconciliation:
    container = await bootstrap(settings, public_url=settings.public_url or "http://127.0.0.1")
    try:
        with caused_by("cli reconcile"):
            return await reconcile(container.deps, channel, day, repair=repair)
    finally:
        await container.aclose()


def _print_table(result: Reconciliation) -> None:
    summary = (
        f"{result.channel.value} {result.day}: {result.lines} lines, {result.matched} matched, "
        f"{len(result.breaks) - len(result.remaining)} repaired, "
        f"{len(result.remaining)} to look at"
    )
    console.print(summary, highlight=False)
    if not result.breaks:
        return
    table = Table("break", "out_trade_no", "reference", "amount", "repaired", "detail")
    for found in result.breaks:
        table.add_row(
            found.kind.value,
            found.out_trade_no,
            found.reference,
            f"{found.amount} {found.currency}",
            "yes" if found.repaired else "[red]no[/red]",
            found.detail,
        )
    console.print(table)
