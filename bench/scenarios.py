"""The measured phases, each against a running payonce (embedded or a stack) over HTTP."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

from rich.progress import Progress

from .cpu import CpuMeter
from .load import Job, Reply, Run, Session, closed_loop, latency_summary
from .raw_sql import Capture, RawRun

CART = [{"sku": "SKU-1", "name": "Tea", "quantity": 2, "unit_amount": 1999}]
CHANNEL = "alipay"  # Alipay, PC: the action is a QR code; each new trade is a provider call
SERVICE_ERRORS = range(500, 600)

# Replays a capture once per order id at a concurrency; reports progress through the callback.
Replay = Callable[[Capture, list[str], int, Callable[[], None]], Awaitable[RawRun]]


@dataclass
class Target:
    """A running payonce under measurement, and what measures it from outside."""

    name: str
    api_urls: list[str]
    sandbox_url: str
    api_key: str
    meter: CpuMeter
    replay: Replay
    # Counters read before and after each phase (e.g. Redis commands), per request.
    counters: Callable[[], dict[str, float]] | None = None
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def backend(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def api(self, index: int) -> str:
        """The instance for the index-th request: requests are spread round-robin."""
        return self.api_urls[index % len(self.api_urls)]


class Tracker:
    """One rich progress bar per phase, advanced per request."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    @contextmanager
    def phase(self, label: str, total: int) -> Iterator[Callable[[], None]]:
        task = self.progress.add_task(label, total=total)
        try:
            yield lambda: self.progress.advance(task)
        finally:
            self.progress.update(task, completed=total)


def _apply_job(target: Target, index: int, order: dict[str, Any]) -> Job:
    url = f"{target.api(index)}/api/orders/{order['id']}/payments"
    headers = {
        "Authorization": f"Bearer {order['client_secret']}",
        "Idempotency-Key": f"bench-{uuid.uuid4().hex}",
    }

    def job(session: Session) -> Awaitable[Reply]:
        return session.call("POST", url, {"channel": CHANNEL, "platform": "pc"}, headers)

    return job


@asynccontextmanager
async def _measured(target: Target, into: dict[str, Any], requests: int) -> AsyncIterator[None]:
    """CPU per request of every process group (and the counters) over the enclosed phase."""
    target.meter.take()
    before = target.counters() if target.counters else {}
    yield
    # A closed connection's PostgreSQL backend is counted once its server has reaped it.
    await asyncio.sleep(0.3)
    spent = target.meter.take()
    into["cpu_ms_per_request"] = {
        name: round(seconds * 1000 / max(requests, 1), 3) for name, seconds in spent.items()
    }
    if target.counters:
        after = target.counters()
        into["per_request"] = {
            name: round((after[name] - before.get(name, 0.0)) / max(requests, 1), 2)
            for name in after
            if after[name] != before.get(name, 0.0)
        }


async def livez(target: Target, tracker: Tracker, requests: int, concurrency: int) -> Run:
    """The latency baseline: GET /livez on the same servers, client and concurrency."""

    def job(index: int) -> Job:
        url = f"{target.api(index)}/livez"
        return lambda session: session.call("GET", url)

    figures: dict[str, Any] = {}
    with tracker.phase(f"{target.name}: GET /livez (baseline)", requests) as done:
        async with _measured(target, figures, requests):
            run = await closed_loop([job(i) for i in range(requests)], concurrency, on_done=done)
    target.figures["livez"] = {"concurrency": concurrency, **run.summary(), **figures}
    return run


async def create_orders(
    target: Target, tracker: Tracker, count: int, concurrency: int
) -> list[dict[str, Any]]:
    """Orders to apply on, made before the timed phases (their rate is kept, not compared)."""

    def job(index: int) -> Job:
        url = f"{target.api(index)}/api/orders"
        body = {"customer_id": f"bench-{index}", "currency": "CNY", "lines": CART}
        return lambda session: session.call("POST", url, body, target.backend)

    with tracker.phase(f"{target.name}: create orders (not compared)", count) as done:
        run = await closed_loop(
            [job(i) for i in range(count)], concurrency, on_done=done, keep_replies=True
        )
    target.figures["create_orders"] = run.summary()
    orders = [reply.json() for reply in run.replies if reply is not None and reply.status == 201]
    if len(orders) != count:
        raise RuntimeError(f"{target.name}: only {len(orders)} of {count} orders were created")
    return orders


