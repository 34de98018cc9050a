"""The run's report: counts per behaviour and fault, every violation with its order and the seed
to replay it, and time to consistency; as a rich table and as JSON."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from payonce.entrypoints.chaos.checks import INVARIANTS, Violation
from payonce.entrypoints.chaos.scenario import Scenario


def percentiles(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "p50": None, "p99": None, "max": None}
    ordered = sorted(values)
    if len(ordered) == 1:
        p50 = p99 = ordered[0]
    else:
        cuts = statistics.quantiles(ordered, n=100, method="inclusive")
        p50, p99 = cuts[49], cuts[98]
    return {"n": len(ordered), "p50": round(p50, 3), "p99": round(p99, 3), "max": ordered[-1]}


@dataclass
class Report:
    scenario: Scenario
    behaviours: Counter[str] = field(default_factory=Counter)
    outcomes: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    faults: Counter[str] = field(default_factory=Counter)
    violations: list[Violation] = field(default_factory=list)
    # Provider capture → order READY_FOR_SHIPMENT, in seconds of payonce's (dilated) clock.
    to_ready_clock_s: list[float] = field(default_factory=list)
    # The same by channel: a voucher is confirmed by its bank and polled in bank hours.
    to_ready_by_channel: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    # Wallet's payment → the shopper's page told (real seconds), for shoppers still there.
    to_page_s: list[float] = field(default_factory=list)
    not_told_while_there: int = 0
    shopper_errors: Counter[str] = field(default_factory=Counter)
    shopper_error_samples: list[str] = field(default_factory=list)
    # payonce processes that exited with no failpoint to explain it (a crash of its own).
    unexpected_exits: list[str] = field(default_factory=list)
    # The answers that were not 2xx, by status and problem code (payonce's refusals).
    refusals: Counter[str] = field(default_factory=Counter)
    # Every 5xx answer, including those the shoppers retried.
    server_errors: Counter[str] = field(default_factory=Counter)
    run_s: float = 0.0
    quiesce_s: float = 0.0
    clock_advanced_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.violations and not self.unexpected_exits

    def as_json(self) -> dict[str, Any]:
        by_invariant = Counter(v.invariant for v in self.violations)
        return {
            "ok": self.ok,
            "seed": self.scenario.seed,
            "scenario": self.scenario.model_dump(mode="json"),
            "shoppers": sum(self.behaviours.values()),
            "behaviours": dict(self.behaviours),
            "outcomes": {name: dict(counts) for name, counts in self.outcomes.items()},
            "faults": dict(self.faults),
            "violations_by_invariant": {name: by_invariant.get(name, 0) for name in INVARIANTS},
            "violations": [asdict(v) for v in self.violations],
            "time_to_consistency": {
                "capture_to_ready_clock_s": percentiles(self.to_ready_clock_s),
                "capture_to_ready_clock_s_by_channel": {
                    channel: percentiles(values)
                    for channel, values in sorted(self.to_ready_by_channel.items())
                },
                "wallet_pay_to_page_told_s": percentiles(self.to_page_s),
                "left_before_told": self.not_told_while_there,
            },
            "shopper_errors": dict(self.shopper_errors),
            "shopper_error_samples": self.shopper_error_samples[:20],
            "unexpected_exits": self.unexpected_exits,
            "refusals": dict(self.refusals),
            "server_errors": dict(self.server_errors),
            "run_s": round(self.run_s, 1),
            "quiesce_s": round(self.quiesce_s, 1),
            "clock_advanced_s": round(self.clock_advanced_s),
        }

    def show(self, console: Console, *, violations_shown: int = 20) -> None:
        shoppers = Table(title=f"chaos run, seed {self.scenario.seed}: shoppers")
        shoppers.add_column("behaviour")
        shoppers.add_column("shoppers", justify="right")
        shoppers.add_column("orders paid", justify="right")
        shoppers.add_column("orders closed", justify="right")
        for name, count in sorted(self.behaviours.items()):
            outcome = self.outcomes[name]
            shoppers.add_row(
                name,
                str(count),
                str(outcome.get("READY_FOR_SHIPMENT", 0)),
                str(outcome.get("CLOSED", 0)),
            )
        console.print(shoppers)
        faults = Table(title="faults that struck")
        faults.add_column("fault")
        faults.add_column("count", justify="right")
        for name, count in sorted(self.faults.items()):
            faults.add_row(name, str(count))
        console.print(faults)
        invariants = Table(title="promises")
        invariants.add_column("invariant")
        invariants.add_column("violations", justify="right")
        by_invariant = Counter(v.invariant for v in self.violations)
        for name, words in INVARIANTS.items():
            count = by_invariant.get(name, 0)
            style = "red" if count else "green"
            invariants.add_row(f"{name} {words}", f"[{style}]{count}[/{style}]")
        console.print(invariants)
        timing = self.as_json()["time_to_consistency"]
        console.print(
            "time to consistency: capture → READY (clock s) "
            f"{timing['capture_to_ready_clock_s']}; wallet → page told (real s) "
            f"{timing['wallet_pay_to_page_told_s']}; left before told "
            f"{self.not_told_while_there}"
        )
        for violation in self.violations[:violations_shown]:
            console.print(
                f"[red]{violation.invariant}[/red] order {violation.order_id} "
                f"(shopper {violation.shopper}, seed {self.scenario.seed}): {violation.detail}"
            )
        if len(self.violations) > violations_shown:
            console.print(f"… and {len(self.violations) - violations_shown} more (see the JSON)")
        for exit_ in self.unexpected_exits:
            console.print(f"[red]unexpected exit[/red] {exit_}")
        verdict = "[green]no violations[/green]" if self.ok else "[red]VIOLATIONS[/red]"
        console.print(
            f"{verdict}: {sum(self.behaviours.values())} shoppers in {self.run_s:.0f} s, "
            f"quiescent after {self.quiesce_s:.0f} s more"
        )
