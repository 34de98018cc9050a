"""``payonce chaos``: the chaos harness from the command line, its flags and its exit status."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Annotated, Literal, cast

import typer
from rich.console import Console

from payonce.entrypoints.chaos.scenario import (
    ProcessFaults,
    Scenario,
    Target,
    every_process_fault,
    every_sandbox_fault,
)

console = Console()


def chaos(
    shoppers: Annotated[int, typer.Option(help="Simulated shoppers.", min=1)] = 300,
    seed: Annotated[int, typer.Option(help="Replays the same run.")] = 1,
    target: Annotated[
        str, typer.Option(help="embedded: one `payonce serve`; stack: PostgreSQL, Redis, workers.")
    ] = "embedded",
    concurrency: Annotated[int, typer.Option(help="Shoppers on the site at once.", min=1)] = 32,
    faults: Annotated[
        bool, typer.Option(help="Every sandbox fault (and on the stack every process fault).")
    ] = True,
    defences: Annotated[
        str, typer.Option(help="off: no lock, reuse, close-before-new, refunds or polls.")
    ] = "on",
    scenario_file: Annotated[
        Path | None,
        typer.Option("--scenario", help="A scenario file (JSON, or .toml); flags are ignored."),
    ] = None,
    report_path: Annotated[
        Path, typer.Option("--report", help="Where the JSON report is written.")
    ] = Path("chaos-report.json"),
    data_dir: Annotated[
        Path | None, typer.Option(help="Where the run's servers keep data and logs (kept).")
    ] = None,
) -> None:
    """Drive simulated shoppers through payonce under provider faults and process crashes,
    bring it to quiescence and check every promise (I1 to I9). Exit 1 on any violation."""
    if target not in ("embedded", "stack") or defences not in ("on", "off"):
        console.print("[red]--target is embedded or stack; --defences is on or off[/red]")
        raise typer.Exit(2)
    if scenario_file is not None:
        scenario = Scenario.load(scenario_file)
    else:
        scenario = built_scenario(
            shoppers,
            seed,
            cast(Target, target),
            concurrency,
            faults,
            cast(Literal["on", "off"], defences),
        )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not every shopper's request

    def interrupted(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # stop the system under test in order, as Ctrl-C does

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupted)
    from payonce.entrypoints.chaos.run import run_chaos  # the harness, only when it runs

    where = data_dir or Path(tempfile.mkdtemp(prefix="payonce-chaos-"))
    report = asyncio.run(
        run_chaos(
            scenario,
            where.resolve(),
            # A fresh database (the stack starts PostgreSQL in the data directory without it).
            database_url=os.environ.get("PAYONCE_DATABASE_URL"),
            console=console,
        )
    )
    if data_dir is None and report.ok:
        shutil.rmtree(where, ignore_errors=True)
    elif data_dir is None:
        console.print(f"the run's data and logs are kept in {where}")
    report.show(console)
    report_path.write_text(json.dumps(report.as_json(), indent=2) + "\n")
    console.print(f"report: {report_path}")
    raise typer.Exit(0 if report.ok else 1)


def built_scenario(
    shoppers: int,
    seed: int,
    target: Target,
    concurrency: int,
    faults: bool,
    defences: Literal["on", "off"],
) -> Scenario:
    """The scenario the flags describe."""
    return Scenario(
        seed=seed,
        shoppers=shoppers,
        concurrency=concurrency,
        target=target,
        defences=defences,
        sandbox_faults=every_sandbox_fault(seed) if faults else Scenario().sandbox_faults,
        process_faults=every_process_fault(target) if faults else ProcessFaults(),
    )
