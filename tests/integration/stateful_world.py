"""The in-process payonce a state machine drives: one event loop and loopback server per test,
a fresh payonce with its mounted sandbox per example, the actions of shoppers, provider and
workers, and the reads (never through the API) that the machine's invariants check."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Coroutine
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
from starlette.types import ASGIApp, Receive, Scope, Send

from payonce.adapters.clock import AdjustableClock
from payonce.adapters.storage.memory import MemoryStorage
from payonce.bootstrap import Container, bootstrap
from payonce.config import Settings
from payonce.domain.channels import Channel
from payonce.domain.ids import OrderId
from payonce.domain.order import Order
from payonce.domain.payment import Payment
from payonce.domain.transitions import TransitionTable
from payonce.entrypoints.web.app import create_app
from payonce.errors import NotificationRejected, PayonceError
from payonce.ports.provider import TradeState
from payonce.ports.storage import AuditEntry
from payonce.sandbox.app import Sandbox
from payonce.sandbox.faults import FaultSettings
from payonce.sandbox.ledger import Movement
from payonce.sandbox.notifier import Delivery
from payonce.sandbox.problems import Problem
from payonce.service import outbox
from payonce.service.context import Deps
from payonce.service.expiry import expire_due
from payonce.service.polling import poll_due
from payonce.service.recording import CAPTURABLE
from payonce.service.sweeper import sweep
from tests.conftest import START
from tests.integration.conftest import API_KEY
from tests.loopback import loopback, served

T = TypeVar("T")

# The channels each currency can pay with (PayPal takes both), and the action field the
# shopper's wallet (or bank) reads on PC.
CHANNELS = {"BRL": ("boleto", "paypal"), "CNY": ("alipay", "wechat", "paypal")}
CODE_FIELD = {
    "alipay": "qr_code",
    "wechat": "qr_code",
    "paypal": "redirect_url",
    "boleto": "digitable_line",
}


def _retryable(cls: type[PayonceError]) -> set[str]:
    found = {cls.code} if cls.retryable else set()
    for sub in cls.__subclasses__():
        found |= _retryable(sub)
    return found


# Refusals whose Idempotency-Key is given back rather than stored: the request may run again.
RETRYABLE_CODES = frozenset(_retryable(PayonceError))


@dataclass
class KeyUse:
    """The first answer to an Idempotency-Key."""

    channel: str
    status: int
    content: bytes
    at: datetime

    @property
    def stored(self) -> bool:
        """Kept for replay: anything but a retryable refusal."""
        if self.status < 400:
            return True
        return str(httpx.Response(400, content=self.content).json()["code"]) not in RETRYABLE_CODES


@dataclass(eq=False)
class OrderRef:
    """An order as the shop and the shopper's browser hold it."""

    id: str
    secret: str
    amount: int
    currency: str
    expires_at: datetime
    keys: dict[str, KeyUse] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"<{self.currency} order of {self.amount}>"


@dataclass(eq=False)
class PaymentRef:
    """A payment as the shopper holds it: what to pay with in the wallet."""

    id: str
    order: OrderRef
    channel: str
    code: str

    def __repr__(self) -> str:
        return f"<{self.channel} payment>"


@dataclass(frozen=True)
class Acked:
    """A notification payonce acknowledged, and the trade state it reported (None: about
    nothing payonce tracks)."""

    delivery: Delivery
    state: TradeState | None


@dataclass(frozen=True)
class Trade:
    """One payment record with the provider's side of it."""

    payment: Payment
    movements: tuple[Movement, ...]
    open_at_provider: bool  # money could still move on it without payonce asking

    def count(self, kind: str) -> int:
        return sum(1 for m in self.movements if m.kind == kind)

    @property
    def net(self) -> int:
        return sum(m.amount if m.kind == "capture" else -m.amount for m in self.movements)


@dataclass(frozen=True)
class OrderView:
    order: Order
    trades: tuple[Trade, ...]
    # The audit trail's rows of the order, and the status of each of its refunds.
    audit: tuple[AuditEntry, ...] = ()
    refunds: tuple[tuple[str, str], ...] = ()

    def applied(self) -> list[Trade]:
        return [t for t in self.trades if t.payment.applied]


