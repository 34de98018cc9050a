"""Every answer names its request, and what the server logs while serving it carries that
name (and its order), so an operator can follow one shopper's click through the logs."""

from __future__ import annotations

import io
import json

from tests.integration.conftest import Live


async def test_a_callers_request_id_is_kept_and_a_strange_one_replaced(live: Live) -> None:
    order = await live.create_order()
    kept = await live.http.get(
        f"/api/orders/{order['id']}", headers=live.backend | {"X-Request-Id": "shop-42.a:1"}
    )
    assert kept.headers["X-Request-Id"] == "shop-42.a:1"
    for strange in ("x" * 65, "two words", "<script>"):
        answer = await live.http.get(
            f"/api/orders/{order['id']}", headers=live.backend | {"X-Request-Id": strange}
        )
        assert answer.headers["X-Request-Id"].startswith("req_")
    refused = await live.http.get("/api/orders/ord_nosuchorder", headers=live.backend)
    assert refused.headers["X-Request-Id"].startswith("req_")  # refusals are named too


async def test_what_a_request_logs_names_it(live: Live, log_lines: io.StringIO) -> None:
    answer = await live.http.post(
        "/api/notify/alipay",
        content=b"out_trade_no=PO1&sign=forged",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code >= 400
    records = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    [rejected] = [r for r in records if "notification rejected" in r["event"]]
    assert rejected["request_id"] == answer.headers["X-Request-Id"]
    assert rejected["cause"] == f"POST /api/notify/alipay {answer.headers['X-Request-Id']}"
    assert rejected["level"] == "warning"
