"""`payonce worker --metrics-port` serves what the worker counts (polls, the relay, refunds,
the outbox's backlog) at /metrics, behind the admin key, and stops cleanly."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx

from payonce.entrypoints.processes import PAYONCE, clean_env, free_port
from tests.e2e.conftest import running

ADMIN = "ak_" + "w" * 40
API = "sk_" + "w" * 40


def test_a_worker_serves_its_metrics_to_the_admin_key_alone(
    tmp_path: Path, postgres_url: str
) -> None:
    env = clean_env(
        PAYONCE_DATA_DIR=str(tmp_path),
        PAYONCE_DATABASE_URL=postgres_url,
        PAYONCE_API_KEY=API,
        PAYONCE_ADMIN_KEY=ADMIN,
        PAYONCE_LOG_FORMAT="json",
    )
    upgraded = subprocess.run([*PAYONCE, "db", "upgrade"], env=env, capture_output=True)
    assert upgraded.returncode == 0, upgraded.stderr
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "worker.log"
    args = ["worker", "--metrics-port", str(port)]
    with running(args, env, f"{url}/livez", log_path) as worker, httpx.Client() as http:
        assert http.get(f"{url}/readyz").json() == {"status": "ok", "storage": "ok"}
        refused = http.get(f"{url}/metrics", headers={"Authorization": f"Bearer {API}"})
        assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")
        shown = http.get(f"{url}/metrics", headers={"Authorization": f"Bearer {ADMIN}"})
        assert shown.status_code == 200
        assert "payonce_outbox_undelivered 0.0" in shown.text
        assert "payonce_outbox_oldest_undelivered_age_seconds 0.0" in shown.text
        assert http.get(f"{url}/api/orders/ord_x").status_code == 404  # nothing but operations
        worker.terminate()
        assert worker.wait(timeout=20) == 0
    # The worker logs JSON lines (stdout carries its banner too).
    lines = [line for line in log_path.read_text().splitlines() if line.startswith("{")]
    assert lines
    assert all("level" in json.loads(line) for line in lines)
