"""The pay page on a phone, in the system Chromium: the wallet launch with its fallback, and the
in-app flow's wallet sheet."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.async_api import Browser, Route

from tests.e2e.checkout import (
    check_out,
    order_of,
    payments_of,
    phone_context,
    sandbox,
    screenshot,
    watch,
)

ALIPAY_GATEWAY = re.compile(r".*/sandbox/alipay/gateway\.do\?.*")


async def _no_wallet(route: Route) -> None:
    """What a phone without the wallet does with its link: nothing (the page stays)."""
    await route.fulfill(status=204)


async def test_a_wallet_that_does_not_open_leaves_the_fallback_and_the_payment_still_lands(
    server: tuple[str, str], browser: Browser, artifacts: Path
) -> None:
    url, api_key = server
    context = await phone_context(browser)
    page = await context.new_page()
    errors = watch(page)
    await page.route(ALIPAY_GATEWAY, _no_wallet)
    order_id = await check_out(page, url)
    assert await page.inner_text("#platform-name") == "a phone's browser"

    await page.click("#pay-alipay")
    await page.wait_for_selector("#launch:not([hidden])")  # trying the wallet first
    await page.wait_for_selector("#fallback:not([hidden])")
    assert await page.is_hidden("#launch")
    await page.wait_for_selector("#fallback-qr svg")
    (payment,) = await payments_of(url, api_key, order_id)
    assert payment["action"]["type"] == "launch_url"
    assert await page.get_attribute("#open-wallet", "href") == payment["action"]["launch_url"]
    await screenshot(page, artifacts, "mobile-fallback")

    # "I have paid" before paying: asked at the provider, and told it has not arrived.
    await page.click("#i-paid")
    await page.wait_for_selector("#error[data-code=not_yet]")
    assert (await order_of(url, api_key, order_id))["status"] == "UNPAID"

    # The wallet opens this time; the shopper pays and the wallet sends them back.
    await page.unroute(ALIPAY_GATEWAY)
    await page.click("#open-wallet")
    await page.wait_for_selector("[data-testid=wallet]")
    await page.click("#pay")
    await page.wait_for_url(f"**/pay/{order_id}*")
    await page.wait_for_selector("#paid:not([hidden])")
    assert "out_trade_no" not in page.url  # the provider's return parameters left the bar
    await screenshot(page, artifacts, "mobile-paid")
    assert errors == []
    (paid,) = await payments_of(url, api_key, order_id)
    assert (paid["id"], paid["status"]) == (payment["id"], "PAID")
    ledger = await sandbox(url, "ledger", payment["out_trade_no"])
    assert [m["kind"] for m in ledger] == ["capture"]
    await context.close()


async def test_in_the_shops_app_the_wallet_sheet_pays_without_leaving_the_page(
    server: tuple[str, str], browser: Browser, artifacts: Path
) -> None:
    url, api_key = server
    context = await phone_context(browser)
    page = await context.new_page()
    errors = watch(page)
    order_id = await check_out(page, url, platform="app")
    assert await page.inner_text("#platform-name") == "the shop's app"

    await page.click("#pay-wechat")
    await page.wait_for_selector("#sheet[open]")
    order = await order_of(url, api_key, order_id)
    assert await page.inner_text("#sheet-amount") == "CN¥64.98"
    assert order["amount"] == 6498
    await page.click("#sheet-cancel")  # changed their mind: the sheet goes, the trade stays
    await page.wait_for_selector("#sheet:not([open])", state="attached")
    await page.click("#pay-wechat")  # and back: the same trade, the sheet again
    await page.wait_for_selector("#sheet[open]")
    await screenshot(page, artifacts, "app-sheet")
    await page.click("#sheet-pay")
    await page.wait_for_selector("#paid:not([hidden])")
    assert await page.is_hidden("#sheet")
    assert page.url.endswith(f"/pay/{order_id}?platform=app")  # never left the page
    assert errors == []
    (payment,) = await payments_of(url, api_key, order_id)
    assert (payment["channel"], payment["platform"], payment["status"]) == ("wechat", "app", "PAID")
    ledger = await sandbox(url, "ledger", payment["out_trade_no"])
    assert [(m["kind"], m["amount"]) for m in ledger] == [("capture", 6498)]
    await context.close()


async def test_back_from_the_wallet_without_paying_the_page_offers_the_fallback(
    server: tuple[str, str], browser: Browser
) -> None:
    url, api_key = server
    context = await phone_context(browser)
    page = await context.new_page()
    errors = watch(page)
    order_id = await check_out(page, url)
    await page.click("#pay-wechat")
    await page.wait_for_selector("[data-testid=wallet]")  # the wallet opened (its H5 page)
    await page.go_back()  # and the shopper came back without paying
    await page.wait_for_selector("#fallback:not([hidden])")
    assert await page.is_hidden("#launch")
    assert await page.is_visible("#i-paid")
    (payment,) = await payments_of(url, api_key, order_id)
    assert [payment[k] for k in ("channel", "platform", "status")] == ["wechat", "wap", "PAYING"]
    assert errors == []
    await context.close()
