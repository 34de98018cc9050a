"""`payonce stack`: the one command that runs the distributed deployment on one machine."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import psutil

from tests.e2e.conftest import PAYONCE, clean_env, free_port, pay_one_order


def _printed(log: Path, label: str) -> str:
    match = re.search(rf"{label}\s+(\S+)", log.read_text())
    assert match, log.read_text()
    return match.group(1)


def test_the_stack_command_runs_everything_and_stops_everything(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "stack.log"
    with log.open("w") as out:
        stack = subprocess.Popen(
            [*PAYONCE, "stack", "--apis", "2", "--workers", "1", "--port", str(port)],
            env=clean_env(),
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        for _ in range(1200):
            if "API key" in log.read_text() or stack.poll() is not None:
                break
            time.sleep(0.05)
        api_key = _printed(log, "API key")
        sandbox = _printed(log, "sandbox")
        assert _printed(log, "PostgreSQL").startswith("postgresql+psycopg://")
        assert _printed(log, "Redis").startswith("redis://")
        children = psutil.Process(stack.pid).children(recursive=True)
        names = " ".join(" ".join(child.cmdline()) for child in children)
        for part in ("postgres", "redis-server", "payonce sandbox", "payonce serve", "worker"):
            assert part in names.replace("-m payonce", "payonce"), names

        with httpx.Client(timeout=40) as http:
            first, second = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port + 1}"
            current = pay_one_order(  # paid through the second, watched on the first
                http, order_api=first, pay_api=second, api_key=api_key, sandbox_url=sandbox
            )
            assert current["status"] == "READY_FOR_SHIPMENT"
    finally:
        stack.send_signal(signal.SIGTERM)  # as a service manager stops it; Ctrl-C is the same
        stack.wait(timeout=60)
    assert not [child for child in children if child.is_running() and child.status() != "zombie"]
    assert stack.returncode == 0, log.read_text()
