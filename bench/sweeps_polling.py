"""The provider load of the delayed-poll schedule against a plain fixed-interval scan: the same
shoppers, on the same injected clock, against the embedded sandbox, each way counted by the
sandbox's own call log.

One payonce per schedule, started as the integration tests start it (the app on a loopback
port, SQLite, the sandbox mounted, an ``AdjustableClock`` shared with the sandbox), with every
notification dropped, so that polls alone find the payments. Per channel, ``trades`` shoppers
each open a trade (create an order, apply, PC) at an instant drawn in the first 10 minutes, and
pay it after a delay drawn from a seeded distribution (most within the first minutes), or never.

* **delayed**: payonce's own poll jobs, ``payonce.service.polling.poll_due``, on each channel's
  schedule (``Policy.poll_wait``), run whenever a job is due.
* **fixed**: every X seconds (X = the channel's first wait), every open trade of the channel is
  asked about through ``payonce.service.trades.sync_with_provider`` under the order's lock, as
  a poll does, until it settles or its deadline (the poll jobs' own rule: the order's or the
  action's deadline, plus ``Policy.poll_past_deadline``).

Time jumps from event to event (an open, a payment, a due poll or scan): a poll runs at the
instant it is due, as a worker with no lag would run it. Provider calls are counted per trade
after its create; time to detection is from when the provider could first answer "paid" (the
capture in its ledger; PayPal: the buyer's approval, which payonce must capture) to when our
record turned PAID.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import shutil
import socket
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from rich.console import Console
from sqlalchemy import func, select

from payonce.adapters.clock import AdjustableClock
from payonce.adapters.storage.tables import orders, poll_jobs
from payonce.bootstrap import Container, bootstrap
from payonce.config import Settings
from payonce.domain.channels import Channel
from payonce.domain.ids import PaymentId
from payonce.entrypoints.web.app import create_app
from payonce.sandbox.app import Sandbox
from payonce.sandbox.faults import FaultSettings
from payonce.sandbox.keys import SandboxKeys
from payonce.service.context import Deps, Policy, order_lock_key
from payonce.service.expiry import expire_due
from payonce.service.polling import BATCH, poll_due
from payonce.service.sweeper import sweep
from payonce.service.trades import sync_with_provider

from .load import percentile
from .sweeps_service import counted_logs, detach

START = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)  # a Tuesday: 09:00 in São Paulo
API_KEY = "sk_bench_sweeps"
CART = [{"sku": "SKU-1", "name": "Tea", "quantity": 2, "unit_amount": 1999}]
# Per channel: the currency it takes and the action field the shopper's wallet reads (PC).
CHANNELS = {
    Channel.ALIPAY: ("CNY", "qr_code"),
    Channel.WECHAT: ("CNY", "qr_code"),
    Channel.PAYPAL: ("USD", "redirect_url"),
    Channel.BOLETO: ("BRL", "digitable_line"),
}
OPEN_SPREAD_S = 600
NEVER_PAY = 0.10
# The shopper's delay to pay after the trade opened: log-normal, median 45 s (a scan and a PIN),
# capped well inside the 30-minute order; a boleto is paid at a bank within the day.
PAY_MEDIAN_S = {Channel.BOLETO: 3 * 3600.0}
PAY_MEDIAN_DEFAULT_S = 45.0
PAY_SIGMA = 1.2
PAY_CAP_S = {Channel.BOLETO: 10 * 3600.0}
PAY_CAP_DEFAULT_S = 25 * 60.0


@dataclass
class Trade:
    channel: Channel
    open_at: datetime
    pay_at: datetime | None
    order: dict[str, Any] = field(default_factory=dict)
    payment_id: str = ""
    out_trade_no: str = ""
    code: str = ""
    approved_at: datetime | None = None  # PayPal: when the buyer approved


def shoppers(trades: int, seed: int) -> list[Trade]:
    """The same shoppers for both schedules: open and pay instants from one seeded generator."""
    rng = random.Random(seed)  # noqa: S311 (a seeded draw, not a secret)
    drawn = []
    for channel in CHANNELS:
        median = PAY_MEDIAN_S.get(channel, PAY_MEDIAN_DEFAULT_S)
        cap = PAY_CAP_S.get(channel, PAY_CAP_DEFAULT_S)
        for _ in range(trades):
            open_at = START + timedelta(seconds=rng.uniform(0, OPEN_SPREAD_S))
            delay = min(cap, rng.lognormvariate(math.log(median), PAY_SIGMA))
            pays = rng.random() >= NEVER_PAY
            drawn.append(
                Trade(channel, open_at, open_at + timedelta(seconds=delay) if pays else None)
            )
    return drawn


@dataclass
class Server:
    container: Container
    clock: AdjustableClock
    http: httpx.AsyncClient

    @property
    def deps(self) -> Deps:
        return self.container.deps

    @property
    def sandbox(self) -> Sandbox:
        assert self.container.sandbox is not None
        return self.container.sandbox


@asynccontextmanager
async def embedded(workdir: Path, keys: Path, name: str) -> AsyncIterator[Server]:
    """payonce on a loopback port, its sandbox mounted, on a clock of its own."""
    data_dir = workdir / name
    shutil.copytree(keys, data_dir / "sandbox")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = Settings(
        data_dir=data_dir,
        api_key=API_KEY,  # type: ignore[arg-type]
        clock="adjustable",
        provider_timeout_s=10.0,
        mount_sandbox=True,
        rate_limiting="off",  # thousands of shoppers from one address
    )
    clock = AdjustableClock(start=START)
    container = await bootstrap(settings, public_url=url, clock=clock, policy=Policy())
    server = uvicorn.Server(
        uvicorn.Config(create_app(container, run_background=False), log_level="warning")
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    assert container.sandbox is not None
    container.sandbox.set_faults(FaultSettings(notify_drop_rate=1.0))
    http = httpx.AsyncClient(base_url=url, timeout=30)
    try:
        yield Server(container, clock, http)
    finally:
        await http.aclose()
        server.should_exit = True
        await task
        await container.aclose()


async def _open(server: Server, trade: Trade) -> None:
    currency, field_name = CHANNELS[trade.channel]
    backend = {"Authorization": f"Bearer {API_KEY}"}
    made = await server.http.post(
        "/api/orders",
        json={"customer_id": "c-bench", "currency": currency, "lines": CART},
        headers=backend,
    )
    made.raise_for_status()
    trade.order = made.json()
    applied = await server.http.post(
        f"/api/orders/{trade.order['id']}/payments",
        json={"channel": trade.channel.value, "platform": "pc"},
        headers={
            "Authorization": f"Bearer {trade.order['client_secret']}",
            "Idempotency-Key": uuid.uuid4().hex,
        },
    )
    if applied.status_code != 201:
        raise RuntimeError(f"apply failed: {applied.status_code} {applied.text}")
    body = applied.json()
    trade.payment_id, trade.out_trade_no = body["id"], body["out_trade_no"]
    trade.code = body["action"][field_name]


async def _pay(server: Server, trade: Trade) -> None:
    """The shopper pays (PayPal: approves); a boleto is paid at a bank and confirmed later."""
    steps = ("pay",) if trade.channel is Channel.BOLETO else ("scan", "pay")
    for step in steps:
        done = await server.http.post(f"/sandbox/wallet/{step}", json={"code": trade.code})
        if done.status_code != 200:
            raise RuntimeError(f"wallet {step} failed: {done.status_code} {done.text}")
    if trade.channel is Channel.PAYPAL:
        trade.approved_at = server.clock.now()


class FixedScan:
    """Every X seconds per channel, ask about every open trade of the channel."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.every = {c: deps.policy.poll_wait(c, 0) for c in CHANNELS}
        # Half a period in: a scan's phase is arbitrary, and a boleto's confirmations all come
        # at 09:00 São Paulo time, on the hour of START; half a period is the mean lag.
        self.next_at = {c: START + every / 2 for c, every in self.every.items()}
        self.watched: dict[Channel, list[Trade]] = {c: [] for c in CHANNELS}

    def due_at(self) -> datetime | None:
        times = [self.next_at[c] for c, trades in self.watched.items() if trades]
        return min(times) if times else None

    async def run_due(self, now: datetime) -> None:
        for channel, trades in self.watched.items():
            while self.next_at[channel] <= now:
                self.next_at[channel] += self.every[channel]
            if self.next_at[channel] - self.every[channel] == now:
                self.watched[channel] = [t for t in trades if await self._ask(t)]

    async def _ask(self, trade: Trade) -> bool:
        """Query one trade, as a poll does; False once it settled (nothing more to ask)."""
        async with self.deps.storage.transaction() as uow:
            payment = await uow.payments.get(PaymentId(trade.payment_id))
        assert payment is not None
        if not payment.is_live:
            return False
        async with self.deps.locks.hold(
            order_lock_key(payment.order_id),
            ttl_s=self.deps.policy.lock_ttl_s,
            wait_s=self.deps.policy.lock_wait_s,
        ) as lease:
            payment = await sync_with_provider(self.deps, payment, lease)
        return payment.is_live


