"""Benchmark of the apply and notify paths of the embedded server, against a baseline measured
in the same run (a `GET /livez` round trip on the same server and client).

Run with `scripts/bench`; prints a table and writes bench/results/apply.json.
"""

from __future__ import annotations

import asyncio
import json
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from rich.console import Console
from rich.table import Table

from payonce.bootstrap import Container, bootstrap
from payonce.config import Settings
from payonce.entrypoints.web.app import create_app
from payonce.service.context import Policy

RESULTS = Path(__file__).with_name("results") / "apply.json"
API_KEY = "sk_bench"
CART = [{"sku": "SKU-1", "name": "Tea", "quantity": 2, "unit_amount": 1999}]
BACKEND = {"Authorization": f"Bearer {API_KEY}"}


@asynccontextmanager
async def running(data_dir: Path, policy: Policy | None = None):  # type: ignore[no-untyped-def]
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    # The load hammers one order from one address: the rate limits would answer it.
    settings = Settings(data_dir=data_dir, api_key=API_KEY, rate_limiting="off")  # type: ignore[arg-type]
    container = await bootstrap(settings, public_url=url, policy=policy)
    server = uvicorn.Server(
        uvicorn.Config(create_app(container, run_background=False), log_level="warning")
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to await
        await asyncio.sleep(0.01)
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        try:
            yield container, http
        finally:
            server.should_exit = True
            await task
            await container.aclose()


async def timed(samples: int, action: Callable[[int], Awaitable[Any]]) -> list[float]:
    spent = []
    for i in range(samples):
        start = time.perf_counter()
        await action(i)
        spent.append(time.perf_counter() - start)
    return spent


# Each channel's currency, and the action field its wallet reads.
CHANNELS = {
    "alipay": ("CNY", "qr_code"),
    "wechat": ("CNY", "qr_code"),
    "paypal": ("USD", "redirect_url"),
    "boleto": ("BRL", "digitable_line"),
}


async def new_order(http: httpx.AsyncClient, currency: str = "CNY") -> dict[str, Any]:
    response = await http.post(
        "/api/orders",
        json={"customer_id": "bench", "currency": currency, "lines": CART},
        headers={"Authorization": f"Bearer {API_KEY}"},
    )
    order: dict[str, Any] = response.json()
    return order


async def apply(
    http: httpx.AsyncClient, order: dict[str, Any], channel: str = "alipay"
) -> httpx.Response:
    response = await http.post(
        f"/api/orders/{order['id']}/payments",
        json={"channel": channel, "platform": "pc"},
        headers={
            "Authorization": f"Bearer {order['client_secret']}",
            "Idempotency-Key": str(uuid.uuid4()),
        },
    )
    assert response.status_code in (200, 201), response.text
    return response


async def scenario(container: Container, http: httpx.AsyncClient, n: int) -> dict[str, list[float]]:
    sandbox = container.sandbox
    assert sandbox is not None
    figures: dict[str, list[float]] = {}
    figures["baseline: GET /livez"] = await timed(3 * n, lambda _: http.get("/livez"))
    orders: list[dict[str, Any]] = []

    async def create(_: int) -> None:
        orders.append(await new_order(http))

    figures["create order"] = await timed(n, create)
    figures["apply, new trade (provider call)"] = await timed(n, lambda i: apply(http, orders[i]))
    figures["apply, repeated (reuse)"] = await timed(3 * n, lambda i: apply(http, orders[i % n]))

    async def paid(i: int) -> None:
        payment = (await apply(http, orders[i])).json()
        await http.post("/sandbox/wallet/pay", json={"code": payment["action"]["qr_code"]})
        assert await sandbox.deliver_due() == 1  # notify -> verify -> commit -> inbox -> ack

    figures["pay -> notification applied"] = await timed(n // 2, paid)

    # Each other channel: a new trade through its own adapter and wire, then (where the
    # provider settles at once) the shopper's payment until the order is ready.
    for channel in ("wechat", "paypal", "boleto"):
        currency = CHANNELS[channel][0]
        fresh = [await new_order(http, currency) for _ in range(n)]
        figures[f"apply, new trade: {channel}"] = await timed(
            n, lambda i, c=channel, o=fresh: apply(http, o[i], c)
        )
        if channel == "boleto":
            continue  # a boleto clears business days later: nothing to time here

        async def settled(i: int, c: str = channel, o: list[dict[str, Any]] = fresh) -> None:
            payment = (await apply(http, o[i], c)).json()
            code = payment["action"][CHANNELS[c][1]]
            await http.post("/sandbox/wallet/pay", json={"code": code})
            while (await http.get(f"/api/orders/{o[i]['id']}", headers=BACKEND)).json()[
                "status"
            ] != "READY_FOR_SHIPMENT":
                await sandbox.deliver_due()

        figures[f"pay -> order ready: {channel}"] = await timed(n // 2, settled)

    async def burst(_: int) -> None:
        order = await new_order(http)
        await asyncio.gather(*(apply(http, order) for _ in range(50)))

    figures["50 concurrent applies, one order"] = await timed(max(3, n // 20), burst)
    return figures


async def main(n: int) -> dict[str, Any]:
    report: dict[str, Any] = {"samples": n, "python": sys.version.split()[0], "runs": {}}
    with tempfile.TemporaryDirectory() as cached_dir, tempfile.TemporaryDirectory() as plain_dir:
        async with running(Path(cached_dir)) as (container, http):
            report["runs"]["result cache on"] = await scenario(container, http, n)
        # The same, with the cache never answering: the database path of every repeat.
        no_cache = Policy(cache_ttl_s=0, attempt_cache_ttl_s=0)
        async with running(Path(plain_dir), no_cache) as (container, http):
            report["runs"]["result cache off"] = await scenario(container, http, n)
    return report


def summarise(report: dict[str, Any]) -> dict[str, Any]:
    table = Table(title=f"payonce apply/notify, embedded (SQLite), {report['samples']} samples")
    for column in ("run", "operation", "median ms", "p90 ms", "x baseline"):
        table.add_column(column, justify="left" if column in ("run", "operation") else "right")
    summary: dict[str, Any] = {}
    for run, figures in report["runs"].items():
        baseline = statistics.median(figures["baseline: GET /livez"])
        for operation, spent in figures.items():
            median = statistics.median(spent)
            p90 = statistics.quantiles(spent, n=10)[-1] if len(spent) >= 10 else max(spent)
            ratio = median / baseline
            summary.setdefault(run, {})[operation] = {
                "median_ms": round(median * 1000, 3),
                "p90_ms": round(p90 * 1000, 3),
                "x_baseline": round(ratio, 2),
            }
            table.add_row(
                run, operation, f"{median * 1000:.2f}", f"{p90 * 1000:.2f}", f"{ratio:.1f}"
            )
    Console().print(table)
    return summary


if __name__ == "__main__":
    samples = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    measured = asyncio.run(main(samples))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({**measured, "summary": summarise(measured)}, indent=1))
    print(f"figures written to {RESULTS}")