async def applies(
    target: Target, tracker: Tracker, orders: list[dict[str, Any]], concurrency: int
) -> list[dict[str, Any]]:
    """One apply per distinct order (each a new trade at the provider): the throughput figure."""
    jobs = [_apply_job(target, i, order) for i, order in enumerate(orders)]
    figures: dict[str, Any] = {}
    with tracker.phase(f"{target.name}: apply, distinct orders", len(jobs)) as done:
        async with _measured(target, figures, len(jobs)):
            run = await closed_loop(jobs, concurrency, on_done=done, keep_replies=True)
    target.figures["applies"] = {"concurrency": concurrency, **run.summary(), **figures}
    return [reply.json() for reply in run.replies if reply is not None and reply.status == 201]


async def raw_sql(
    target: Target, tracker: Tracker, capture: Capture, order_ids: list[str], concurrency: int
) -> RawRun:
    """The same SQL as an apply, replayed directly on the same database (the raw baseline)."""
    figures: dict[str, Any] = {}
    label = f"{target.name}: raw SQL of an apply, replayed"
    with tracker.phase(label, len(order_ids)) as done:
        async with _measured(target, figures, len(order_ids)):
            run = await target.replay(capture, order_ids, concurrency, done)
    target.figures["raw_sql"] = {**run.summary(), **figures}
    return run


async def _warm(target: Target, clicks: int) -> list[Session]:
    """One connection per click, opened beforehand: the burst measures applies, not handshakes."""
    sessions = [Session() for _ in range(clicks)]
    await asyncio.gather(*(s.call("GET", f"{target.api(i)}/livez") for i, s in enumerate(sessions)))
    return sessions


async def _burst(
    target: Target, order: dict[str, Any], sessions: list[Session], done: Callable[[], None]
) -> tuple[list[Reply | None], list[float]]:
    """Every click on one order at once, each on its own connection."""
    jobs = [_apply_job(target, i, order) for i in range(len(sessions))]
    latencies: list[float] = []

    async def click(job: Job, session: Session) -> Reply | None:
        start = time.perf_counter()
        try:
            return await job(session)
        except (OSError, asyncio.IncompleteReadError):
            return None
        finally:
            latencies.append(time.perf_counter() - start)
            session.close()
            done()

    replies = await asyncio.gather(*(click(j, s) for j, s in zip(jobs, sessions, strict=True)))
    return list(replies), latencies


