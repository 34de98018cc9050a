"""PayPal in the system Chromium: the approve link, the Approve button, back to the pay page."""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs, urlsplit

import httpx
from playwright.async_api import Browser


async def test_a_shopper_approves_at_paypal_and_returns_to_see_the_order_paid(
    server: tuple[str, str], browser: Browser
) -> None:
    url, api_key = server
    backend = {"Authorization": f"Bearer {api_key}"}
    async with httpx.AsyncClient(base_url=url, headers=backend) as http:
        created = await http.post(
            "/api/orders",
            json={
                "customer_id": "c-7",
                "currency": "USD",
                "lines": [{"sku": "MUG-1", "name": "Mug", "quantity": 1, "unit_amount": 1250}],
            },
        )
        order = created.json()
        applied = await http.post(
            f"/api/orders/{order['id']}/payments",
            json={"channel": "paypal", "platform": "pc"},
            headers={
                "Authorization": f"Bearer {order['client_secret']}",
                "Idempotency-Key": str(uuid.uuid4()),
            },
        )
    assert applied.status_code == 201, applied.text
    action = applied.json()["action"]
    assert action["type"] == "redirect_url"

    page = await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(f"{url}/pay/{order['id']}#{order['client_secret']}")
    await page.wait_for_function("document.getElementById('status').textContent === 'UNPAID'")

    # The shop sends the shopper to PayPal's approval page, in the same tab.
    await page.goto(action["redirect_url"])
    assert "12.50" in await page.inner_text("[data-testid=amount]")
    async with page.expect_request(f"**/pay/{order['id']}?*") as returning:
        await page.click("#approve")
    back = await returning.value
    async with httpx.AsyncClient(base_url=url) as http:
        listed = await http.get(
            "/sandbox/trades", params={"out_trade_no": applied.json()["out_trade_no"]}
        )
    (trade,) = listed.json()["trades"]
    returned = parse_qs(urlsplit(back.url).query)
    assert returned == {"token": [trade["trade_no"]], "PayerID": [returned["PayerID"][0]]}

    # The pay page keeps PayPal's parameters out of the address bar (and history).
    await page.wait_for_url(f"**/pay/{order['id']}")
    # The webhook reaches payonce, which captures; the page hears it over the WebSocket.
    await page.wait_for_selector("#paid:not([hidden])")
    assert await page.inner_text("#status") == "READY_FOR_SHIPMENT"
    assert errors == []
    async with httpx.AsyncClient(base_url=url, headers=backend) as http:
        final = (await http.get(f"/api/orders/{order['id']}")).json()
        ledger = (await http.get("/sandbox/ledger")).json()["movements"]
    assert (final["status"], final["paid_payment_id"]) == (
        "READY_FOR_SHIPMENT",
        applied.json()["id"],
    )
    assert [(m["channel"], m["kind"], m["amount"]) for m in ledger] == [("paypal", "capture", 1250)]
