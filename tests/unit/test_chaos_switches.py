"""The chaos harness's switches in payonce itself: a clock shared through a file, crashing
failpoints, and the defences turned off; each does what it says and nothing else."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from payonce.adapters.clock import SharedClock
from payonce.adapters.failpoints import CRASH_STATUS
from payonce.adapters.locks.unlocked import NoLocks
from payonce.bootstrap import bootstrap, failpoints_of, policy_of
from payonce.config import Settings
from payonce.ports.failpoints import NoFailpoints
from payonce.service.refunds import Refunder


def test_processes_sharing_a_clock_file_move_forward_together(tmp_path: Path) -> None:
    path = tmp_path / "clock-offset"
    sandbox, api = SharedClock(path), SharedClock(path)
    before = api.now()
    sandbox.advance(timedelta(hours=2))
    assert timedelta(hours=2) <= api.now() - before < timedelta(hours=2, seconds=5)
    api.advance(timedelta(minutes=1))  # either may move it; the offsets add up
    assert timedelta(hours=2, minutes=1) <= sandbox.now() - before < timedelta(hours=2, minutes=2)


def test_a_shared_clock_never_runs_backwards(tmp_path: Path) -> None:
    path = tmp_path / "clock-offset"
    clock = SharedClock(path)
    clock.advance(timedelta(days=1))
    seen = clock.now()
    path.write_text("0\n")  # someone writes an earlier offset
    assert clock.now() >= seen
    with pytest.raises(ValueError, match="forward"):
        clock.advance(timedelta(seconds=-1))


_CRASH = """
from payonce.adapters.failpoints import CrashingFailpoints
points = CrashingFailpoints({"after_provider_call": RATE}, seed="7")
for _ in range(100):
    points.reach("after_commit_before_relay")  # a point without a rate never strikes
    points.reach("after_provider_call")
print("survived")
"""


@pytest.mark.parametrize(
    ("rate", "status", "survived"), [(1.0, CRASH_STATUS, ""), (0.0, 0, "survived\n")]
)
def test_a_failpoint_crashes_its_process_as_kill_9(rate: float, status: int, survived: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _CRASH.replace("RATE", str(rate))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stdout) == (status, survived)


def test_without_failpoints_reaching_one_does_nothing() -> None:
    points = failpoints_of(Settings())
    assert isinstance(points, NoFailpoints)
    points.reach("after_provider_call")


def test_the_reuse_margin_is_a_setting() -> None:
    assert policy_of(Settings()).reuse_margin == timedelta(seconds=60)
    assert policy_of(Settings(reuse_margin_s=10)).reuse_margin == timedelta(seconds=10)


def test_defences_are_on_unless_turned_off() -> None:
    on, off = policy_of(Settings()), policy_of(Settings(defences="off"))
    flags = ("reuse_open_trades", "close_before_new", "poll_trades", "reconcile_daily")
    assert [getattr(on, flag) for flag in flags] == [True] * 4
    assert [getattr(off, flag) for flag in flags] == [False] * 4


async def test_with_defences_off_there_is_no_lock_and_no_refunder(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, defences="off", mount_sandbox=False)
    container = await bootstrap(settings, public_url="http://127.0.0.1:1")
    try:
        assert isinstance(container.coordination.locks, NoLocks)
        assert not any(isinstance(c, Refunder) for c in container.deps.consumers)
    finally:
        await container.aclose()
    defended = await bootstrap(
        Settings(data_dir=tmp_path, mount_sandbox=False), public_url="http://127.0.0.1:1"
    )
    try:
        assert not isinstance(defended.coordination.locks, NoLocks)
        assert any(isinstance(c, Refunder) for c in defended.deps.consumers)
    finally:
        await defended.aclose()
