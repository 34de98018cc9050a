"""The sandbox's helper endpoints and its standalone app (mounted at /sandbox, dispatcher on)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from sandbox_harness import START, Env, Receiver, bound_socket, serve

from payonce.adapters.clock import AdjustableClock, SystemClock
from payonce.sandbox import Sandbox, SandboxKeys, sandbox_root_app

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_clock_endpoint_advances_and_delivers(env: Env, receiver: Receiver) -> None:
    receiver.answers = [(503, "busy")]
    created = await env.precreate("a_1", "2.00", notify_url=receiver.url)
    await env.wallet("pay", created["qr_code"])
    await env.http.post(f"{env.url}/deliveries/run")
    response = await env.http.post(f"{env.url}/clock", json={"advance_s": 240})
    assert response.json() == {
        "now": (START + timedelta(minutes=4)).isoformat(),
        "delivered": 1,
        "pending_notifications": 0,
    }
    assert [d.ok for d in env.sandbox.deliveries("a_1")] == [False, True]
    refused = await env.http.post(f"{env.url}/clock", json={"advance_s": -1})
    assert (refused.status_code, refused.json()["code"]) == (422, "invalid_request")


async def test_clock_endpoint_without_an_adjustable_clock(keys: SandboxKeys) -> None:
    sandbox = Sandbox(clock=SystemClock(), keys=keys, public_url="http://test/sandbox")
    transport = httpx.ASGITransport(app=sandbox.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.post("/clock", json={"advance_s": 1})
        missing = await client.get("/nowhere")
    await sandbox.aclose()
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "about:blank",
        "title": "Clock not adjustable",
        "status": 409,
        "code": "clock_not_adjustable",
        "detail": "started with a fixed clock",
    }
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")


async def test_wallet_refusals_are_problems(env: Env) -> None:
    for code in ("nonsense", f"{env.url}/alipay/qr/{'0' * 24}"):
        response = await env.wallet("scan", code)
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "code_unknown"
    empty = await env.wallet("pay", "")
    assert (empty.status_code, empty.json()["code"]) == (422, "invalid_request")
    page = await env.http.get(f"{env.url}/wallet", params={"code": "nonsense"})
    assert page.status_code == 422
    assert "code_unknown" in page.text


async def test_qr_content_opens_the_wallet_page(env: Env) -> None:
    created = await env.precreate("a_2", "39.98")
    page = await env.http.get(created["qr_code"])
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "¥39.98" in page.text
    assert 'data-testid="status">NOT_SCANNED<' in page.text
    # The buttons post to the mounted wallet endpoints.
    assert 'const root = "/sandbox";' in page.text


async def test_ledger_trades_and_statement_endpoints(env: Env) -> None:
    created = await env.precreate("a_3", "7.00")
    await env.precreate("a_4", "1.00")  # never scanned: no trade
    await env.wallet("pay", created["qr_code"])
    trades = (await env.http.get(f"{env.url}/trades")).json()["trades"]
    assert [(t["out_trade_no"], t["status"]) for t in trades] == [("a_3", "TRADE_SUCCESS")]
    ledger = (await env.http.get(f"{env.url}/ledger", params={"out_trade_no": "a_3"})).json()
    (movement,) = ledger["movements"]
    assert movement == {
        "channel": "alipay",
        "out_trade_no": "a_3",
        "trade_no": trades[0]["trade_no"],
        "kind": "capture",
        "amount": 700,
        "currency": "CNY",
        "at": START.isoformat(),
        "reference": trades[0]["trade_no"],
    }
    statement = await env.http.get(f"{env.url}/alipay/statements/2026-11-24")
    assert statement.headers["content-type"] == "text/csv; charset=utf-8"
    assert statement.text.splitlines()[1] == (
        f"2026-11-24 10:00:00,alipay,a_3,{trades[0]['trade_no']},capture,700,CNY,"
        f"{trades[0]['trade_no']}"
    )
    unknown = await env.http.get(f"{env.url}/bitcoin/statements/2026-11-24")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "channel_unknown")


async def test_the_standalone_app_runs_its_dispatcher(
    keys: SandboxKeys, receiver: Receiver
) -> None:
    sock, base = bound_socket()
    sandbox = Sandbox(
        clock=AdjustableClock(start=START),
        keys=keys,
        public_url=f"{base}/sandbox",
    )
    async with serve(sandbox_root_app(sandbox), sock):
        env = Env(
            sandbox=sandbox,
            clock=AdjustableClock(start=START),
            credentials=keys.alipay,
            keys=keys,
            http=httpx.AsyncClient(trust_env=False),
            base=base,
        )
        async with env.http:
            created = await env.precreate("a_5", "3.00", notify_url=receiver.url)
            assert (await env.wallet("pay", created["qr_code"])).status_code == 200
            await asyncio.wait_for(receiver.arrived.wait(), timeout=5)
    assert receiver.received[0]["out_trade_no"] == "a_5"
    assert receiver.verified == [True]
