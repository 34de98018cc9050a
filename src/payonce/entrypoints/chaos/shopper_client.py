"""A shopper's (and the shop backend's) HTTP calls, as a browser that retries would make them:
a request that got no answer is sent again with the same Idempotency-Key, to any instance."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

from payonce.entrypoints.chaos.journal import LiveMessage, Reply, Visit
from payonce.ports.clock import Clock

CART = [{"sku": "SKU-1", "name": "Tea", "quantity": 1, "unit_amount": 1999}]
# How long an unanswered request is tried again, 0.2 s apart at first, then 3 s apart: a
# crashed instance is back within seconds, a paused one in six, a crash loop on a loaded
# machine may take a minute or two.
PATIENCE_S = 180.0
# Answers that say "not now": sent again, as a browser that retries would.
RETRIED = frozenset({503, 504})
# What the pay page answers with "Checking with the provider…" and asks again, how often.
BUSY = frozenset({"idempotency_key_in_flight", "payment_outcome_unknown", "order_busy", "conflict"})
BUSY_ATTEMPTS = 120
# A request cut by a crash holds its key for the idempotency lease (120 s of payonce's clock).
RELOAD_AFTER_S = 8.0


class Unreachable(RuntimeError):
    """No instance answered a request, however often it was sent."""


class Refused(RuntimeError):
    """payonce refused what the shopper cannot go on without (their order)."""


def code_of(action: dict[str, Any] | None) -> str | None:
    """What the shopper's wallet takes from a payment's action: the QR's content, the launch
    link, the app's order string, PayPal's approval link, or the voucher's digitable line."""
    if not action:
        return None
    for name in ("qr_code", "launch_url", "order_string", "prepay_id", "redirect_url"):
        if action.get(name):
            return str(action[name])
    line = action.get("digitable_line")
    return str(line) if line else None


def _code_of(answer: httpx.Response) -> str:
    try:
        body = answer.json()
    except json.JSONDecodeError:
        return ""
    return str(body.get("code", "")) if isinstance(body, dict) else ""


class Site:
    """The payonce instances (any of them answers any call), the sandbox, and the shop's key."""

    def __init__(
        self, apis: Sequence[str], sandbox_url: str, api_key: str, seed: int, clock: Clock
    ) -> None:
        self.apis = list(apis)
        self.clock = clock
        # Every 5xx answer, retried or not, by status and problem code.
        self.server_errors: Counter[str] = Counter()
        self.sandbox_url = sandbox_url.rstrip("/")
        self.api_key = api_key
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(30.0, connect=2.0),
            limits=httpx.Limits(max_connections=400, keepalive_expiry=2.0),
        )
        self._dice = random.Random(f"{seed}/instances")  # noqa: S311 (simulation)

    async def aclose(self) -> None:
        await self.http.aclose()

    def instance(self) -> str:
        return self.apis[self._dice.randrange(len(self.apis))]

    async def call(
        self, method: str, path: str, *, headers: dict[str, str], body: Any = None
    ) -> httpx.Response:
        """Send to an instance; on no answer (refused, reset, cut) or "unavailable" (503, 504),
        again to any instance (every mutating call carries its Idempotency-Key, so a repeat is
        safe). Any other answer, a provider's refusal (502) included, is the answer."""
        wait = 0.2
        answer: httpx.Response | None = None
        until = time.monotonic() + PATIENCE_S
        while time.monotonic() < until:
            try:
                answer = await self.http.request(
                    method, f"{self.instance()}{path}", headers=headers, json=body
                )
            except httpx.TransportError:
                answer = None
            if answer is not None and answer.status_code >= 500:
                self.server_errors[f"{answer.status_code} {_code_of(answer)}".strip()] += 1
            if answer is not None and answer.status_code not in RETRIED:
                return answer
            await asyncio.sleep(wait)
            wait = min(wait * 2, 3.0)
        if answer is not None:
            return answer
        raise Unreachable(f"{method} {path}: no instance answered")

    async def sandbox(self, method: str, path: str, body: Any = None) -> httpx.Response:
        wait = 0.2
        until = time.monotonic() + PATIENCE_S
        while time.monotonic() < until:
            try:
                return await self.http.request(method, f"{self.sandbox_url}{path}", json=body)
            except httpx.TransportError:
                await asyncio.sleep(wait)
                wait = min(wait * 2, 3.0)
        raise Unreachable(f"sandbox {method} {path}: no answer")

    def now(self) -> float:
        """The shared clock, as a POSIX timestamp (read from its file, never moved)."""
        return self.clock.now().timestamp()


