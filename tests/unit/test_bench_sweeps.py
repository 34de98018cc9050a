"""The sweeps benchmark runs end to end at a tiny size and measures what it says it measures.

No timing is asserted, ever: only that every due row was taken, the plans were read, and that
every payment the shoppers made was found by polls under both schedules.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench import sweeps
from rich.console import Console


def test_the_sweeps_bench_takes_every_due_row_and_counts_provider_calls(tmp_path: Path) -> None:
    out = tmp_path / "sweeps.json"
    argv = ["--backends", "sqlite", "--sizes", "600", "--due", "20", "--rounds", "1"]
    argv += ["--trades", "2", "--out", str(out)]
    with (tmp_path / "tables.txt").open("w") as tables:
        figures = sweeps.run(argv, Console(file=tables, width=200))

    assert json.loads(out.read_text())["summary"] == json.loads(json.dumps(figures["summary"]))
    measured = figures["sql"]["sqlite"]["600"]
    assert measured["rows"]["payments"] == 600
    assert measured["rows"]["poll_jobs"] == 10 + 40  # due with an overdue job, and watched
    for label in ("indexed", "no_index"):
        for name in ("sweeper", "expiry"):
            assert measured[label][name]["taken_per_pass"] == [20]
            assert measured[label][name]["reads_per_pass"] == [2]  # one batch, one empty read
        assert measured[label]["real_sweeper"]["swept_per_pass"] == [20]
        assert measured[label]["real_sweeper"]["provider_queries"] == 20
    # Both queries use their partial index; without it, they cannot.
    for name in ("sweeper", "expiry"):
        assert measured["indexed"]["plans"][name]["uses_partial_index"]
        assert not measured["no_index"]["plans"][name]["uses_partial_index"]

    rows = figures["summary"]["polling"]
    assert {(r["channel"], r["schedule"]) for r in rows} == {
        (channel, schedule)
        for channel in ("alipay", "wechat", "paypal", "boleto")
        for schedule in ("delayed", "fixed")
    }
    for row in rows:
        assert row["trades"] == 2
        assert row["paid_not_detected"] == 0
        assert row["provider_calls"] >= row["paid"]  # each payment was found by a query
