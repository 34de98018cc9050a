"""`payonce reconcile` against a running embedded server: a capture payonce never heard of is
reported (exit 1), then repaired (exit 0) and the order is paid."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

from payonce.entrypoints.processes import PAYONCE, clean_env, free_port
from tests.e2e.conftest import api_key_printed, running

CHINA = ZoneInfo("Asia/Shanghai")


def test_reconcile_reports_then_repairs_a_capture_payonce_never_heard_of(
    tmp_path: Path,
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = clean_env(
        PAYONCE_DATA_DIR=str(tmp_path),
        PAYONCE_CLOCK="adjustable",
        # Nothing else may find the payment first: no poll, sweep or expiry within the test.
        PAYONCE_POLL_SCHEDULES=json.dumps({"alipay": [1_000_000]}),
        PAYONCE_SWEEP_AFTER_S="10000000",
        PAYONCE_ORDER_TTL_S=str(7 * 86400),
    )
    log_path = tmp_path / "serve.log"
    with (
        running(["serve", "--port", str(port)], env, f"{url}/livez", log_path),
        httpx.Client(timeout=30) as http,
    ):
        backend = {"Authorization": f"Bearer {api_key_printed(log_path)}"}
        assert http.put(f"{url}/sandbox/faults", json={"notify_drop_rate": 1.0}).is_success
        order = http.post(
            f"{url}/api/orders",
            json={
                "customer_id": "c-1",
                "currency": "CNY",
                "lines": [{"sku": "S", "name": "Tea", "quantity": 1, "unit_amount": 500}],
            },
            headers=backend,
        ).json()
        payment = http.post(
            f"{url}/api/orders/{order['id']}/payments",
            json={"channel": "alipay", "platform": "pc"},
            headers={"Authorization": f"Bearer {order['client_secret']}", "Idempotency-Key": "k"},
        ).json()
        paid = http.post(f"{url}/sandbox/wallet/pay", json={"code": payment["action"]["qr_code"]})
        assert paid.status_code == 200, paid.text

        # Walk to just past the end of today in China: its bill is ready.
        now = datetime.fromisoformat(
            http.post(f"{url}/sandbox/clock", json={"advance_s": 0}).json()["now"]
        )
        day = now.astimezone(CHINA).date()
        day_end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=CHINA)
        step = (day_end - now).total_seconds() + 60
        assert http.post(f"{url}/sandbox/clock", json={"advance_s": step}).is_success
        assert http.get(f"{url}/api/orders/{order['id']}", headers=backend).json()["status"] == (
            "UNPAID"
        )

        def reconcile(*extra: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [
                    *PAYONCE,
                    "reconcile",
                    "--channel",
                    "alipay",
                    "--date",
                    day.isoformat(),
                    "--server",
                    url,
                    *extra,
                ],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )

        reported = reconcile("--no-repair", "--json")
        assert reported.returncode == 1, reported.stdout + reported.stderr
        found = json.loads(reported.stdout)
        assert (found["lines"], found["matched"], found["remaining"]) == (1, 0, 1)
        assert found["breaks"][0]["kind"] == "capture_unrecorded"
        assert found["breaks"][0]["out_trade_no"] == payment["out_trade_no"]

        repaired = reconcile()
        assert repaired.returncode == 0, repaired.stdout + repaired.stderr
        assert "1 repaired, 0 to look at" in repaired.stdout
        final = http.get(f"{url}/api/orders/{order['id']}", headers=backend).json()
        assert final["status"] == "READY_FOR_SHIPMENT"

        clean = reconcile("--json")
        assert clean.returncode == 0, clean.stdout + clean.stderr
        assert json.loads(clean.stdout)["matched"] == 1