class Shopper:
    """One shopper's browser and the shop backend that created their order."""

    def __init__(self, site: Site, visit: Visit, dice: random.Random) -> None:
        self.site = site
        self.visit = visit
        self.dice = dice
        self.order: dict[str, Any] = {}

    def key(self) -> str:
        return f"k-{self.visit.shopper}-{self.dice.getrandbits(64):016x}"

    async def create_order(self, currency: str = "CNY") -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.site.api_key}"}
        body = {"customer_id": f"c-{self.visit.shopper}", "currency": currency, "lines": CART}
        reply = await self._keyed("/api/orders", headers, body)
        if reply.status != 201:
            raise Refused(f"create order: {reply.status} {reply.body.get('code')}")
        self.order = reply.body
        self.visit.order_id = self.order["id"]
        self.visit.amount = self.order["amount"]
        self.visit.currency = currency
        return self.order

    async def _keyed(
        self, path: str, headers: dict[str, str], body: Any = None, key: str | None = None
    ) -> Reply:
        """POST with an Idempotency-Key; "busy, try again" is asked again, as the page does.

        A key still in flight after ``RELOAD_AFTER_S`` belongs to a request a crash cut: it
        stays taken until its lease ends, so the shopper reloads the page (a new key)."""
        key = key or self.key()
        since = time.monotonic()
        for _ in range(BUSY_ATTEMPTS):
            answer = await self.site.call(
                "POST", path, headers={**headers, "Idempotency-Key": key}, body=body
            )
            reply = self._note(key, answer)
            code = reply.body.get("code")
            if code not in BUSY:
                return reply
            if code == "idempotency_key_in_flight" and time.monotonic() - since > RELOAD_AFTER_S:
                key, since = self.key(), time.monotonic()
            await asyncio.sleep(0.5)
        return reply

    @property
    def _browser(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.order['client_secret']}"}

    async def apply(self, channel: str, platform: str = "pc", key: str | None = None) -> Reply:
        """Click "pay" with ``channel`` (a double click sends the page's one key twice)."""
        body = {"channel": channel, "platform": platform}
        return await self._keyed(
            f"/api/orders/{self.order['id']}/payments", self._browser, body, key
        )

    async def cancel(self, payment_id: str) -> Reply:
        return await self._keyed(f"/api/payments/{payment_id}/cancel", self._browser)

    def _note(self, key: str, answer: httpx.Response) -> Reply:
        try:
            body = answer.json()
        except json.JSONDecodeError:
            body = {"text": answer.text[:200]}
        reply = Reply(key, answer.status_code, body if isinstance(body, dict) else {})
        self.visit.replies.append(reply)
        if answer.status_code in (200, 201) and str(reply.body.get("id", "")).startswith("pay_"):
            self.visit.acknowledged_payments.add(reply.body["id"])
        return reply

    async def wallet(self, action: str, code: str) -> bool:
        """The shopper's wallet scans or pays ``code``; True if the provider took it."""
        answer = await self.site.sandbox("POST", f"/wallet/{action}", {"code": code})
        ok = answer.status_code == 200
        if ok and action == "pay" and self.visit.paid_in_wallet_at is None:
            self.visit.paid_in_wallet_at = time.monotonic()
        return ok

    async def scan(self, reply: Reply) -> bool:
        code = code_of(reply.body.get("action"))
        if reply.status not in (200, 201) or code is None:
            return False
        return await self.wallet("scan", code)

    async def pay(self, reply: Reply) -> bool:
        code = code_of(reply.body.get("action"))
        if reply.status not in (200, 201) or code is None:
            return False
        if reply.body.get("channel") == "paypal":
            await self.wallet("scan", code)
        return await self.wallet("pay", code)

    async def look(self) -> None:
        """The page reads the order's payments (back from a wallet): read repair may ask."""
        path = f"/api/orders/{self.order['id']}/payments"
        with contextlib.suppress(Unreachable):
            await self.site.call("GET", path, headers=self._browser)

    @contextlib.asynccontextmanager
    async def page(self) -> AsyncIterator[None]:
        """The pay page's WebSocket, recording every message while the shopper is there."""
        task = asyncio.create_task(self._listen())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _listen(self) -> None:
        order_id, secret = self.order["id"], self.order["client_secret"]
        while True:
            base = self.site.instance().replace("http://", "ws://", 1)
            url = f"{base}/api/orders/{order_id}/events?client_secret={secret}"
            try:
                async with connect(url, open_timeout=5, ping_interval=None) as socket:
                    async for raw in socket:
                        message = json.loads(raw)
                        self.visit.live.append(
                            LiveMessage(
                                time.monotonic(), message["status"], message["status_version"]
                            )
                        )
            except (OSError, WebSocketException, TimeoutError):
                pass
            await asyncio.sleep(0.5)  # the page reconnects

    async def wait_until_paid(self, timeout_s: float) -> bool:
        """Stay on the page until it says paid (or the shopper gives up)."""
        until = time.monotonic() + timeout_s
        while time.monotonic() < until:
            if self.visit.notified_at is not None:
                return True
            await asyncio.sleep(0.05)
        return False
