"""The distributed benchmark's summary: ratios against the same run's baselines, tables, JSON."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table

PHASES = ("livez", "applies", "raw_sql", "hot_order", "notifications")
CLIENT = "bench client (this process)"


def _servers_cpu_ms(phase: dict[str, Any]) -> float | None:
    """CPU ms per request of every server process (the load generator left out)."""
    spent = phase.get("cpu_ms_per_request")
    return round(sum(v for k, v in spent.items() if k != CLIENT), 3) if spent else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def _non_2xx(statuses: dict[str, int]) -> int:
    return sum(n for status, n in statuses.items() if not status.startswith("2"))


def _5xx(statuses: dict[str, int]) -> int:
    return sum(n for status, n in statuses.items() if status.startswith("5"))


def summarise(measured: dict[str, Any]) -> dict[str, Any]:
    """The headline figures of each deployment, each with its ratio to a same-run baseline."""
    summary: dict[str, Any] = {}
    for name, f in measured["deployments"].items():
        livez, applies, raw = f["livez"], f["applies"], f["raw_sql"]
        hot, notes = f["hot_order"], f["notifications"]
        summary[name] = {
            "livez_per_s": livez["per_s"],
            "livez_p50_ms": livez["p50_ms"],
            "livez_p99_ms": livez["p99_ms"],
            "applies_per_s": applies["per_s"],
            "apply_p50_ms": applies["p50_ms"],
            "apply_p99_ms": applies["p99_ms"],
            "apply_5xx": _5xx(applies["statuses"]),
            "apply_non_2xx": _non_2xx(applies["statuses"])
            + sum(applies["transport_errors"].values()),
            "raw_sql_applies_per_s": raw["applies_per_s"],
            "raw_sql_transactions_per_s": raw["transactions_per_s"],
            "service_to_raw": _ratio(applies["per_s"], raw["applies_per_s"]),
            "apply_p50_to_livez_p50": _ratio(applies["p50_ms"], livez["p50_ms"]),
            "hot_trades_opened_per_order": hot["trades_opened_per_order"],
            "hot_5xx": hot["server_errors"],
            "hot_p50_ms": hot["p50_ms"],
            "hot_p99_ms": hot["p99_ms"],
            "hot_p99_to_livez_p99": _ratio(hot["p99_ms"], livez["p99_ms"]),
            "notifications_per_s": notes["per_s"],
            "notification_p50_ms": notes["p50_ms"],
            "notification_p99_ms": notes["p99_ms"],
            "notifications_acknowledged": notes["acknowledged_success"],
            "notifications_posted": notes["notifications_posted"],
            "notifications_to_livez": _ratio(notes["per_s"], livez["per_s"]),
            "notifications_to_raw_applies": _ratio(notes["per_s"], raw["applies_per_s"]),
            "servers_cpu_ms_per_livez": _servers_cpu_ms(livez),
            "servers_cpu_ms_per_apply": _servers_cpu_ms(applies),
            "servers_cpu_ms_per_notification": _servers_cpu_ms(notes),
            "servers_cpu_ms_per_hot_click": _servers_cpu_ms(hot),
            "apply_cpu_to_livez_cpu": _ratio(_servers_cpu_ms(applies), _servers_cpu_ms(livez)),
        }
    return summary


def print_tables(measured: dict[str, Any], console: Console) -> None:
    cores = measured["machine"]["cores"]
    table = Table(title=f"payonce: applies, raw SQL, hot order, notifications ({cores} cores)")
    for column in ("deployment", "figure", "per s", "p50 ms", "p99 ms", "errors", "vs baseline"):
        table.add_column(column, justify="left" if column in ("deployment", "figure") else "right")
    for name, s in measured["summary"].items():
        f = measured["deployments"][name]
        hot = f["hot_order"]
        rows = [
            (
                "GET /livez (baseline)",
                s["livez_per_s"],
                s["livez_p50_ms"],
                s["livez_p99_ms"],
                "",
                "1.00",
            ),
            (
                "raw SQL of an apply (baseline)",
                s["raw_sql_applies_per_s"],
                f["raw_sql"]["p50_ms"],
                f["raw_sql"]["p99_ms"],
                str(f["raw_sql"]["rowcount_mismatches"] + sum(f["raw_sql"]["errors"].values())),
                "1.00",
            ),
            (
                "apply, distinct orders",
                s["applies_per_s"],
                s["apply_p50_ms"],
                s["apply_p99_ms"],
                f"{s['apply_5xx']} 5xx / {s['apply_non_2xx']} non-2xx",
                f"{s['service_to_raw']} x raw; p50 {s['apply_p50_to_livez_p50']} x livez",
            ),
            (
                f"hot order, {hot['clicks_per_order']} clicks x {hot['orders']}",
                None,
                s["hot_p50_ms"],
                s["hot_p99_ms"],
                f"{s['hot_5xx']} 5xx; trades {s['hot_trades_opened_per_order']}",
                f"p99 {s['hot_p99_to_livez_p99']} x livez",
            ),
            (
                "signed notifications handled",
                s["notifications_per_s"],
                s["notification_p50_ms"],
                s["notification_p99_ms"],
                f"{s['notifications_posted'] - s['notifications_acknowledged']} not acked",
                f"{s['notifications_to_livez']} x livez/s",
            ),
        ]
        for label, per_s, p50, p99, errors, ratio in rows:
            table.add_row(
                name,
                label,
                "" if per_s is None else f"{per_s:,.0f}",
                f"{p50:.1f}",
                f"{p99:.1f}",
                errors,
                ratio,
            )
        table.add_section()
    console.print(table)

    cpu = Table(title="CPU ms per request, by process (what the 2 cores were spent on)")
    cpu.add_column("deployment")
    cpu.add_column("phase")
    processes = sorted(
        {
            p
            for f in measured["deployments"].values()
            for phase in PHASES
            for p in f[phase].get("cpu_ms_per_request", {})
        }
    )
    for process in processes:
        cpu.add_column(process, justify="right")
    for name, f in measured["deployments"].items():
        for phase in PHASES:
            spent = f[phase].get("cpu_ms_per_request", {})
            cpu.add_row(name, phase, *(f"{spent[p]:.2f}" if p in spent else "" for p in processes))
    console.print(cpu)

    trips = Table(title="What one apply costs in round trips")
    for column in (
        "deployment",
        "SQL transactions",
        "SQL statements",
        "pool checkouts (pings)",
        "PG round trips",
        "Redis commands / apply (incl. inside Lua)",
    ):
        trips.add_column(column, justify="left" if column == "deployment" else "right")
    for name, f in measured["deployments"].items():
        sql = f["sql_of_one_apply"]
        per = f["applies"].get("per_request", {})
        redis_calls = per.get("redis commands (all)")
        trips.add_row(
            name,
            str(sql["transactions"]),
            str(sql["statements"]),
            str(sql["pool_checkouts"]),
            str(sql["round_trips_service"]) if sql["dialect"] != "sqlite" else "(in-process)",
            "" if redis_calls is None else f"{redis_calls:.1f}",
        )
    console.print(trips)
    print_round_trips(measured, console)


def print_round_trips(measured: dict[str, Any], console: Console) -> None:
    for name, f in measured["deployments"].items():
        costs = f.get("round_trip_costs")
        if not costs:
            continue
        table = Table(title=f"{name}: one round trip at a time, from this process's Python")
        for column in ("what", "wall us", "client CPU us"):
            table.add_column(column, justify="left" if column == "what" else "right")
        for what, cost in costs.items():
            table.add_row(what, f"{cost['wall_us']:.0f}", f"{cost['client_cpu_us']:.0f}")
        console.print(table)


def dumps(measured: dict[str, Any]) -> str:
    return json.dumps(measured, indent=1, default=str) + "\n"
