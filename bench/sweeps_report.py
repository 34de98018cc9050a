"""The sweeps bench's summary: ratios against the same run's baselines, the tables, the JSON."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table

PASSES = ("sweeper", "expiry")


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 1) if a and b else None


def _sql_rows(sql: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for backend, sizes in sql.items():
        for size, figures in sizes.items():
            indexed, scan = figures["indexed"], figures["no_index"]
            for name in PASSES:
                with_plan, without_plan = indexed["plans"][name], scan["plans"][name]
                first, last = _first_last(with_plan)
                rows.append(
                    {
                        "backend": backend,
                        "payments": int(size),
                        "pass": name,
                        "taken": indexed[name]["taken_per_pass"][0],
                        "reads": indexed[name]["reads_per_pass"][0],
                        "read_p50_ms": indexed[name]["read"].get("p50_ms"),
                        "read_p99_ms": indexed[name]["read"].get("p99_ms"),
                        "reads_total_ms": indexed[name]["read_total_ms_median"],
                        "pass_total_ms": indexed[name]["total_ms_median"],
                        "scan_read_p50_ms": scan[name]["read"].get("p50_ms"),
                        "scan_read_p99_ms": scan[name]["read"].get("p99_ms"),
                        "scan_reads_total_ms": scan[name]["read_total_ms_median"],
                        "scan_pass_total_ms": scan[name]["total_ms_median"],
                        "scan_to_index_reads": _ratio(
                            scan[name]["read_total_ms_median"],
                            indexed[name]["read_total_ms_median"],
                        ),
                        "scan_to_index_pass": _ratio(
                            scan[name]["total_ms_median"], indexed[name]["total_ms_median"]
                        ),
                        "plan_uses_partial_index": with_plan["uses_partial_index"],
                        "plan_first_ms": first.get("execution_ms"),
                        "plan_last_ms": last.get("execution_ms"),
                        "plan_first_buffers": _buffers(first),
                        "plan_last_buffers": _buffers(last),
                        "plan_first_rows_examined": first.get("rows_examined"),
                        "plan_last_rows_examined": last.get("rows_examined"),
                        "scan_plan_ms": without_plan.get("execution_ms"),
                        "scan_plan_buffers": _buffers(without_plan),
                        "scan_plan_rows_examined": without_plan.get("rows_examined"),
                    }
                )
            for label, found in (("indexed", indexed), ("no_index", scan)):
                real = found.get("real_sweeper")
                if real:
                    rows.append(
                        {
                            "backend": backend,
                            "payments": int(size),
                            "pass": f"real sweeper ({label})",
                            "taken": real["swept_per_pass"][0],
                            "pass_total_ms": real["pass_ms_median"],
                            "ms_per_trade": real["ms_per_trade_median"],
                            "reads": real["reads_per_pass"][0],
                            "reads_ms": real["reads_ms_per_pass"][0],
                        }
                    )
    return rows


def _first_last(plan: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The plan figures of the first batch's read and of the last one that found rows."""
    batches = plan.get("per_batch") or [{}]
    return batches[0], batches[-2] if len(batches) > 1 else batches[-1]


def _buffers(plan: dict[str, Any]) -> int | None:
    if "buffers_hit" not in plan and "buffers_read" not in plan:
        return None
    return int(plan.get("buffers_hit", 0)) + int(plan.get("buffers_read", 0))


def summarise(measured: dict[str, Any]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    if "sql" in measured:
        summary["sql"] = _sql_rows(measured["sql"])
    if "polling" in measured:
        summary["polling"] = measured["polling"]["summary"]
    return summary


def print_tables(measured: dict[str, Any], console: Console) -> None:
    cores = measured["machine"]["cores"]
    if "sql" in measured["summary"]:
        print_sql(measured, console, cores)
    if "polling" in measured["summary"]:
        print_polling(measured["summary"]["polling"], console)


def print_sql(measured: dict[str, Any], console: Console, cores: int) -> None:
    table = Table(title=f"Every due row, 100 a batch: partial index vs none ({cores} cores)")
    columns = (
        "backend",
        "payments",
        "pass",
        "taken",
        "reads",
        "read p50 ms",
        "read p99 ms",
        "reads ms",
        "pass ms",
        "no index: read p50",
        "no index: reads ms",
        "no index / index (reads)",
        "plan: index?",
        "plan ms first/last",
        "buffers first/last",
        "no index: buffers",
    )
    for column in columns:
        table.add_column(column, justify="left" if column in ("backend", "pass") else "right")
    for row in measured["summary"]["sql"]:
        if "ms_per_trade" in row:  # the real sweeper's rows: the next table
            continue
        table.add_row(
            row["backend"],
            f"{row['payments']:,}",
            row["pass"],
            str(row["taken"]),
            str(row["reads"]),
            _f(row["read_p50_ms"]),
            _f(row["read_p99_ms"]),
            _f(row["reads_total_ms"]),
            _f(row["pass_total_ms"]),
            _f(row["scan_read_p50_ms"]),
            _f(row["scan_reads_total_ms"]),
            f"{row['scan_to_index_reads']}x",
            "yes" if row["plan_uses_partial_index"] else "NO",
            f"{_f(row['plan_first_ms'])} / {_f(row['plan_last_ms'])}",
            f"{_n(row['plan_first_buffers'])} / {_n(row['plan_last_buffers'])}",
            _n(row["scan_plan_buffers"]),
        )
    console.print(table)
    real = Table(title="The real sweeper (payonce.service.sweeper.sweep), provider stub, one pass")
    columns = (
        "backend",
        "payments",
        "indexes",
        "swept",
        "pass ms",
        "ms per trade",
        "reads",
        "reads ms",
    )
    for column in columns:
        real.add_column(column, justify="left" if column == "backend" else "right")
    for row in measured["summary"]["sql"]:
        if "ms_per_trade" in row:
            real.add_row(
                row["backend"],
                f"{row['payments']:,}",
                row["pass"].split("(")[1].rstrip(")"),
                str(row["taken"]),
                _f(row["pass_total_ms"]),
                _f(row["ms_per_trade"]),
                str(row["reads"]),
                _f(row["reads_ms"]),
            )
    console.print(real)


def _n(value: int | None) -> str:
    return "" if value is None else f"{value:,}"


def print_polling(rows: list[dict[str, Any]], console: Console) -> None:
    table = Table(title="Provider load: the delayed-poll schedule vs a fixed-interval scan")
    columns = (
        "channel",
        "schedule",
        "trades",
        "paid",
        "provider calls",
        "queries",
        "per trade",
        "per paid trade",
        "per unpaid trade",
        "detect p50 s",
        "detect p99 s",
        "missed",
        "fixed / delayed calls",
    )
    for column in columns:
        table.add_column(column, justify="left" if column in ("channel", "schedule") else "right")
    for row in rows:
        table.add_row(
            row["channel"],
            row["schedule"],
            str(row["trades"]),
            str(row["paid"]),
            str(row["provider_calls"]),
            str(row["queries"]),
            _f(row["calls_per_trade"]),
            _f(row["calls_per_paid_trade"]),
            _f(row["calls_per_unpaid_trade"]),
            _f(row["detect_p50_s"]),
            _f(row["detect_p99_s"]),
            str(row["paid_not_detected"]),
            ""
            if row.get("fixed_to_delayed_calls") is None
            else f"{row['fixed_to_delayed_calls']}x",
        )
    console.print(table)


def _f(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"


def dumps(measured: dict[str, Any]) -> str:
    return json.dumps(measured, indent=1, default=str) + "\n"
