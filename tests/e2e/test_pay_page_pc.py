"""The pay page on a computer, in the system Chromium: one trade per intention however often the
shopper clicks or reloads, switching channels closes the old QR, and the result shows whether the
page hears it by WebSocket, long-poll or plain polling."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from playwright.async_api import Browser, Page, Route, WebSocketRoute

from tests.e2e.checkout import (
    check_out,
    order_of,
    pay_on_phone,
    payments_of,
    sandbox,
    scan_on_phone,
    screenshot,
    status_is,
    watch,
)
from tests.e2e.conftest import SERVER_LOGS

EVENTS = re.compile(r".*/api/orders/ord_\w+/events.*")
LONG_POLLS = re.compile(r".*/api/orders/ord_\w+\?after_version=.*")


async def _code_on_page(page: Page) -> str:
    """The code the page shows (the sandbox phone link carries it, as the QR does)."""
    href = await page.get_attribute("#phone-link", "href")
    assert href is not None
    return parse_qs(urlsplit(href).query)["code"][0]


async def _precreates(url: str, out_trade_no: str) -> int:
    calls = await sandbox(url, "calls", out_trade_no)
    return sum(1 for call in calls if call["method"] == "alipay.trade.precreate")


async def test_double_click_and_reload_make_one_trade_and_show_the_same_qr(
    server: tuple[str, str], browser: Browser, artifacts: Path
) -> None:
    url, api_key = server
    page = await browser.new_page()
    errors = watch(page)
    fetched: list[str] = []
    page.on("request", lambda request: fetched.append(request.url))
    order_id = await check_out(page, url)
    assert "#" not in page.url  # the secret left the address bar
    assert await page.inner_text("#platform-name") == "a computer"

    await page.dblclick("#pay-alipay")  # an impatient double click
    await page.wait_for_selector("#qr-image svg")
    first_qr = await page.inner_html("#qr-image")
    code = await _code_on_page(page)
    assert "m " in await page.inner_text("#countdown")
    await screenshot(page, artifacts, "pc-qr")

    await page.reload()  # the secret and the trade survive a reload
    await page.wait_for_selector("#qr-image svg")
    assert await page.inner_html("#qr-image") == first_qr
    await page.click("#refresh")  # the same QR while it is valid
    await page.wait_for_selector("#refresh:not([disabled])")
    assert await page.inner_html("#qr-image") == first_qr
    assert await _code_on_page(page) == code

    (payment,) = await payments_of(url, api_key, order_id)
    assert payment["status"] == "PAYING"
    assert payment["action"]["qr_code"] == code
    assert await _precreates(url, payment["out_trade_no"]) == 1

    await pay_on_phone(browser, url, code)
    await page.wait_for_selector("#paid:not([hidden])")  # heard over the WebSocket
    assert await page.inner_text("#status") == "READY_FOR_SHIPMENT"
    assert await page.evaluate("document.body.dataset.paidVia") == "websocket"
    assert await page.is_hidden("#qr")
    assert await page.is_hidden("#choose")
    await screenshot(page, artifacts, "pc-paid")

    # Everything the pages needed came from payonce itself: no CDN, no third party.
    assert fetched
    assert [u for u in fetched if not u.startswith((url, "data:"))] == []
    # No HTTP request carried the secret in its address (only the WebSocket's query does,
    # as the contract has it: browsers cannot set headers on a socket), and the server's log
    # does not show it.
    assert [u for u in fetched if "_secret_" in u] == []
    logged = SERVER_LOGS[url].read_text()
    assert "client_secret=[redacted]" in logged
    assert "_secret_" not in logged
    # A later visit shows the paid state at once.
    await page.reload()
    await page.wait_for_selector("#paid:not([hidden])")
    assert await page.is_hidden("#choose")
    assert errors == []
    order = await order_of(url, api_key, order_id)
    assert (order["status"], order["paid_payment_id"]) == ("READY_FOR_SHIPMENT", payment["id"])
    ledger = await sandbox(url, "ledger", payment["out_trade_no"])
    assert [(m["kind"], m["amount"]) for m in ledger] == [("capture", order["amount"])]


async def test_switching_from_alipay_to_wechat_closes_the_old_qr(
    server: tuple[str, str], browser: Browser, artifacts: Path
) -> None:
    url, api_key = server
    page = await browser.new_page()
    errors = watch(page)
    order_id = await check_out(page, url)
    await page.focus("#pay-alipay")  # the keyboard is enough
    await page.keyboard.press("Enter")
    await page.wait_for_selector("#qr-image svg")
    alipay_code = await _code_on_page(page)
    await scan_on_phone(browser, url, alipay_code)  # the trade is open in the shopper's wallet
    (alipay,) = await payments_of(url, api_key, order_id)

    await page.click("#pay-wechat")
    closed = f"#attempts li[data-payment-id={alipay['id']}][data-status=CLOSED]"
    await page.wait_for_selector(f"{closed} .stamp")
    assert await page.text_content(f"{closed} .stamp") == "closed"
    await page.wait_for_selector("#qr-image svg")
    wechat_code = await _code_on_page(page)
    assert wechat_code != alipay_code
    await screenshot(page, artifacts, "pc-switched")

    (alipay_trade,) = await sandbox(url, "trades", alipay["out_trade_no"])
    assert alipay_trade["status"] == "TRADE_CLOSED"
    wechat, closed_alipay = await payments_of(url, api_key, order_id)
    assert (wechat["channel"], wechat["status"]) == ("wechat", "PAYING")
    assert (closed_alipay["id"], closed_alipay["status"]) == (alipay["id"], "CLOSED")

    # The closed QR pays nothing; the new one pays the order.
    phone = await browser.new_page()
    await phone.goto(f"{url}/sandbox/phone?code={quote(alipay_code, safe='')}")
    await phone.wait_for_selector("#status:text-is('TRADE_CLOSED')")
    assert await phone.is_disabled("#pay")
    await pay_on_phone(browser, url, wechat_code)
    await page.wait_for_selector("#paid:not([hidden])")
    ledger = await sandbox(url, "ledger")
    ours = (alipay["out_trade_no"], wechat["out_trade_no"])
    mine = [m for m in ledger if m["out_trade_no"] in ours]
    assert [(m["channel"], m["kind"]) for m in mine] == [("wechat", "capture")]
    assert errors == []


async def _refuse_sockets(route: WebSocketRoute) -> None:
    await route.close()  # a proxy that accepts the upgrade and drops it


def _silent_sockets(route: WebSocketRoute) -> None:
    """A proxy that takes the upgrade and then passes nothing either way."""


@pytest.mark.parametrize(
    ("sockets", "long_polls_blocked", "mode"),
    [
        (_silent_sockets, False, "long-poll"),  # sockets open and never speak
        (_refuse_sockets, True, "polling"),  # sockets dropped, long-polls refused too
    ],
    ids=["websocket-blocked", "long-poll-blocked-too"],
)
async def test_with_live_paths_blocked_the_next_one_shows_the_payment(
    server: tuple[str, str],
    browser: Browser,
    sockets: Callable[[WebSocketRoute], Any],
    long_polls_blocked: bool,
    mode: str,
) -> None:
    url, _ = server
    page = await browser.new_page()
    errors = watch(page)
    await page.route_web_socket(EVENTS, sockets)
    if long_polls_blocked:
        await page.route(LONG_POLLS, lambda route: route.abort())
    await check_out(page, url)
    await page.wait_for_selector(f"#live[data-mode={mode}]", timeout=30_000)
    await page.click("#pay-alipay")
    await page.wait_for_selector("#qr-image svg")
    await pay_on_phone(browser, url, await _code_on_page(page))
    await page.wait_for_selector("#paid:not([hidden])")
    assert await page.evaluate("document.body.dataset.paidVia") == mode
    assert errors == []


async def test_paying_an_order_paid_meanwhile_is_refused_with_a_clear_message(
    server: tuple[str, str], browser: Browser, artifacts: Path
) -> None:
    """The page missed the news (every live path cut), so the shopper presses Refresh on a QR
    of an order another device has just paid: refused, explained, nothing opened or charged."""
    url, api_key = server
    page = await browser.new_page()
    errors = watch(page)
    cut = False
    quiet = asyncio.Event()

    async def polls(route: Route) -> None:
        if cut:
            quiet.set()  # polls go one at a time: none is on its way past this point
            await route.abort()
        else:
            await route.continue_()

    # Sockets and long-polls never get through, so the page polls; then polls stop too.
    await page.route_web_socket(EVENTS, _refuse_sockets)
    await page.route(LONG_POLLS, lambda route: route.abort())
    await page.route(re.compile(r".*/api/orders/ord_\w+$"), polls)
    order_id = await check_out(page, url)
    await page.wait_for_selector("#live[data-mode=polling]", timeout=30_000)
    await page.click("#pay-alipay")
    await page.wait_for_selector("#qr-image svg")
    code = await _code_on_page(page)
    cut = True
    await quiet.wait()
    await pay_on_phone(browser, url, code)
    for _ in range(100):  # the notification reaches payonce just after the wallet's answer
        if (await order_of(url, api_key, order_id))["status"] == "READY_FOR_SHIPMENT":
            break
        await asyncio.sleep(0.05)
    assert (await order_of(url, api_key, order_id))["status"] == "READY_FOR_SHIPMENT"
    await status_is(page, "UNPAID")  # paid, and the page has not heard

    await page.click("#refresh")
    await page.wait_for_selector("#error[data-code=order_already_paid]")
    assert "already paid" in await page.inner_text("#error")
    await screenshot(page, artifacts, "pc-refused-already-paid")
    cut = False
    await page.wait_for_selector("#paid:not([hidden])", timeout=30_000)
    (payment,) = await payments_of(url, api_key, order_id)
    assert payment["status"] == "PAID"
    assert len(await sandbox(url, "ledger", payment["out_trade_no"])) == 1
    assert errors == []


async def test_a_dropped_websocket_is_reopened_and_still_brings_the_payment(
    server: tuple[str, str], browser: Browser
) -> None:
    url, _ = server
    page = await browser.new_page()
    errors = watch(page)
    sockets: list[WebSocketRoute] = []

    def through(route: WebSocketRoute) -> None:
        sockets.append(route)
        route.connect_to_server()

    await page.route_web_socket(EVENTS, through)
    modes: list[str] = []

    def mode_seen(mode: str) -> None:
        modes.append(mode)

    await page.expose_function("modeSeen", mode_seen)
    await page.add_init_script(
        "new MutationObserver(() => window.modeSeen(document.getElementById('live').dataset.mode))"
        ".observe(document, {subtree: true, attributes: true, attributeFilter: ['data-mode']})"
    )
    await check_out(page, url)
    await page.wait_for_selector("#live[data-mode=websocket]")
    await sockets[-1].close()  # the network drops the socket
    await page.wait_for_function("document.getElementById('live').dataset.mode === 'reconnecting'")
    await page.wait_for_selector("#live[data-mode=websocket]")
    assert len(sockets) == 2  # the dropped one, and the one opened after it
    await page.click("#pay-alipay")
    await page.wait_for_selector("#qr-image svg")
    await pay_on_phone(browser, url, await _code_on_page(page))
    await page.wait_for_selector("#paid:not([hidden])")
    await page.wait_for_selector("#live[data-mode=done]")  # paid is final: it stops following
    assert modes[-4:] == ["websocket", "reconnecting", "websocket", "done"]
    assert errors == []


async def test_a_reload_while_the_pay_request_is_on_its_way_sends_it_again_with_its_key(
    server: tuple[str, str], browser: Browser
) -> None:
    """The shopper clicks, and reloads before the answer arrives: the page sends the same
    intention again with the same Idempotency-Key, and gets the first request's answer."""
    url, api_key = server
    page = await browser.new_page()
    errors = watch(page)
    order_id = await check_out(page, url)
    keys: list[str] = []
    replayed: list[str | None] = []
    done_at_server = asyncio.Event()
    held: list[Route] = []

    async def hold_the_first_answer(route: Route) -> None:
        if route.request.method != "POST":
            await route.continue_()
            return
        keys.append(route.request.headers["idempotency-key"])
        answer = await route.fetch()  # the server does the work
        replayed.append(answer.headers.get("idempotent-replayed"))
        if len(keys) == 1:
            held.append(route)  # ...and its answer never reaches this page
            done_at_server.set()
        else:
            await route.fulfill(response=answer)

    await page.route(re.compile(r".*/api/orders/ord_\w+/payments$"), hold_the_first_answer)
    await page.click("#pay-alipay")
    await done_at_server.wait()
    assert await page.is_disabled("#pay-alipay")  # still waiting for its answer
    await page.reload()
    await page.wait_for_selector("#qr-image svg")
    await page.wait_for_function(f"!sessionStorage.getItem('payonce:intent:{order_id}')")

    assert len(keys) == 2
    assert keys[0] == keys[1]  # the same intention, the same key
    assert replayed == [None, "true"]  # the second got the first one's stored answer
    (payment,) = await payments_of(url, api_key, order_id)
    assert await _precreates(url, payment["out_trade_no"]) == 1
    assert errors == []