async def hot_orders(target: Target, tracker: Tracker, orders: int, clicks: int) -> None:
    """``clicks`` concurrent applies (distinct Idempotency-Keys) on one order, spread over the
    instances, ``orders`` times: how many trades were opened, how many 5xx, the latency."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    cpu: Counter[str] = Counter()
    counted: Counter[str] = Counter()
    lost = 0
    per_order = []
    with tracker.phase(f"{target.name}: {clicks} clicks on one hot order", orders * clicks) as done:
        for _ in range(orders):
            session = Session()
            created = await session.call(
                "POST",
                f"{target.api(0)}/api/orders",
                {"customer_id": "bench-hot", "currency": "CNY", "lines": CART},
                target.backend,
            )
            session.close()
            order = created.json()
            sessions = await _warm(target, clicks)
            target.meter.take()
            before = target.counters() if target.counters else {}
            replies, spent = await _burst(target, order, sessions, done)
            cpu.update(target.meter.take())
            if target.counters:
                after = target.counters()
                counted.update({k: v - before.get(k, 0.0) for k, v in after.items()})
            latencies.extend(spent)
            answered = [r for r in replies if r is not None]
            lost += len(replies) - len(answered)
            statuses.update(r.status for r in answered)
            trades = {r.json()["out_trade_no"] for r in answered if r.status in (200, 201)}
            per_order.append(
                {
                    "order_id": order["id"],
                    "created_201": sum(r.status == 201 for r in answered),
                    "distinct_trades_answered": len(trades),
                    "server_errors": sum(r.status in SERVICE_ERRORS for r in answered),
                }
            )
    clicked = max(orders * clicks, 1)
    figures: dict[str, Any] = {
        "cpu_ms_per_request": {k: round(v * 1000 / clicked, 3) for k, v in cpu.items()}
    }
    if counted:
        figures["per_request"] = {k: round(v / clicked, 2) for k, v in counted.items() if v}
    # The provider's own word: the merchant orders (QR codes) the sandbox holds per order.
    session = Session()
    listed = (await session.call("GET", f"{target.sandbox_url}/orders")).json()["orders"]
    session.close()
    at_provider = Counter(entry["subject"] for entry in listed)
    for entry in per_order:
        entry["trades_at_provider"] = at_provider[f"Order {entry['order_id']}"]
    target.figures["hot_order"] = {
        "orders": orders,
        "clicks_per_order": clicks,
        "trades_opened_per_order": [entry["trades_at_provider"] for entry in per_order],
        "responses_201": sum(entry["created_201"] for entry in per_order),
        "server_errors": sum(entry["server_errors"] for entry in per_order),
        "transport_errors": lost,
        "statuses": {str(status): n for status, n in sorted(statuses.items())},
        **latency_summary(latencies),
        **figures,
        "per_order": per_order,
    }


async def notifications(
    target: Target, tracker: Tracker, payments: list[dict[str, Any]], concurrency: int
) -> None:
    """Genuine signed notifications, captured at the sandbox, handled by payonce at a rate.

    The sandbox's first delivery attempt of each is dropped (its `notify_drop_rate` fault), so
    the trades are paid but payonce has heard nothing; the sandbox logs every attempt it made,
    dropped ones included, with their exact headers and bytes (`GET /sandbox/deliveries`).
    Those bytes are then posted to `/api/notify/alipay` as the provider would: each is verified
    on its raw body, matched, applied under the order's lock and acknowledged.
    """
    sandbox, session = target.sandbox_url, Session()
    by_trade = {payment["out_trade_no"]: payment for payment in payments}
    await session.call("PUT", f"{sandbox}/faults", {"channels": {CHANNEL: {"notify_drop_rate": 1}}})
    try:

        def pay(payment: dict[str, Any]) -> Job:
            body = {"code": payment["action"]["qr_code"]}
            return lambda s: s.call("POST", f"{sandbox}/wallet/pay", body)

        with tracker.phase(f"{target.name}: pay in the wallet (not compared)", len(payments)) as d:
            paid = await closed_loop([pay(p) for p in payments], 8, on_done=d)
        held = await _dropped_deliveries(session, sandbox, set(by_trade))
    finally:
        await session.call("PUT", f"{sandbox}/faults", {})
        session.close()

    def post(index: int, delivery: dict[str, Any]) -> Job:
        url = f"{target.api(index)}/api/notify/{CHANNEL}"
        headers = {
            name: value
            for name, value in delivery["headers"].items()
            if name.lower() not in ("content-length", "host")
        }
        raw = delivery["body"].encode("utf-8")
        return lambda s: s.call("POST", url, headers=headers, raw=raw)

    jobs = [post(i, delivery) for i, delivery in enumerate(held)]
    figures: dict[str, Any] = {}
    with tracker.phase(f"{target.name}: signed notifications handled", len(jobs)) as done:
        async with _measured(target, figures, len(jobs)):
            run = await closed_loop(jobs, concurrency, on_done=done, keep_replies=True)
    acknowledged = sum(
        1 for r in run.replies if r is not None and r.status == 200 and r.body == b"success"
    )
    ready = await _orders_ready(target, [by_trade[d["out_trade_no"]]["order_id"] for d in held])
    target.figures["notifications"] = {
        "concurrency": concurrency,
        "wallet_payments": paid.summary(),
        "notifications_posted": len(jobs),
        "acknowledged_success": acknowledged,
        "orders_ready_for_shipment": ready,
        **run.summary(),
        **figures,
    }


async def _dropped_deliveries(
    session: Session, sandbox: str, trades: set[str], wait_s: float = 30.0
) -> list[dict[str, Any]]:
    """The first (dropped) attempt of every notification of ``trades``, once all were made."""
    deadline = time.monotonic() + wait_s
    while True:
        listed = (await session.call("GET", f"{sandbox}/deliveries")).json()["deliveries"]
        held = {
            d["out_trade_no"]: d
            for d in listed
            if d["fault"] == "dropped" and d["attempt"] == 1 and d["out_trade_no"] in trades
        }
        if len(held) == len(trades) or time.monotonic() > deadline:
            return list(held.values())
        await asyncio.sleep(0.2)


async def _orders_ready(target: Target, order_ids: list[str], wait_s: float = 15.0) -> int:
    """How many of the orders reached READY_FOR_SHIPMENT (their outbox delivered)."""

    def read(index: int, order_id: str) -> Job:
        url = f"{target.api(index)}/api/orders/{order_id}"
        return lambda s: s.call("GET", url, headers=target.backend)

    pending = list(order_ids)
    deadline = time.monotonic() + wait_s
    while pending and time.monotonic() < deadline:
        run = await closed_loop([read(i, o) for i, o in enumerate(pending)], 16, keep_replies=True)
        pending = [
            order_id
            for order_id, reply in zip(pending, run.replies, strict=True)
            if reply is None or reply.json().get("status") != "READY_FOR_SHIPMENT"
        ]
        if pending:
            await asyncio.sleep(0.5)
    return len(order_ids) - len(pending)
