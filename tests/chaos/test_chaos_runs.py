"""`payonce chaos` for real: the CI's seeded sets keep every promise under every fault, and with
its defences off payonce breaks them and the harness says so (the proof that it can fail).

The full set (10,000 shoppers on the stack) is marked slow: `./scripts/test -m slow`.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from payonce.entrypoints.chaos.checks import INVARIANTS
from payonce.entrypoints.chaos.scenario import BEHAVIOURS
from payonce.entrypoints.processes import PAYONCE, clean_env
from payonce.ports.failpoints import FAILPOINTS

SCENARIOS = Path(__file__).parents[2] / "chaos"
# Every fault the sandbox injects shows in the report (forgeries by kind, calls by method).
SANDBOX_FAULTS = (
    "notification dropped",
    "notification duplicate",
    "notification reordered",
    "notification forged:bad_signature",
    "notification forged:changed_amount",
    "notification forged:other_merchant",
    "notification forged:stale_timestamp",
    "order service down",
)


def chaos(tmp_path: Path, *args: str, **env: str) -> tuple[int, dict[str, Any], str]:
    """Run the command; answer its exit status, its JSON report and what it printed."""
    report = tmp_path / "report.json"
    done = subprocess.run(
        [*PAYONCE, "chaos", *args, "--report", str(report), "--data-dir", str(tmp_path / "run")],
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    printed = done.stdout + done.stderr
    assert report.exists(), printed
    return done.returncode, json.loads(report.read_text()), printed


def assert_every_promise_kept(status: int, report: dict[str, Any], printed: str) -> None:
    assert report["violations"] == [], printed
    assert report["violations_by_invariant"] == dict.fromkeys(INVARIANTS, 0)
    assert (status, report["ok"]) == (0, True), printed
    assert report["shopper_errors"] == {}, printed
    assert set(report["behaviours"]) == set(BEHAVIOURS)
    for fault in SANDBOX_FAULTS:
        assert report["faults"].get(fault, 0) > 0, (fault, report["faults"])
    timed_out = [name for name in report["faults"] if name.startswith("provider call timed out")]
    assert timed_out, report["faults"]
    # Every order ended paid or closed (a scanned QR may be paid by the pay-before-close
    # fault, so even an abandoned order can end paid). payonce answered no 500: a 5xx is a
    # provider's refusal (502) or unavailability (503, 504), even among retried answers.
    paid = sum(counts.get("READY_FOR_SHIPMENT", 0) for counts in report["outcomes"].values())
    closed = sum(counts.get("CLOSED", 0) for counts in report["outcomes"].values())
    assert paid + closed == report["shoppers"], report["outcomes"]
    assert not any(r.startswith("500") for r in [*report["refusals"], *report["server_errors"]])


def test_the_embedded_server_keeps_every_promise_under_every_fault(tmp_path: Path) -> None:
    status, report, printed = chaos(tmp_path, "--scenario", str(SCENARIOS / "ci-embedded.toml"))
    assert_every_promise_kept(status, report, printed)


def test_the_stack_keeps_every_promise_through_crashes_and_outages(
    tmp_path: Path, postgres_url: str
) -> None:
    status, report, printed = chaos(
        tmp_path,
        "--scenario",
        str(SCENARIOS / "ci-stack.toml"),
        PAYONCE_DATABASE_URL=postgres_url,
    )
    assert_every_promise_kept(status, report, printed)
    faults = report["faults"]
    for point in FAILPOINTS:
        crashed = sum(n for name, n in faults.items() if name.endswith(f"crashed at {point}"))
        assert crashed > 0, (point, faults)
    assert faults["redis restarted"] == 2
    assert faults["lock holder paused past TTL"] == 2
    assert faults["order service down"] == 2


def test_without_its_defences_payonce_breaks_its_promises_and_the_harness_says_so(
    tmp_path: Path,
) -> None:
    status, report, printed = chaos(
        tmp_path, "--shoppers", "50", "--seed", "20261124", "--defences", "off"
    )
    assert (status, report["ok"]) == (1, False), printed
    found = report["violations_by_invariant"]
    # Extra captures are kept (no refunds) and trades are forgotten instead of closed.
    assert min(found["I1"], found["I7"]) > 0, found
    for violation in report["violations"]:
        assert violation["invariant"] in INVARIANTS
        assert violation["order_id"] is None or violation["order_id"].startswith("ord_")
    assert report["seed"] == 20261124
    assert "VIOLATIONS" in printed
    assert "seed 20261124" in printed


@pytest.mark.slow
def test_the_full_set_on_the_stack_keeps_every_promise(tmp_path: Path, postgres_url: str) -> None:
    status, report, printed = chaos(
        tmp_path,
        "--scenario",
        str(SCENARIOS / "full-stack.toml"),
        PAYONCE_DATABASE_URL=postgres_url,
    )
    assert (status, report["violations"]) == (0, []), printed
