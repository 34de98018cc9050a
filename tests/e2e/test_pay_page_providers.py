"""The pay page with PayPal's window, a Boleto that takes days, and a provider that does not
answer, in the system Chromium, on a server whose clock the test moves on."""

from __future__ import annotations

from pathlib import Path

import httpx
from playwright.async_api import Browser

from tests.e2e.checkout import (
    check_out,
    order_of,
    pay_on_phone,
    payments_of,
    sandbox,
    screenshot,
    status_is,
    watch,
)


async def test_paypal_is_approved_in_its_window_and_the_pay_page_shows_it_paid(
    adjustable_server: tuple[str, str], browser: Browser
) -> None:
    url, api_key = adjustable_server
    page = await browser.new_page()
    errors = watch(page)
    order_id = await check_out(page, url)
    async with page.expect_popup() as opened:
        await page.click("#pay-paypal")
    popup = await opened.value
    await popup.wait_for_selector("#approve")
    assert "64.98" in await popup.inner_text("[data-testid=amount]")
    assert await page.is_visible("#paypal")  # the pay page waits, still in view
    await popup.click("#approve")
    await popup.wait_for_event("close")  # back at the shop, the window hands over and closes
    await page.wait_for_selector("#paid:not([hidden])")
    assert errors == []
    (payment,) = await payments_of(url, api_key, order_id)
    assert (payment["channel"], payment["status"]) == ("paypal", "PAID")
    ledger = await sandbox(url, "ledger", payment["out_trade_no"])
    assert [(m["kind"], m["amount"]) for m in ledger] == [("capture", 6498)]


async def test_a_boleto_is_pending_for_days_and_paid_when_the_bank_confirms_it(
    adjustable_server: tuple[str, str], browser: Browser, artifacts: Path
) -> None:
    url, api_key = adjustable_server
    page = await browser.new_page()
    errors = watch(page)
    order_id = await check_out(page, url, currency="BRL")
    assert await page.is_hidden("#pay-alipay")  # the channels that take reais only
    await page.click("#pay-boleto")
    await page.wait_for_selector("#voucher:not([hidden])")
    (payment,) = await payments_of(url, api_key, order_id)
    line = await page.inner_text("#digitable-line")
    assert line == payment["action"]["digitable_line"]
    assert await page.get_attribute("#voucher-link", "href") == payment["action"]["voucher_url"]
    assert await page.is_visible("#pending")
    await page.click("#copy-line")
    await page.wait_for_selector("#copied:text-is('Copied.')")

    phone = await pay_on_phone(browser, url, line)  # paid at the bank: not confirmed yet
    assert await phone.inner_text("#pay") == "Pay at bank"
    await status_is(page, "UNPAID")
    assert await page.is_visible("#pending")
    await screenshot(page, artifacts, "boleto-pending")
    assert await sandbox(url, "ledger", payment["out_trade_no"]) == []

    # The PSP confirms on one of the next one to three business days: a day at a time until it
    # has (the clock's move returns once the notifications it made due were delivered).
    async with httpx.AsyncClient(base_url=url) as http:
        for _ in range(7):
            moved = await http.post("/sandbox/clock", json={"advance_s": 86400})
            assert moved.status_code == 200, moved.text
            if (await order_of(url, api_key, order_id))["status"] != "UNPAID":
                break
    await page.wait_for_selector("#paid:not([hidden])")
    assert await page.is_hidden("#voucher")
    assert errors == []
    (paid,) = await payments_of(url, api_key, order_id)
    assert (paid["id"], paid["status"]) == (payment["id"], "PAID")
    ledger = await sandbox(url, "ledger", payment["out_trade_no"])
    assert [(m["kind"], m["amount"]) for m in ledger] == [("capture", 17880)]


async def test_an_unanswered_provider_is_explained_and_the_page_tries_again_by_itself(
    adjustable_server: tuple[str, str], browser: Browser, artifacts: Path
) -> None:
    url, api_key = adjustable_server
    page = await browser.new_page()
    errors = watch(page)
    order_id = await check_out(page, url)
    async with httpx.AsyncClient(base_url=url) as http:
        # Held past payonce's 2 s time-out, and not much longer (the server stops sooner).
        faults = {"seed": 3, "create_timeout_rate": 1.0, "timeout_hold_s": 3.0}
        await http.put("/sandbox/faults", json=faults)
        try:
            await page.click("#pay-alipay")
            await page.wait_for_selector("#error[data-code=payment_outcome_unknown]")
            assert "Checking with the provider" in await page.inner_text("#error")
            assert await page.is_disabled("#pay-alipay")  # it is on it; no second intention
            await screenshot(page, artifacts, "pc-refused-outcome-unknown")
        finally:
            await http.put("/sandbox/faults", json={})
    # The next try asks the provider about the unanswered trade first, then opens one.
    await page.wait_for_selector("#qr-image svg")
    assert await page.is_hidden("#error")
    assert errors == []
    live, unanswered = await payments_of(url, api_key, order_id)
    assert live["status"] == "PAYING"
    assert unanswered["status"] in ("CLOSED", "FAILED")
