"""The sandbox phone in the system Chromium at a phone's size: look up a QR, pay, see the notice."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

import httpx
from playwright.async_api import Browser, Page

PHONE = {"width": 360, "height": 740}


async def _alipay_code(
    url: str, api_key: str, platform: str = "pc"
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A shop's order, and the Alipay payment the shopper applied: (order, its action)."""
    async with httpx.AsyncClient(base_url=url) as http:
        created = await http.post(
            "/api/orders",
            json={
                "customer_id": "c-phone",
                "currency": "CNY",
                "lines": [{"sku": "TEA-1", "name": "Tea", "quantity": 2, "unit_amount": 1999}],
            },
            headers={"Authorization": f"Bearer {api_key}"},
        )
        assert created.status_code == 201, created.text
        order: dict[str, Any] = created.json()
        applied = await http.post(
            f"/api/orders/{order['id']}/payments",
            json={"channel": "alipay", "platform": platform},
            headers={
                "Authorization": f"Bearer {order['client_secret']}",
                "Idempotency-Key": str(uuid.uuid4()),
            },
        )
    assert applied.status_code == 201, applied.text
    action: dict[str, Any] = applied.json()["action"]
    return order, action


async def _alipay_qr(url: str, api_key: str) -> tuple[dict[str, Any], str]:
    """A shop's order, and the QR content of the Alipay PC payment the shopper applied."""
    order, action = await _alipay_code(url, api_key)
    qr_code: str = action["qr_code"]
    assert qr_code.startswith(f"{url}/sandbox/")
    return order, qr_code


async def _order_once(url: str, order: dict[str, Any], status: str) -> dict[str, Any]:
    """The order once it reaches ``status`` (long-polls the order API; the last state seen)."""
    shopper = {"Authorization": f"Bearer {order['client_secret']}"}
    current = order
    async with httpx.AsyncClient(base_url=url, headers=shopper, timeout=15.0) as http:
        for _ in range(10):
            if current["status"] == status:
                break
            current = (
                await http.get(
                    f"/api/orders/{order['id']}",
                    params={"after_version": current["status_version"], "wait": 10},
                )
            ).json()
    return current


async def _status_is(page: Page, status: str) -> None:
    await page.wait_for_function(
        "status => document.getElementById('status').textContent === status", arg=status
    )


async def test_a_shopper_pays_a_qr_on_the_phone_and_sees_the_notification(
    server: tuple[str, str], browser: Browser
) -> None:
    url, api_key = server
    order, qr_code = await _alipay_qr(url, api_key)
    page = await browser.new_page(viewport=PHONE)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    await page.goto(f"{url}/sandbox/phone?code={quote(qr_code, safe='')}")
    await _status_is(page, "NOT_SCANNED")  # loaded at once, no click
    assert await page.input_value("#code") == qr_code
    assert await page.inner_text("#channel") == "alipay"
    assert await page.inner_text("#subject") != ""
    assert await page.inner_text("#amount") == "¥39.98"
    assert await page.inner_text("#pay") == "Pay"
    assert await page.is_enabled("#scan")
    assert await page.is_enabled("#pay")
    assert await page.inner_text("#message") == ""
    assert await page.locator("#notifications li").count() == 0
    # A phone's width: nothing sticks out sideways.
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    await page.click("#pay")
    await _status_is(page, "TRADE_SUCCESS")
    notice = page.locator("#notifications li[data-ok=true]").first
    await notice.wait_for()
    assert (await notice.get_attribute("data-notify-id") or "") != ""
    shown = await notice.inner_text()
    assert "Attempt 1" in shown
    assert "alipay" in shown
    assert "HTTP 200" in shown
    assert "success" in shown  # the merchant's answer
    started = int(await page.evaluate("document.body.dataset.payStartedAt"))
    answered = int(await page.evaluate("document.body.dataset.payAnsweredAt"))
    assert started <= answered
    assert not await page.is_enabled("#scan")
    assert not await page.is_enabled("#pay")
    assert await page.is_hidden("#return")  # a PC QR has no way back: the shop is elsewhere
    assert await page.inner_text("#message") == ""

    paid = await _order_once(url, order, "READY_FOR_SHIPMENT")
    assert paid["status"] == "READY_FOR_SHIPMENT"
    out_trade_no = await page.inner_text("#out-trade-no")
    async with httpx.AsyncClient(base_url=url) as http:
        listed = await http.get("/sandbox/deliveries", params={"out_trade_no": out_trade_no})
    sent = [d["notify_id"] for d in listed.json()["deliveries"] if d["ok"]]
    assert await notice.get_attribute("data-notify-id") in sent
    assert errors == []


async def test_garbage_shows_the_refusal_and_enables_nothing(
    server: tuple[str, str], browser: Browser
) -> None:
    url, api_key = server
    _order, qr_code = await _alipay_qr(url, api_key)
    page = await browser.new_page(viewport=PHONE)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(f"{url}/sandbox/phone")
    assert await page.is_enabled("#look")
    assert not await page.is_enabled("#scan")
    assert not await page.is_enabled("#pay")

    # Keyboard only: paste, Ctrl+Enter looks it up.
    await page.focus("#code")
    await page.keyboard.insert_text(qr_code)
    await page.keyboard.press("Control+Enter")
    await _status_is(page, "NOT_SCANNED")
    assert await page.input_value("#code") == qr_code  # no newline typed into it
    assert await page.is_enabled("#pay")

    await page.fill("#code", "garbage")
    await page.click("#look")
    await page.wait_for_selector("#message[data-code=code_unknown]")
    assert await page.inner_text("#message") == "Unknown code: no channel issued this code"
    assert await page.get_attribute("#message", "role") == "alert"
    assert await page.is_enabled("#look")
    assert not await page.is_enabled("#scan")
    assert not await page.is_enabled("#pay")
    assert await page.text_content("#status") == ""
    assert await page.text_content("#amount") == ""
    assert await page.locator("#notifications li").count() == 0
    assert errors == []


async def test_after_a_wap_payment_the_phone_shows_the_way_back_without_following_it(
    server: tuple[str, str], browser: Browser
) -> None:
    url, api_key = server
    order, action = await _alipay_code(url, api_key, platform="wap")
    launch_url = action["launch_url"]
    page = await browser.new_page(viewport=PHONE)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(f"{url}/sandbox/phone")
    await page.fill("#code", launch_url)
    await page.click("#look")
    await _status_is(page, "NOT_SCANNED")
    assert await page.is_hidden("#return")
    phone_url = page.url

    await page.click("#pay")
    await _status_is(page, "TRADE_SUCCESS")
    await page.wait_for_selector("#return:not([hidden])")
    assert await page.inner_text("#return") == "Back to the shop"
    href = await page.get_attribute("#return", "href")
    assert href is not None
    assert href.startswith(f"{url}/pay/{order['id']}?")
    assert "method=alipay.trade.wap.pay.return" in href
    assert page.url == phone_url  # the phone is another device: it does not go back by itself
    await page.wait_for_selector("#notifications li[data-ok=true]")
    paid = await _order_once(url, order, "READY_FOR_SHIPMENT")
    assert paid["status"] == "READY_FOR_SHIPMENT"
    assert errors == []
