"""One chaos run: start the system, let the shoppers loose under the faults, drive the system to
quiescence, read every book and check every promise."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import partial
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from payonce.adapters.storage.engine import open_engine
from payonce.domain.order import OrderStatus
from payonce.entrypoints.chaos.behaviours import BEHAVE
from payonce.entrypoints.chaos.books import (
    PayonceBooks,
    SandboxBooks,
    read_payonce,
    read_sandbox,
    unsettled,
)
from payonce.entrypoints.chaos.checks import Checker
from payonce.entrypoints.chaos.journal import Visit
from payonce.entrypoints.chaos.order_service import OrderService
from payonce.entrypoints.chaos.report import Report
from payonce.entrypoints.chaos.scenario import Behaviour, Scenario
from payonce.entrypoints.chaos.shopper_client import Shopper, Site, Unreachable
from payonce.entrypoints.chaos.system import System, started
from payonce.sandbox.faults import FaultSettings

# How the clock is walked to quiescence (seconds per step): through notification retries,
# polls, order expiry, the sweeper, refunds' retries and a voucher's clearing days.
QUIESCENCE_STEPS = (5.0,) * 6 + (60.0,) * 10 + (600.0,) * 6 + (3600.0,) * 24 + (86400.0,) * 12
# Real seconds the system gets to work through what each step made due.
STEP_PAUSE_S = 0.3
# Rounds (of 600 clock seconds and 1 real second) without any change that count as quiescent.
STILL_ROUNDS = 10
# Give up waiting for quiescence (and report what is still unsettled) after this long.
QUIESCENCE_LIMIT_S = 600.0


def draw_behaviours(scenario: Scenario) -> list[Behaviour]:
    dice = random.Random(f"{scenario.seed}/behaviours")  # noqa: S311 (simulation)
    names = [name for name, weight in scenario.behaviours.items() if weight > 0]
    weights = [scenario.behaviours[name] for name in names]
    return dice.choices(names, weights, k=scenario.shoppers)


async def _tick(site: Site, dilation: float, every_s: float = 0.25) -> None:
    """Run the shared clock ``dilation`` times as fast as real time."""
    while True:
        await asyncio.sleep(every_s)
        with contextlib.suppress(Unreachable):
            await site.sandbox("POST", "/clock", {"advance_s": (dilation - 1.0) * every_s})


async def _shop(
    scenario: Scenario, site: Site, visits: list[Visit], on_done: Callable[[], None]
) -> None:
    gate = asyncio.Semaphore(scenario.concurrency)

    async def one(visit: Visit) -> None:
        async with gate:
            dice = random.Random(f"{scenario.seed}/shopper/{visit.shopper}")  # noqa: S311
            try:
                await BEHAVE[visit.behaviour](Shopper(site, visit, dice))
            except Exception as error:  # the shopper's own trouble, reported, never judged
                visit.errors.append(f"{type(error).__name__}: {error}")
            finally:
                on_done()

    await asyncio.gather(*(one(visit) for visit in visits))


async def _storms(
    scenario: Scenario, system: System, orders: OrderService, progress: Callable[[], float]
) -> list[str]:
    """Fire the process faults at seeded points of the run (by the share of shoppers done)."""
    faults = scenario.process_faults
    dice = random.Random(f"{scenario.seed}/storms")  # noqa: S311 (simulation)
    plan: list[tuple[float, str, Callable[[], Awaitable[None]]]] = []

    def add(name: str, fire: Callable[[], Awaitable[None]]) -> None:
        plan.append((dice.uniform(0.1, 0.8), name, fire))

    for _ in range(faults.redis_restarts if system.redis else 0):
        add("redis restarted", partial(system.restart_redis, faults.redis_down_s))
    for index in range(faults.lock_holder_pauses if system.payonce else 0):
        add("lock holder paused past TTL", partial(system.pause_a_lock_holder, index))
    for _ in range(faults.order_service_outages):
        add("order service down", partial(orders.outage, faults.order_service_down_s))
    struck: list[str] = []
    for share, name, fire in sorted(plan, key=lambda item: item[0]):
        while True:
            if progress() >= share:
                break
            await asyncio.sleep(0.1)
        await fire()
        struck.append(name)
    return struck


async def _quiesce(site: Site, system: System, report: Report, console: Console | None) -> None:
    """No more faults; walk the clock forward until nothing in payonce is still moving."""
    await site.sandbox(
        "PUT", "/faults", FaultSettings(seed=report.scenario.seed).model_dump(mode="json")
    )
    await system.without_failpoints()
    engine = open_engine(system.database_url)
    started_at = time.monotonic()
    try:
        for step in QUIESCENCE_STEPS:
            await site.sandbox("POST", "/clock", {"advance_s": step})
            report.clock_advanced_s += step
            await asyncio.sleep(STEP_PAUSE_S)
        # Quiescent: everything settled, or nothing moved for a while (without its defences,
        # payonce may leave payments unsettled for good: the checks then report them).
        last, still = None, 0
        while time.monotonic() - started_at < QUIESCENCE_LIMIT_S and still < STILL_ROUNDS:
            state = await unsettled(engine)
            pending = (await site.sandbox("POST", "/clock", {"advance_s": 600})).json()
            report.clock_advanced_s += 600
            if state.settled and pending["pending_notifications"] == 0:
                break
            still = still + 1 if state == last else 0
            last = state
            if console is not None:
                console.print(f"  waiting for quiescence: {state}", style="dim")
            await asyncio.sleep(1.0)
    finally:
        await engine.dispose()
        report.quiesce_s = time.monotonic() - started_at


def _timings(
    report: Report, visits: list[Visit], books_payonce: PayonceBooks, books_sandbox: SandboxBooks
) -> None:
    captured_at = {
        m["out_trade_no"]: datetime.fromisoformat(m["at"])
        for m in books_sandbox.movements
        if m["kind"] == "capture"
    }
    for payments in books_payonce.payments.values():
        for payment in payments:
            at = captured_at.get(payment.out_trade_no)
            if payment.applied and at is not None:
                delay = (payment.updated_at - at).total_seconds()
                report.to_ready_clock_s.append(delay)
                report.to_ready_by_channel[payment.channel.value].append(delay)
    for visit in visits:
        if visit.paid_in_wallet_at is None:
            continue
        told = visit.notified_at
        order = books_payonce.orders.get(visit.order_id or "")
        if told is not None:
            report.to_page_s.append(max(0.0, told - visit.paid_in_wallet_at))
        elif order is not None and order.status is OrderStatus.READY_FOR_SHIPMENT:
            report.not_told_while_there += 1


async def run_chaos(
    scenario: Scenario,
    data_dir: Path,
    *,
    database_url: str | None = None,
    console: Console | None = None,
) -> Report:
    report = Report(scenario)
    behaviours = draw_behaviours(scenario)
    visits = [Visit(shopper=i, behaviour=b) for i, b in enumerate(behaviours)]
    report.behaviours.update(behaviours)
    orders = OrderService()
    async with orders.serving(), started(scenario, orders, data_dir, database_url) as system:
        site = Site(
            system.api_urls, system.sandbox_url, system.api_key, scenario.seed, system.clock
        )
        try:
            await _drive(scenario, system, site, orders, visits, report, console)
            payonce_books = await read_payonce(
                system.database_url, [v.order_id for v in visits if v.order_id]
            )
            sandbox_books = await read_sandbox(site)
            report.server_errors.update(site.server_errors)
        finally:
            await site.aclose()
    report.violations = Checker(visits, payonce_books, sandbox_books, orders).violations()
    for visit in visits:
        order = payonce_books.orders.get(visit.order_id or "")
        report.outcomes[visit.behaviour][order.status.value if order else "no order"] += 1
        for error in visit.errors:
            report.shopper_errors[error.split(":", 1)[0]] += 1
            report.shopper_error_samples.append(f"shopper {visit.shopper}: {error}")
        for reply in visit.replies:
            if reply.status >= 300:
                report.refusals[f"{reply.status} {reply.body.get('code', '')}".strip()] += 1
    for delivery in sandbox_books.deliveries:
        if delivery.get("fault"):
            report.faults[f"notification {delivery['fault']}"] += 1
    for call in sandbox_books.calls:
        if call.get("held"):
            report.faults[f"provider call timed out: {call['method']}"] += 1
    report.faults.update(system.crashes)
    report.unexpected_exits = list(system.unexpected_exits)
    report.faults["order webhooks refused while down"] += orders.refused_while_down
    _timings(report, visits, payonce_books, sandbox_books)
    return report


async def _drive(
    scenario: Scenario,
    system: System,
    site: Site,
    orders: OrderService,
    visits: list[Visit],
    report: Report,
    console: Console | None,
) -> None:
    await site.sandbox("PUT", "/faults", scenario.sandbox_faults.model_dump(mode="json"))
    done = 0
    bar = Progress(
        TextColumn("shoppers"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=console is None,
    )
    task = bar.add_task("shoppers", total=len(visits))

    def finished() -> None:
        nonlocal done
        done += 1
        bar.advance(task)

    supervisor = asyncio.create_task(system.supervise())
    ticker = asyncio.create_task(_tick(site, scenario.time_dilation))
    storms = asyncio.create_task(_storms(scenario, system, orders, lambda: done / len(visits)))
    started_at = time.monotonic()
    try:
        with bar:
            await _shop(scenario, site, visits, finished)
        report.run_s = time.monotonic() - started_at
        for name in await storms:
            report.faults[name] += 1
        ticker.cancel()
        await _quiesce(site, system, report, console)
        if supervisor.done():
            supervisor.result()  # it stopped restarting crashed processes: say why
    finally:
        for background in (ticker, storms, supervisor):
            background.cancel()
        await asyncio.gather(ticker, storms, supervisor, return_exceptions=True)