class Switchboard:
    """An ASGI app passing every request on to the current example's payonce."""

    app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None, "no example is under way"
        await self.app(scope, receive, send)


class Stage:
    """What the examples of one test share: an event loop and a loopback server.

    The loop is an ``asyncio.Runner``'s. A step runs its coroutine to completion on it; the
    uvicorn server is a task on the same loop, so it serves while that coroutine awaits it
    (and the sandbox's deliveries reach payonce the same way), and nothing at all runs between
    steps. The server's URL stays the same from one example to the next (payonce and its
    sandbox are told it at bootstrap); its app is switched to each example's payonce.
    """

    def __init__(self, data_dir: Path, sandbox_keys: Path) -> None:
        self.data_dir = data_dir
        shutil.copytree(sandbox_keys, data_dir / "sandbox")
        self.switchboard = Switchboard()
        self._runner = asyncio.Runner()
        self._stack = AsyncExitStack()
        sock, self.url = loopback()
        self.http = httpx.AsyncClient(base_url=self.url, timeout=30)
        self._stack.push_async_callback(self.http.aclose)
        try:
            self.run(self._stack.enter_async_context(served(self.switchboard, sock)))
        except BaseException:
            self.close()
            raise

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(work)

    def close(self) -> None:
        try:
            self.run(self._stack.aclose())
        finally:
            self._runner.close()


