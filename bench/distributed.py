"""Issue 4's benchmark: applies/s, the raw SQL baseline, one hot order and notifications/s, on the
embedded server and on PostgreSQL + Redis, measured in one run.

Run with `./scripts/bench distributed [options]` (`--help` lists them). It starts `payonce serve`
(SQLite, the sandbox mounted) and then a local stack (its own PostgreSQL and Redis, the sandbox
as its own process, 2 API instances, 1 worker), measures each against baselines taken in the same
run on the same servers, stops everything, prints tables and writes
bench/results/distributed.json. A benchmark, never a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import redis
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from payonce.config import Settings
from payonce.entrypoints.processes import PAYONCE, Child, clean_env, free_port
from payonce.entrypoints.stack import Stack, StackPlan
from payonce.sandbox.keys import SandboxKeys

from . import report, scenarios
from .cpu import CpuMeter
from .raw_sql import Capture, capture_apply, replay_postgres, replay_sqlite
from .roundtrips import round_trip_costs
from .scenarios import Target, Tracker

RESULTS = Path(__file__).with_name("results") / "distributed.json"
EMBEDDED = "embedded"
DISTRIBUTED = "distributed"

# The load comes from one address and hammers one order: what the rate limits are for.
UNLIMITED = {"PAYONCE_RATE_LIMITING": "off"}


def options(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="./scripts/bench distributed", description=__doc__)
    parser.add_argument("--orders", type=int, default=1000, help="distinct orders applied on")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    parser.add_argument("--livez", type=int, default=3000, help="GET /livez baseline requests")
    parser.add_argument("--hot-orders", type=int, default=5, help="hot orders clicked on")
    parser.add_argument("--clicks", type=int, default=64, help="concurrent clicks per hot order")
    parser.add_argument(
        "--notifications", type=int, default=600, help="signed notifications posted"
    )
    parser.add_argument("--apis", type=int, default=2, help="API instances of the stack")
    parser.add_argument("--workers", type=int, default=1, help="workers of the stack")
    parser.add_argument(
        "--only", choices=(EMBEDDED, DISTRIBUTED), help="measure one deployment only"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the JSON goes")
    parsed = parser.parse_args(argv)
    parsed.notifications = min(parsed.notifications, parsed.orders)
    return parsed


async def measure(
    target: Target, tracker: Tracker, opts: argparse.Namespace, settings: Settings
) -> None:
    """Every phase, in order, on one running deployment."""
    n, c = opts.orders, opts.concurrency
    await scenarios.livez(target, tracker, opts.livez, c)
    orders = await scenarios.create_orders(target, tracker, 2 * n + 1, c)
    capture: Capture = await capture_apply(settings, target.api_urls[0], orders[-1])
    target.figures["sql_of_one_apply"] = capture.describe()
    payments = await scenarios.applies(target, tracker, orders[:n], c)
    await scenarios.raw_sql(target, tracker, capture, [o["id"] for o in orders[n : 2 * n]], c)
    if settings.database_url:
        with tracker.phase(f"{target.name}: cost of one round trip", 1):
            target.figures["round_trip_costs"] = await round_trip_costs(settings.database_url)
    await scenarios.hot_orders(target, tracker, opts.hot_orders, opts.clicks)
    await scenarios.notifications(target, tracker, payments[: opts.notifications], c)


@contextmanager
def embedded(workdir: Path, keys: Path) -> Iterator[tuple[Target, Settings]]:
    """`payonce serve` as a process: SQLite, in-process lock and cache, the sandbox mounted."""
    data_dir = workdir / "embedded"
    shutil.copytree(keys, data_dir / "sandbox")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    api_key = "sk_bench_embedded"
    child = Child(
        name="embedded",
        argv=[*PAYONCE, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=clean_env(PAYONCE_DATA_DIR=str(data_dir), PAYONCE_API_KEY=api_key, **UNLIMITED),
        log_path=workdir / "logs" / "embedded.log",
        ready_url=f"{url}/readyz",
    )
    child.start()
    try:
        child.wait_ready()
        target = Target(
            name=EMBEDDED,
            api_urls=[url],
            sandbox_url=f"{url}/sandbox",
            api_key=api_key,
            meter=CpuMeter({"payonce serve (API + sandbox)": [child.pid]}, {}),
            replay=lambda capture, ids, c, done: replay_sqlite(
                data_dir / "payonce.db", capture, ids, c, done
            ),
        )
        settings = Settings(
            data_dir=data_dir, api_key=api_key, sandbox_url=f"{url}/sandbox", mount_sandbox=False
        )
        yield target, settings
    finally:
        child.stop()


def _redis_counters(url: str) -> dict[str, float]:
    with redis.Redis.from_url(url) as client:
        stats = client.info("commandstats")
    counts = {
        f"redis {name.removeprefix('cmdstat_')}": float(v["calls"]) for name, v in stats.items()
    }
    counts["redis commands (all)"] = sum(counts.values())
    return counts


def _postgres_counters(url: str) -> dict[str, float]:
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        row = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    assert row is not None
    return {"postgresql commits (pg_stat, approximate)": float(row[0])}


@contextmanager
def distributed(
    workdir: Path, keys: Path, opts: argparse.Namespace
) -> Iterator[tuple[Target, Settings]]:
    """A local stack: its own PostgreSQL and Redis, the sandbox, API instances and workers."""
    data_dir = workdir / "stack"
    shutil.copytree(keys, data_dir / "payonce" / "sandbox")
    plan = StackPlan(
        data_dir=data_dir, api_instances=opts.apis, workers=opts.workers, settings=UNLIMITED
    )
    with Stack(plan) as stack:
        postgres, redis_server = stack.servers
        assert stack.sandbox is not None
        meter = CpuMeter(
            {
                "API instances": [child.pid for child in stack.apis],
                "worker": [child.pid for child in stack.workers],
                "sandbox": [stack.sandbox.pid],
                "redis": [redis_server.pid],
            },
            {"postgresql": postgres.pid},
        )

        def counters() -> dict[str, float]:
            return {**_redis_counters(stack.redis_url), **_postgres_counters(stack.database_url)}

        target = Target(
            name=DISTRIBUTED,
            api_urls=stack.api_urls,
            sandbox_url=stack.sandbox_url,
            api_key=stack.api_key,
            meter=meter,
            replay=lambda capture, ids, c, done: replay_postgres(
                stack.database_url, capture, ids, c, done
            ),
            counters=counters,
        )
        settings = Settings(
            database_url=stack.database_url,
            redis_url=stack.redis_url,
            sandbox_url=stack.sandbox_url,
            data_dir=data_dir / "payonce",
            api_key=stack.api_key,
        )
        yield target, settings


def machine() -> dict[str, Any]:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.partition(":")[2].strip()
            break
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "python": sys.version.split()[0],
        "system": f"{platform.system()} {platform.release()}",
    }


async def main(opts: argparse.Namespace, console: Console, workdir: Path) -> dict[str, Any]:
    started = time.monotonic()
    measured: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "command": " ".join(["./scripts/bench distributed", *sys.argv[1:]]),
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(opts).items()},
        "deployments": {},
    }
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    keys = workdir / "keys"
    with Progress(*columns, console=console, transient=False) as progress:
        tracker = Tracker(progress)
        for name in (EMBEDDED, DISTRIBUTED):
            if opts.only and opts.only != name:
                continue
            task = progress.add_task(f"{name}: starting", total=None)
            deployment = (
                embedded(workdir, keys) if name == EMBEDDED else distributed(workdir, keys, opts)
            )
            with deployment as (target, settings):
                progress.update(task, total=1, completed=1)
                await measure(target, tracker, opts, settings)
            measured["deployments"][name] = target.figures
    measured["wall_s"] = round(time.monotonic() - started, 1)
    return measured


if __name__ == "__main__":
    opts = options(sys.argv[1:])
    console = Console() if sys.stdout.isatty() else Console(width=150)
    workdir = Path(tempfile.mkdtemp(prefix="payonce-bench-"))
    SandboxKeys.load_or_create(workdir / "keys")
    try:
        figures = asyncio.run(main(opts, console, workdir))
    except BaseException:
        console.print(f"[red]stopped; every process's log is kept in {workdir}[/red]")
        raise
    shutil.rmtree(workdir, ignore_errors=True)
    figures["summary"] = report.summarise(figures)
    report.print_tables(figures, console)
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(report.dumps(figures))
    console.print(f"figures written to {opts.out} ({figures['wall_s']} s in all)")
