"""The shopper's phone page and the wallet's view endpoint it looks codes up with."""

from __future__ import annotations

import httpx
import pytest
from sandbox_harness import Env

from payonce.adapters.clock import SystemClock
from payonce.sandbox import Sandbox, SandboxKeys

pytestmark = pytest.mark.asyncio(loop_scope="session")

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


async def _view(env: Env, code: str) -> httpx.Response:
    return await env.http.get(f"{env.url}/wallet/view", params={"code": code})


async def test_the_view_endpoint_shows_the_trade_without_scanning_it(env: Env) -> None:
    created = await env.precreate("p_1", "39.98")
    qr_code = created["qr_code"]
    response = await _view(env, f"\n {qr_code} \n")  # pasted with the blanks around it
    assert response.status_code == 200
    view = response.json()
    assert {key: view[key] for key in ("channel", "code", "out_trade_no", "trade_no")} == {
        "channel": "alipay",
        "code": qr_code,
        "out_trade_no": "p_1",
        "trade_no": None,
    }
    assert (view["subject"], view["amount"], view["currency"]) == ("Tea", 3998, "CNY")
    assert (view["status"], view["can_scan"], view["can_pay"]) == ("NOT_SCANNED", True, True)
    assert (view["note"], view["return_url"]) == (None, None)
    assert env.sandbox.trades("p_1") == []  # looking is not scanning

    paid = await env.wallet("pay", qr_code)
    assert paid.status_code == 200
    after = (await _view(env, qr_code)).json()
    assert after == paid.json()
    assert (after["status"], after["can_scan"], after["can_pay"]) == ("TRADE_SUCCESS", False, False)
    assert after["trade_no"] == env.sandbox.trades("p_1")[0].trade_no


async def test_the_view_endpoint_refuses_what_no_channel_issued(env: Env) -> None:
    for code in ("garbage", f"{env.url}/alipay/qr/{'0' * 24}"):
        response = await _view(env, code)
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json() == {
            "type": "about:blank",
            "title": "Unknown code",
            "status": 422,
            "code": "code_unknown",
            "detail": response.json()["detail"],
        }
    assert (await _view(env, "garbage")).json()["detail"] == "no channel issued this code"
    for params in ({}, {"code": ""}, {"code": "x" * 16385}):
        refused = await env.http.get(f"{env.url}/wallet/view", params=params)
        assert (refused.status_code, refused.json()["code"]) == (422, "invalid_request")


async def test_the_phone_page_renders_empty(env: Env) -> None:
    page = await env.http.get(f"{env.url}/phone")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    for element in (
        '<textarea id="code"',
        '<button id="look" type="submit">Look up</button>',
        '<button id="scan" type="button" class="secondary" disabled>Scan</button>',
        '<button id="pay" type="button" disabled>Pay</button>',
        '<p id="message" role="alert"></p>',
        '<ol id="notifications"></ol>',
        'id="channel"',
        'id="subject"',
        'id="amount"',
        'id="status"',
        'id="note"',
        '<a id="return" class="return" href="#" hidden>Back to the shop</a>',
    ):
        assert element in html
    assert 'autocapitalize="off" aria-describedby="code-help"></textarea>' in html
    assert 'const root = "/sandbox";' in html
    assert "const autoload = false;" in html
    assert '"paypal": "Approve"' in html
    assert '"boleto": "Pay at bank"' in html
    # No external assets: everything the page needs is in it.
    assert "<link" not in html
    assert "src=" not in html
    assert "http://" not in html
    assert "https://" not in html


async def test_the_phone_page_prefills_a_code_and_loads_it(env: Env) -> None:
    created = await env.precreate("p_2", "1.00")
    page = await env.http.get(f"{env.url}/phone", params={"code": created["qr_code"]})
    assert page.status_code == 200
    assert f'aria-describedby="code-help">{created["qr_code"]}</textarea>' in page.text
    assert "const autoload = true;" in page.text
    assert env.sandbox.trades("p_2") == []  # the page itself changes nothing
    blank = await env.http.get(f"{env.url}/phone", params={"code": "  "})
    assert "const autoload = false;" in blank.text


async def test_the_prefilled_code_is_escaped(env: Env) -> None:
    code = '</textarea><script>alert("x")</script>&'
    page = await env.http.get(f"{env.url}/phone", params={"code": code})
    assert page.status_code == 200
    assert (
        'aria-describedby="code-help">'
        "&lt;/textarea&gt;&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&amp;</textarea>"
    ) in page.text
    assert "<script>alert" not in page.text
    assert page.text.count("<script>") == 1  # the page's own


async def test_the_index_links_to_the_phone(env: Env) -> None:
    as_json = await env.http.get(f"{env.url}/")
    assert as_json.json() == {
        "sandbox": "payonce",
        "channels": env.sandbox.channel_names,
        "links": {"phone": "/sandbox/phone"},
    }
    as_page = await env.http.get(f"{env.url}/", headers={"Accept": BROWSER_ACCEPT})
    assert as_page.status_code == 200
    assert as_page.headers["content-type"].startswith("text/html")
    assert '<a id="phone-link" href="/sandbox/phone">' in as_page.text
    phone = await env.http.get(f"{env.base}/sandbox/phone")
    assert phone.status_code == 200


async def test_standalone_the_phone_fetches_from_the_root(keys: SandboxKeys) -> None:
    sandbox = Sandbox(clock=SystemClock(), keys=keys, public_url="http://test")
    transport = httpx.ASGITransport(app=sandbox.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        page = await client.get("/phone")
        index = await client.get("/", headers={"Accept": BROWSER_ACCEPT})
        listed = await client.get("/")
    await sandbox.aclose()
    assert 'const root = "";' in page.text
    assert '<a id="phone-link" href="/phone">' in index.text
    assert listed.json()["links"] == {"phone": "/phone"}