class World:
    """One example's payonce (API, order service, the workers' passes) and sandbox.

    Storage is ``MemoryStorage``, the in-memory twin of the SQL adapter, given to the container
    in place of its SQL storage (an in-memory SQLite URL that is never connected); locks, cache
    and feed are the embedded default's in-process adapters; the clock is one the rules move.
    """

    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        self.http = stage.http
        self.run = stage.run
        self.clock = AdjustableClock(start=START)
        self.acked: list[Acked] = []
        self._seen = 0  # deliveries looked at
        settings = Settings(
            data_dir=stage.data_dir,
            api_key=API_KEY,
            clock="adjustable",
            provider_timeout_s=5.0,
            mount_sandbox=True,
            database_url="sqlite+aiosqlite://",
        )
        self.container: Container = self.run(
            bootstrap(settings, public_url=stage.url, clock=self.clock)
        )
        self.container.deps.storage = MemoryStorage()
        stage.switchboard.app = create_app(self.container, run_background=False)

    def close(self) -> None:
        self.stage.switchboard.app = None
        self.run(self.container.aclose())

    @property
    def sandbox(self) -> Sandbox:
        assert self.container.sandbox is not None
        return self.container.sandbox

    @property
    def deps(self) -> Deps:
        return self.container.deps

    def now(self) -> datetime:
        return self.clock.now()

    # -- the shop, the shopper ----------------------------------------------------------------

    async def create_order(self, currency: str, quantity: int) -> OrderRef:
        lines = [{"sku": "SKU-1", "name": "Tea", "quantity": quantity, "unit_amount": 1999}]
        response = await self.http.post(
            "/api/orders",
            json={"customer_id": "c-1", "currency": currency, "lines": lines},
            headers={"Authorization": f"Bearer {API_KEY}"},
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert (body["status"], body["amount"]) == ("UNPAID", 1999 * quantity)
        expires_at = datetime.fromisoformat(body["expires_at"])
        return OrderRef(body["id"], body["client_secret"], body["amount"], currency, expires_at)

    async def apply(self, order: OrderRef, channel: str, key: str) -> httpx.Response:
        return await self.http.post(
            f"/api/orders/{order.id}/payments",
            json={"channel": channel, "platform": "pc"},
            headers={"Authorization": f"Bearer {order.secret}", "Idempotency-Key": key},
        )

    async def shopper(self, method: str, path: str, order: OrderRef) -> httpx.Response:
        return await self.http.request(
            method, path, headers={"Authorization": f"Bearer {order.secret}"}
        )

    async def wallet(self, action: str, code: str) -> httpx.Response:
        return await self.http.post(f"/sandbox/wallet/{action}", json={"code": code})

    def lose_close_races(self, on: bool) -> None:
        """On: an Alipay payment under way when its trade is closed lands anyway."""
        self.sandbox.set_faults(FaultSettings(pay_after_close_rate=1.0 if on else 0.0))

    # -- the provider, the workers --------------------------------------------------------

    async def deliver(self) -> list[Delivery]:
        """The sandbox delivers what is due; what payonce acknowledged is kept, as read then
        (a signature's freshness is judged at the clock's now). Returns the new deliveries."""
        await self.sandbox.deliver_due()
        fresh = self.sandbox.deliveries()[self._seen :]
        self._seen += len(fresh)
        for delivery in fresh:
            if delivery.ok:
                provider = self.deps.providers[Channel(delivery.channel)]
                try:
                    state = provider.parse_notification(delivery.headers, delivery.raw).state
                except NotificationRejected:
                    state = None
                self.acked.append(Acked(delivery, state))
        return fresh

    async def resend(self, delivery: Delivery) -> httpx.Response:
        """A delivered notification's exact bytes and headers, sent again."""
        return await self.http.post(
            delivery.url, content=delivery.raw, headers=dict(delivery.headers)
        )

    async def relay(self) -> None:
        await outbox.deliver_due(self.deps)

    async def poll(self) -> None:
        """The trade polls due now, then the sweeper, as the background loop runs them."""
        await poll_due(self.deps)
        await sweep(self.deps)

    async def expire(self) -> None:
        await expire_due(self.deps)

    async def settle(self, days: int = 14) -> None:
        """Two weeks, a day at a time, with every delivery and worker pass each day: retries
        run out, vouchers are confirmed or lapse, orders expire, extra captures are refunded."""
        for _ in range(days):
            self.clock.advance(timedelta(days=1))
            await self.deliver()
            await self.poll()
            await self.expire()
            await self.relay()
        await self.deliver()
        await self.relay()

    # -- reads for the invariants ---------------------------------------------------------

    async def view(self, order_ids: list[str]) -> dict[str, OrderView]:
        async with self.deps.storage.transaction() as uow:
            loaded = [
                (
                    await uow.orders.get(OrderId(o)),
                    await uow.payments.for_order(OrderId(o)),
                    await uow.audit.for_order(OrderId(o)),
                    await uow.refunds.for_order(OrderId(o)),
                )
                for o in order_ids
            ]
        views: dict[str, OrderView] = {}
        for order, payments, audit, refunds in loaded:
            assert order is not None
            trades = [
                Trade(p, tuple(self.sandbox.ledger(p.out_trade_no)), await self._open(p))
                for p in payments
            ]
            refunded = tuple((r.refund_no, r.status.value) for r in refunds)
            views[order.id] = OrderView(order, tuple(trades), tuple(audit), refunded)
        return views

    async def _open(self, payment: Payment) -> bool:
        """Whether the shopper could still pay this trade, as the provider's wallet says."""
        if payment.action is None:
            return False
        channel = payment.channel.value
        if channel == "paypal":
            # PayPal cannot void an order: one payonce closed stays approvable, and money
            # moves only when payonce captures, which it does only while the record waits.
            if payment.status not in CAPTURABLE:
                return False
            listed = self.sandbox.trades(payment.out_trade_no, channel=channel)
            if any(t.status == "APPROVED" for t in listed):
                return True
        try:
            seen = await self.sandbox.channel(channel).view(
                payment.action.fields[CODE_FIELD[channel]]
            )
        except Problem:
            return False
        return seen.can_pay


def reachable(table: TransitionTable[Any]) -> dict[Any, set[Any]]:
    """The statuses reachable from each one, itself included (one step may take several)."""
    closure = {}
    for start in table.allowed:
        seen, todo = {start}, [start]
        while todo:
            for following in table.allowed[todo.pop()] - seen:
                seen.add(following)
                todo.append(following)
        closure[start] = seen
    return closure


def new_key() -> str:
    return str(uuid.uuid4())