async def _earliest(server: Server, column: Any, *where: Any) -> datetime | None:
    async with server.container.storage.engine.connect() as conn:
        found: datetime | None = (
            await conn.execute(select(func.min(column)).where(*where))
        ).scalar()
        await conn.rollback()
    return found


async def _next_poll(server: Server) -> datetime | None:
    return await _earliest(server, poll_jobs.c.due_at)


async def _next_expiry(server: Server) -> datetime | None:
    return await _earliest(server, orders.c.expiry_check_at, orders.c.status == "UNPAID")


async def _run_passes(server: Server, scan: FixedScan | None, now: datetime) -> None:
    """What a worker runs when something is due: the polls (or the fixed scan), the expiry of
    unpaid orders past their deadline, and (with poll jobs) the sweeper."""
    deps = server.deps
    if scan is not None:
        await scan.run_due(now)
    else:
        while await poll_due(deps) == BATCH:
            pass
    for _ in range(100):  # expire_due takes one batch a pass
        due = await _next_expiry(server)
        if due is None or due > now:
            break
        await expire_due(deps)
    if scan is None:
        await sweep(deps)


async def simulate(server: Server, trades: list[Trade], schedule: str) -> dict[str, Any]:
    """Run every shopper and the chosen poller until nothing is left to do; return the counts."""
    opens = sorted(trades, key=lambda t: t.open_at)
    pays = sorted((t for t in trades if t.pay_at), key=lambda t: t.pay_at or START)
    scan = FixedScan(server.deps) if schedule == "fixed" else None
    steps, started = 0, time.monotonic()
    while True:
        now = server.clock.now()
        while opens and opens[0].open_at <= now:
            trade = opens.pop(0)
            await _open(server, trade)
            if scan is not None:
                scan.watched[trade.channel].append(trade)
        while pays and (pays[0].pay_at or now) <= now:
            await _pay(server, pays.pop(0))
        await server.sandbox.deliver_due()
        await _run_passes(server, scan, now)
        steps += 1
        polls = scan.due_at() if scan is not None else await _next_poll(server)
        upcoming = [t for t in (polls, await _next_expiry(server)) if t is not None]
        upcoming += [opens[0].open_at] if opens else []
        upcoming += [pays[0].pay_at] if pays and pays[0].pay_at else []
        if not upcoming:
            break
        server.clock.advance(max(min(upcoming) - now, timedelta(microseconds=1)))
    return {
        "steps": steps,
        "wall_s": round(time.monotonic() - started, 1),
        "simulated_h": round((server.clock.now() - START).total_seconds() / 3600, 1),
    }


