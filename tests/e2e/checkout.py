"""What the pay-page browser tests share: a shopper at the demo shop, the sandbox phone, the
sandbox's own records, and screenshots."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from playwright.async_api import Browser, BrowserContext, Page

PHONE_VIEWPORT = {"width": 390, "height": 844}
ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0 Mobile Safari/537.36"
)


async def phone_context(browser: Browser) -> BrowserContext:
    """A phone's browser: narrow, touch, a mobile user agent (the pay page picks wap)."""
    return await browser.new_context(
        viewport=PHONE_VIEWPORT, is_mobile=True, has_touch=True, user_agent=ANDROID
    )


def watch(page: Page) -> list[str]:
    """The page's uncaught script errors, collected for the test to assert there are none."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


async def check_out(
    page: Page, url: str, *, currency: str = "CNY", platform: str | None = None
) -> str:
    """Fills the demo shop's cart (its defaults), checks out, and answers the order id once the
    pay page shows the order UNPAID. ``platform`` overrides the detected one."""
    await page.goto(f"{url}/")
    if currency != "CNY":
        await page.check(f"input[name=currency][value={currency}]")
    await page.click("#checkout")
    await page.wait_for_url("**/pay/ord_*")
    order_id = page.url.split("#", 1)[0].rsplit("/", 1)[-1]
    if platform is not None:
        # The secret stays in the tab (sessionStorage), so the page can be opened again.
        await page.goto(f"{url}/pay/{order_id}?platform={platform}")
    await status_is(page, "UNPAID")
    return order_id


async def status_is(page: Page, status: str, timeout_ms: float = 15_000) -> None:
    await page.wait_for_function(
        f"document.getElementById('status').textContent === {status!r}", timeout=timeout_ms
    )


async def phone_with(browser: Browser, url: str, code: str) -> Page:
    """The shopper's phone (the sandbox phone page) with ``code`` looked up."""
    phone = await browser.new_page(viewport=PHONE_VIEWPORT)
    await phone.goto(f"{url}/sandbox/phone?code={quote(code, safe='')}")
    await phone.wait_for_selector("#pay:not([disabled])")
    return phone


async def pay_on_phone(browser: Browser, url: str, code: str) -> Page:
    """The phone pays (or approves, or pays at the bank) and has the wallet's answer."""
    phone = await phone_with(browser, url, code)
    await phone.click("#pay")
    await phone.wait_for_function("document.body.dataset.payAnsweredAt !== undefined")
    return phone


async def scan_on_phone(browser: Browser, url: str, code: str) -> Page:
    """The phone scans the code (the trade opens in the wallet) without paying."""
    phone = await phone_with(browser, url, code)
    await phone.click("#scan")
    await phone.wait_for_function("document.getElementById('status').textContent !== 'NOT_SCANNED'")
    return phone


async def sandbox(url: str, what: str, out_trade_no: str | None = None) -> list[dict[str, Any]]:
    """The sandbox's own records: ``trades``, ``ledger`` (movements), ``calls``, ``deliveries``."""
    params = {"out_trade_no": out_trade_no} if out_trade_no else {}
    async with httpx.AsyncClient(base_url=url) as http:
        answer = (await http.get(f"/sandbox/{what}", params=params)).json()
    key = {"ledger": "movements"}.get(what, what)
    listed: list[dict[str, Any]] = answer[key]
    return listed


async def payments_of(url: str, api_key: str, order_id: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=url) as http:
        answer = await http.get(
            f"/api/orders/{order_id}/payments", headers={"Authorization": f"Bearer {api_key}"}
        )
    listed: list[dict[str, Any]] = answer.json()["payments"]
    return listed


async def order_of(url: str, api_key: str, order_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url) as http:
        answer = await http.get(
            f"/api/orders/{order_id}", headers={"Authorization": f"Bearer {api_key}"}
        )
    order: dict[str, Any] = answer.json()
    return order


async def screenshot(page: Page, artifacts: Path, name: str) -> Path:
    path = artifacts / "screenshots" / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path
