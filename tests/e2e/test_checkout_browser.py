"""The checkout page in the system Chromium: order, QR, the sandbox wallet, live status."""

from __future__ import annotations

import httpx
from playwright.async_api import Browser, Page


async def _checkout(page: Page, url: str) -> str:
    await page.goto(f"{url}/")
    await page.click("#checkout")
    await page.wait_for_url("**/pay/ord_*")
    await page.wait_for_function("document.getElementById('status').textContent === 'UNPAID'")
    return page.url.rsplit("/", 1)[-1]


async def test_a_shopper_pays_the_qr_in_the_wallet_and_sees_the_order_paid(
    server: tuple[str, str], browser: Browser
) -> None:
    url, api_key = server
    page = await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    order_id = await _checkout(page, url)
    assert "#" not in page.url  # the secret left the address bar

    await page.dblclick("#pay-alipay-pc")  # an impatient double click
    await page.wait_for_selector("#qr-image svg")
    assert "m" in await page.inner_text("#countdown")
    await page.click("#refresh")  # the same QR while it is valid
    await page.wait_for_selector("#pay-alipay-pc:not([disabled])")
    backend = {"Authorization": f"Bearer {api_key}"}
    async with httpx.AsyncClient(base_url=url, headers=backend) as http:
        payments = (await http.get(f"/api/orders/{order_id}/payments")).json()["payments"]
    assert [p["status"] for p in payments] == ["PAYING"]

    wallet = await browser.new_page()
    await wallet.goto(url + str(await page.get_attribute("#wallet-link", "href")))
    await wallet.click("#pay")
    await wallet.wait_for_function(
        "document.getElementById('status').textContent === 'TRADE_SUCCESS'"
    )

    # No reload: the page hears it over the WebSocket.
    await page.wait_for_selector("#paid:not([hidden])")
    assert await page.inner_text("#status") == "READY_FOR_SHIPMENT"
    assert await page.is_hidden("#qr")
    assert errors == []
    async with httpx.AsyncClient(base_url=url, headers=backend) as http:
        order = (await http.get(f"/api/orders/{order_id}")).json()
    assert order["status"] == "READY_FOR_SHIPMENT"
    assert order["paid_payment_id"] == payments[0]["id"]