async def _outcomes(server: Server, trades: list[Trade]) -> list[dict[str, Any]]:
    """Per trade: provider calls after its create, and when it became PAID here and there."""
    rows = []
    for trade in trades:
        calls = server.sandbox.calls(trade.out_trade_no)
        after_create = calls[1:]  # the first call made the trade
        async with server.deps.storage.transaction() as uow:
            payment = await uow.payments.get(PaymentId(trade.payment_id))
        assert payment is not None
        captures = [m for m in server.sandbox.ledger(trade.out_trade_no) if m.kind == "capture"]
        ready = trade.approved_at if trade.channel is Channel.PAYPAL else None
        if ready is None and captures:
            ready = captures[0].at
        detected = payment.updated_at if payment.status.value == "PAID" else None
        rows.append(
            {
                "channel": trade.channel.value,
                "paid": trade.pay_at is not None,
                "calls": len(after_create),
                "methods": Counter(c.method for c in after_create),
                "status": payment.status.value,
                "detect_s": (detected - ready).total_seconds() if detected and ready else None,
                "ready": ready is not None,
            }
        )
    return rows


def _per_channel(rows: list[dict[str, Any]], schedule: str) -> list[dict[str, Any]]:
    found = []
    for channel in CHANNELS:
        mine = [r for r in rows if r["channel"] == channel.value]
        paid = [r for r in mine if r["paid"]]
        unpaid = [r for r in mine if not r["paid"]]
        detections = [r["detect_s"] for r in paid if r["detect_s"] is not None]
        methods: Counter[str] = Counter()
        for r in mine:
            methods.update(r["methods"])
        calls = sum(r["calls"] for r in mine)
        found.append(
            {
                "channel": channel.value,
                "schedule": schedule,
                "trades": len(mine),
                "paid": len(paid),
                "provider_calls": calls,
                "queries": sum(
                    n for m, n in methods.items() if "query" in m.lower() or m.startswith("GET")
                ),
                "calls_by_method": dict(methods),
                "calls_per_trade": round(calls / max(len(mine), 1), 2),
                "calls_per_paid_trade": round(sum(r["calls"] for r in paid) / max(len(paid), 1), 2),
                "calls_per_unpaid_trade": round(
                    sum(r["calls"] for r in unpaid) / max(len(unpaid), 1), 2
                ),
                "detect_p50_s": round(percentile(detections, 50), 1) if detections else None,
                "detect_p99_s": round(percentile(detections, 99), 1) if detections else None,
                "detect_max_s": round(max(detections), 1) if detections else None,
                "paid_not_detected": sum(1 for r in paid if r["status"] != "PAID"),
                "final_statuses": dict(Counter(r["status"] for r in mine)),
            }
        )
    return found


