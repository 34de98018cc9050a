"""Every answer names its request, and what the server logs while serving it carries that
name (and its order), so an operator can follow one shopper's click through the logs."""

from __future__ import annotations

import io
import json

import httpx

from payonce.entrypoints.web.app import create_app
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


async def test_a_bug_and_an_oversized_body_are_named_too(
    live: Live, log_lines: io.StringIO
) -> None:
    app = create_app(live.container, run_background=False)

    async def boom() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/boom", boom)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=live.url) as http:
        crashed = await http.get("/boom", headers={"X-Request-Id": "shop-500"})
        too_big = await http.post("/api/orders", content=b"x" * (300 * 1024), headers=live.backend)
    assert (crashed.status_code, crashed.json()["code"]) == (500, "internal_error")
    assert crashed.headers["X-Request-Id"] == "shop-500"
    [logged] = [
        json.loads(line) for line in log_lines.getvalue().splitlines() if "unhandled error" in line
    ]
    assert logged["request_id"] == "shop-500"
    assert "RuntimeError: a bug" in logged["exception"]
    assert (too_big.status_code, too_big.json()["code"]) == (413, "body_too_large")
    assert too_big.headers["X-Request-Id"].startswith("req_")
