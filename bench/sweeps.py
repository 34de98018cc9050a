"""Issue 5's benchmark: the sweeper's and the expiry scan's cost at 10k and 1M payments, with the
plans, and the provider load of the delayed-poll schedule against a fixed-interval scan.

Run with `./scripts/bench sweeps [options]` (`--help` lists them). Part one starts its own
PostgreSQL from the machine's binaries (and uses an SQLite file), migrates each database with
payonce's migrations, loads N orders and payments, then takes every due one through the
repository in batches of 100, with the partial due-time indexes and, as the same run's baseline,
without them (bench/sweeps_sql.py), and times the real sweeper over the same rows with a
provider stub (bench/sweeps_service.py). Part two drives the real poll jobs on an adjustable clock
against the embedded sandbox, and a plain fixed-interval scan the same way, and counts the
queries the sandbox received (bench/sweeps_polling.py). It prints tables and writes
bench/results/sweeps.json. A benchmark, never a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console

from payonce.adapters.storage.engine import open_engine, sqlite_url, upgrade
from payonce.adapters.storage.sql import SqlStorage
from payonce.entrypoints import stack_servers
from payonce.service.context import Policy

from . import sweeps_data, sweeps_report, sweeps_sql
from .distributed import machine
from .sweeps_data import Population

RESULTS = Path(__file__).with_name("results") / "sweeps.json"
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
POSTGRESQL = "postgresql"
SQLITE = "sqlite"


def options(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="./scripts/bench sweeps", description=__doc__)
    parser.add_argument(
        "--sizes", default="10000,1000000", help="payments (and orders) loaded, comma-separated"
    )
    parser.add_argument("--due", type=int, default=1000, help="due payments (and expired orders)")
    parser.add_argument("--rounds", type=int, default=3, help="passes over the due set, each way")
    parser.add_argument(
        "--backends", default=f"{POSTGRESQL},{SQLITE}", help="postgresql, sqlite, or both"
    )
    parser.add_argument(
        "--trades", type=int, default=200, help="trades per channel in the polling load"
    )
    parser.add_argument("--seed", type=int, default=5, help="seed of the shoppers' pay times")
    parser.add_argument("--only", choices=("sql", "polling"), help="run one of the two parts only")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the JSON goes")
    parsed = parser.parse_args(argv)
    parsed.sizes = [int(size) for size in str(parsed.sizes).split(",") if size]
    parsed.backends = [name for name in str(parsed.backends).split(",") if name]
    return parsed


@contextmanager
def postgres_server(workdir: Path) -> Iterator[str]:
    """A PostgreSQL server of this run's own, with its defaults (as `payonce stack` starts it)."""
    child, url = stack_servers.postgres(workdir / "postgresql")
    child.start()
    try:
        child.wait_ready()
        yield url
    finally:
        child.stop()


def _dsn(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _postgres_sql(dsn: str) -> sweeps_sql.RunSql:
    def run(statements: list[str]) -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement.encode())

    return run


def _sqlite_sql(path: Path) -> sweeps_sql.RunSql:
    def run(statements: list[str]) -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            for statement in statements:
                conn.execute(statement)
        finally:
            conn.close()

    return run


async def one_size(
    backend: str, server_url: str | None, workdir: Path, population: Population, rounds: int
) -> dict[str, Any]:
    """Make a database, migrate, load, measure, drop it."""
    size = population.payments
    if backend == POSTGRESQL:
        assert server_url is not None
        name = f"sweeps_{size}"
        admin = _dsn(server_url)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name}".encode())
            conn.execute(f"CREATE DATABASE {name}".encode())
        url = server_url.rsplit("/", 1)[0] + f"/{name}"
    else:
        path = workdir / f"sweeps_{size}.db"
        url = sqlite_url(path)
    engine = open_engine(url)
    try:
        await upgrade(engine)
        started = time.monotonic()
        if backend == POSTGRESQL:
            sweeps_data.load_postgres(_dsn(url), population)
            counts = sweeps_data.counts_postgres(_dsn(url))
            run_sql = _postgres_sql(_dsn(url))
        else:
            sweeps_data.load_sqlite(str(path), population)
            counts = sweeps_data.counts_sqlite(str(path))
            run_sql = _sqlite_sql(path)
        load_s = round(time.monotonic() - started, 1)
        measured = await sweeps_sql.measure(
            SqlStorage(engine), Policy(), population, rounds, run_sql
        )
    finally:
        await engine.dispose()
    if backend == POSTGRESQL:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name}".encode())
    else:
        path.unlink()
    return {"load_s": load_s, "rows": counts, **measured}


async def sql_part(opts: argparse.Namespace, workdir: Path, console: Console) -> dict[str, Any]:
    policy = Policy()
    found: dict[str, Any] = {}
    with _maybe_postgres(POSTGRESQL in opts.backends, workdir) as server_url:
        for backend in opts.backends:
            found[backend] = {}
            for size in opts.sizes:
                population = Population(
                    payments=size,
                    due=opts.due,
                    now=NOW,
                    sweep_after=policy.sweep_after,
                    sweep_overdue=policy.sweep_overdue,
                )
                console.print(f"{backend}: {size:,} payments: loading and measuring")
                found[backend][str(size)] = await one_size(
                    backend, server_url, workdir, population, opts.rounds
                )
    return found


@contextmanager
def _maybe_postgres(wanted: bool, workdir: Path) -> Iterator[str | None]:
    """This run's PostgreSQL server's URL, when PostgreSQL is measured at all."""
    if not wanted:
        yield None
        return
    with postgres_server(workdir) as url:
        yield url


def _source() -> dict[str, Any]:
    """The commit measured, and whether src/ differed from it (others edit the same tree)."""

    def git(*args: str) -> str:
        done = subprocess.run(  # noqa: S603
            ["git", *args],  # noqa: S607
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
        )
        return done.stdout.strip()

    changed = git("status", "--porcelain", "--", "src")
    return {"commit": git("rev-parse", "--short", "HEAD"), "src_changed": changed.splitlines()}


async def main(opts: argparse.Namespace, console: Console, workdir: Path) -> dict[str, Any]:
    started = time.monotonic()
    measured: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "command": " ".join(["./scripts/bench sweeps", *sys.argv[1:]]),
        "source": _source(),
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(opts).items()},
    }
    if opts.only != "polling":
        measured["sql"] = await sql_part(opts, workdir, console)
    if opts.only != "sql":
        from .sweeps_polling import polling_part

        measured["polling"] = await polling_part(opts, workdir, console)
    measured["wall_s"] = round(time.monotonic() - started, 1)
    return measured


def run(argv: list[str], console: Console | None = None) -> dict[str, Any]:
    """The whole bench; returns (and writes) the figures."""
    opts = options(argv)
    console = console or (Console() if sys.stdout.isatty() else Console(width=150))
    workdir = Path(tempfile.mkdtemp(prefix="payonce-sweeps-"))
    try:
        figures = asyncio.run(main(opts, console, workdir))
    except BaseException:
        console.print(f"[red]stopped; the logs are kept in {workdir}[/red]")
        raise
    shutil.rmtree(workdir, ignore_errors=True)
    figures["summary"] = sweeps_report.summarise(figures)
    sweeps_report.print_tables(figures, console)
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(sweeps_report.dumps(figures))
    console.print(f"figures written to {opts.out} ({figures['wall_s']} s in all)")
    return figures


if __name__ == "__main__":
    run(sys.argv[1:])