async def polling_part(opts: argparse.Namespace, workdir: Path, console: Console) -> dict[str, Any]:
    keys = workdir / "keys"
    SandboxKeys.load_or_create(keys)
    found: dict[str, Any] = {"runs": {}}
    rows: list[dict[str, Any]] = []
    for schedule in ("delayed", "fixed"):
        console.print(f"polling load: {schedule} schedule, {opts.trades} trades per channel")
        trades = shoppers(opts.trades, opts.seed)
        counter, logger = counted_logs()
        try:
            async with embedded(workdir, keys, f"polling-{schedule}") as server:
                run = await simulate(server, trades, schedule)
                outcomes = await _outcomes(server, trades)
        finally:
            detach(counter, logger)
        run["log_records"] = counter.as_json()
        found["runs"][schedule] = run
        rows += _per_channel(outcomes, schedule)
    for row in rows:
        if row["schedule"] == "fixed":
            delayed = next(
                r for r in rows if r["channel"] == row["channel"] and r["schedule"] == "delayed"
            )
            row["fixed_to_delayed_calls"] = (
                round(row["provider_calls"] / delayed["provider_calls"], 1)
                if delayed["provider_calls"]
                else None
            )
    found["summary"] = rows
    found["shoppers"] = {
        "trades_per_channel": opts.trades,
        "seed": opts.seed,
        "open_spread_s": OPEN_SPREAD_S,
        "never_pay": NEVER_PAY,
        "pay_delay": "log-normal, sigma 1.2; median 45 s capped at 25 min (boleto: 3 h, cap 10 h)",
        "notifications": "all dropped: polls alone find payments",
    }
    return found
