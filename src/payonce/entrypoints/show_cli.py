"""``payonce show ORDER_ID``: an order's whole history as a readable timeline (or JSON)."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from payonce.adapters.storage.engine import open_engine, sqlite_url
from payonce.adapters.storage.sql import SqlStorage
from payonce.config import Settings
from payonce.domain.ids import OrderId
from payonce.errors import OrderNotFound, StorageUnavailable
from payonce.service.timeline import Timeline, order_timeline

# Never wrapped: operators copy ids out of these lines, and tests read them whole.
console = Console(soft_wrap=True, highlight=False)

OrderArg = Annotated[str, typer.Argument(help="The order's id (ord_…).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a timeline.")]


def run_show(settings: Settings, order_id: str, *, as_json: bool) -> None:
    """Print the order's timeline; exit 2 if there is no such order, 1 if no database."""
    if settings.database_url is None:
        path = settings.data_dir / "payonce.db"
        if not path.exists():
            console.print(
                f"[red]no database at {escape(str(path))}: has `payonce serve` run here?[/red]"
            )
            raise typer.Exit(1)
        url = sqlite_url(path)
    else:
        url = settings.database_url
    try:
        timeline = asyncio.run(_read(url, OrderId(order_id)))
    except StorageUnavailable as error:
        console.print(
            f"[red]{escape(str(error))}[/red] (is the schema current? `payonce db upgrade`)"
        )
        raise typer.Exit(1) from error
    if timeline is None:
        console.print(f"[red]no order {escape(order_id)}[/red]")
        raise typer.Exit(2)
    if as_json:
        typer.echo(json.dumps(timeline_json(timeline), indent=2, ensure_ascii=False))
    else:
        _print(timeline)


async def _read(url: str, order_id: OrderId) -> Timeline | None:
    storage = SqlStorage(open_engine(url))
    try:
        return await order_timeline(storage, order_id)
    except OrderNotFound:
        return None
    finally:
        await storage.close()


def _when(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def timeline_json(timeline: Timeline) -> dict[str, Any]:
    """The same as the timeline, as JSON. The order's client_secret is never part of it."""
    order = timeline.order
    return {
        "order": {
            "id": order.id,
            "amount": order.total.amount,
            "currency": order.total.currency,
            "status": order.status.value,
            "status_version": order.version,
            "expires_at": _iso(order.expires_at),
            "paid_payment_id": order.paid_payment_id,
            "created_at": _iso(order.created_at),
        },
        "payments": [
            {
                "id": p.id,
                "channel": p.channel.value,
                "platform": p.platform.value,
                "out_trade_no": p.out_trade_no,
                "provider_trade_no": p.provider_trade_no,
                "amount": p.amount.amount,
                "currency": p.amount.currency,
                "status": p.status.value,
                "applied": p.applied,
                "created_at": _iso(p.created_at),
                "paid_at": _iso(p.paid_at),
            }
            for p in timeline.payments
        ],
        "refunds": [
            {
                "refund_no": r.refund_no,
                "payment_id": r.payment_id,
                "amount": r.amount.amount,
                "currency": r.amount.currency,
                "reason": r.reason.value,
                "status": r.status.value,
                "requested_at": _iso(r.requested_at),
                "completed_at": _iso(r.completed_at),
            }
            for r in timeline.refunds
        ],
        "timeline": [
            {
                "at": _iso(m.at),
                "kind": m.kind,
                "subject": m.subject,
                "what": m.what,
                "why": m.why,
                "cause": m.cause,
            }
            for m in timeline.moments()
        ],
    }


def _print(timeline: Timeline) -> None:
    order = timeline.order
    total = f"{order.total.to_decimal_string()} {order.total.currency}"
    console.print(f"[bold]order {order.id}[/bold]")
    console.print(f"  amount          {total}")
    console.print(f"  status          [bold]{order.status.value}[/bold]")
    console.print(f"  status_version  {order.version}")
    console.print(f"  expires_at      {_when(order.expires_at)}")
    if order.paid_payment_id is not None:
        console.print(f"  paid by         {order.paid_payment_id}")
    console.print("[bold]payments[/bold]" if timeline.payments else "no payments")
    for p in timeline.payments:
        applied = "  applied" if p.applied else ""
        console.print(
            f"  {p.id}  {p.channel.value:<7} {p.platform.value:<4} {p.out_trade_no}  "
            f"{p.status.value}{applied}"
        )
    if timeline.refunds:
        console.print("[bold]refunds[/bold]")
    for r in timeline.refunds:
        amount = f"{r.amount.to_decimal_string()} {r.amount.currency}"
        console.print(
            f"  {r.refund_no}  of {r.payment_id}  {amount}  {r.reason.value}  {r.status.value}"
        )
    console.print("[bold]timeline[/bold]")
    for m in timeline.moments():
        line = f"  {_when(m.at)}  {m.kind:<12} {m.subject}  {m.what}"
        if m.why:
            line += f"  — {m.why}"
        if m.cause:
            line += f"  [{m.cause}]"
        console.print(line, markup=False)
