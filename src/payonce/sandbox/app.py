"""The sandbox as one object: its in-memory state, its dispatcher and its FastAPI app."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from payonce.ports.clock import Clock
from payonce.sandbox.alipay import AlipayChannel
from payonce.sandbox.alipay_trades import OrderSnapshot
from payonce.sandbox.call_log import CallLog, GatewayCall
from payonce.sandbox.channel import SandboxChannel, SandboxContext, TradeListing
from payonce.sandbox.channels import build_channels
from payonce.sandbox.credentials import AlipayCredentials
from payonce.sandbox.faults import Faults, FaultSettings, Forgery
from payonce.sandbox.keys import SandboxKeys
from payonce.sandbox.ledger import Ledger, Movement
from payonce.sandbox.notifier import Delivery, Notifier, Outgoing
from payonce.sandbox.phone import PHONE_PATH, Phone, wants_html
from payonce.sandbox.problems import (
    Problem,
    handle_http_error,
    handle_problem,
    handle_validation_error,
)
from payonce.sandbox.wallet import Wallet


class ClockControl(Protocol):
    """What the sandbox needs of an adjustable clock (``payonce.adapters.clock.AdjustableClock``).

    A protocol rather than the adapter class: the sandbox may not import adapters (layers).
    """

    def advance(self, delta: timedelta) -> datetime: ...


class ClockAdvance(BaseModel):
    advance_s: float = Field(ge=0, le=10 * 365 * 86400)


class Sandbox:
    """A third-party payment provider simulator; mount ``.app`` at ``/sandbox``.

    ``public_url`` is where ``.app`` is reachable from outside (mount path included), e.g.
    ``http://127.0.0.1:8000/sandbox``; QR codes point there.
    """

    def __init__(
        self,
        *,
        clock: Clock,
        keys: SandboxKeys,
        public_url: str,
        adjustable_clock: ClockControl | None = None,
        faults: FaultSettings | None = None,
        notify_timeout_s: float = 10.0,
    ) -> None:
        self.clock = clock
        self.keys = keys
        self.public_url = public_url.rstrip("/")
        self._adjustable_clock = adjustable_clock
        # One event loop serves the sandbox; this lock makes each state change whole.
        self._lock = asyncio.Lock()
        self._closing = asyncio.Event()
        self._faults = Faults(faults)
        self._ledger = Ledger()
        self._calls = CallLog()
        self._notifier = Notifier(clock=clock, faults=self._faults, http_timeout_s=notify_timeout_s)
        context = SandboxContext(
            clock=clock,
            ledger=self._ledger,
            calls=self._calls,
            faults=self._faults,
            notifier=self._notifier,
            lock=self._lock,
            hold=self._hold,
            public_url=self.public_url,
        )
        self._channels = {channel.name: channel for channel in build_channels(context, keys)}
        self._wallet = Wallet(list(self._channels.values()))
        self._phone = Phone()
        self.app = self._build_app()

    @property
    def alipay_credentials(self) -> AlipayCredentials:
        return self.keys.alipay

    def channel(self, name: str) -> SandboxChannel:
        """One simulated channel, for what only it knows (e.g. Alipay's unscanned QR codes)."""
        return self._channels[name]

    @property
    def channel_names(self) -> list[str]:
        return list(self._channels)

    # -- plain-Python accessors ------------------------------------------------------------

    def trades(
        self, out_trade_no: str | None = None, *, channel: str | None = None
    ) -> list[TradeListing]:
        """Every trade the providers hold (Alipay: only scanned ones)."""
        return [
            trade
            for name, simulated in self._channels.items()
            if channel is None or name == channel
            for trade in simulated.trades(out_trade_no)
        ]

    def orders(self) -> list[OrderSnapshot]:
        """Every Alipay merchant order, pending (unscanned) QR codes included."""
        alipay = self._channels["alipay"]
        assert isinstance(alipay, AlipayChannel)
        return alipay.orders()

    def ledger(self, out_trade_no: str | None = None) -> list[Movement]:
        return self._ledger.movements(out_trade_no=out_trade_no)

    def net_captured(self, channel: str, out_trade_no: str) -> int:
        """Captured minus refunded for one trade, in minor units."""
        return self._ledger.net(channel=channel, out_trade_no=out_trade_no)

    def deliveries(self, out_trade_no: str | None = None) -> list[Delivery]:
        return self._notifier.deliveries(out_trade_no)

    def notifications(self, out_trade_no: str | None = None) -> list[tuple[str, str]]:
        """(channel, notify_id) of every notification the sandbox planned, in order."""
        return self._notifier.planned(out_trade_no)

    def notification(
        self, channel: str, notify_id: str, forgery: Forgery | None = None
    ) -> Outgoing:
        """Render a notification the sandbox sent, as of now: genuine, or forged as asked."""
        return self._notifier.render(channel, notify_id, forgery)

    def calls(self, out_trade_no: str | None = None) -> list[GatewayCall]:
        """Every gateway call merchants made, in order, with the answer code each got."""
        return self._calls.calls(out_trade_no)

    @property
    def faults(self) -> FaultSettings:
        return self._faults.settings

    def set_faults(self, settings: FaultSettings) -> None:
        """Replace the fault settings; the dice restart from the new seed."""
        self._faults.configure(settings)

    # -- time and delivery -----------------------------------------------------------------

    async def deliver_due(self) -> int:
        """Close trades past their deadline, then make every notification attempt due now."""
        async with self._lock:
            for channel in self._channels.values():
                channel.tick()
        return await self._notifier.deliver_due()

    async def run_dispatcher(self, interval_s: float = 0.2) -> None:
        """Deliver due notifications until ``aclose``; run it as a task next to the app."""
        await self._notifier.run(interval_s, tick=self.deliver_due)

    async def advance_clock(self, seconds: float) -> tuple[datetime, int]:
        """Move the adjustable clock forward, then deliver what became due: (now, delivered)."""
        if self._adjustable_clock is None:
            raise Problem(
                409, "clock_not_adjustable", "Clock not adjustable", "started with a fixed clock"
            )
        now = self._adjustable_clock.advance(timedelta(seconds=seconds))
        return now, await self.deliver_due()

    async def aclose(self) -> None:
        """Release held answers, stop the dispatcher and close the HTTP client."""
        self._closing.set()
        await self._notifier.aclose()

    async def _hold(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), timeout=self._faults.timeout_hold_s)

    # -- the app ---------------------------------------------------------------------------

    def _build_app(self) -> FastAPI:
        app = FastAPI(
            title="payonce provider sandbox",
            description="A payment provider simulator for tests and demos. Never in production.",
        )
        app.add_exception_handler(Problem, handle_problem)
        app.add_exception_handler(RequestValidationError, handle_validation_error)
        app.add_exception_handler(StarletteHTTPException, handle_http_error)
        for channel in self._channels.values():
            app.include_router(channel.router(self._wallet))
        app.include_router(self._wallet.router())
        app.include_router(self._phone.router())

        @app.get("/trades", tags=["inspection"])
        async def trades(
            out_trade_no: str | None = None, channel: str | None = None
        ) -> dict[str, Any]:
            listed = self.trades(out_trade_no, channel=channel)
            return {"trades": [trade.as_json() for trade in listed]}

        @app.get("/orders", tags=["inspection"])
        async def orders(out_trade_no: str | None = None) -> dict[str, Any]:
            return {
                "orders": [
                    order.as_json()
                    for order in self.orders()
                    if out_trade_no is None or order.out_trade_no == out_trade_no
                ]
            }

        @app.get("/ledger", tags=["inspection"])
        async def ledger(out_trade_no: str | None = None) -> dict[str, Any]:
            return {"movements": [movement.as_json() for movement in self.ledger(out_trade_no)]}

        @app.get("/deliveries", tags=["inspection"])
        async def deliveries(out_trade_no: str | None = None) -> dict[str, Any]:
            return {"deliveries": [d.as_json() for d in self.deliveries(out_trade_no)]}

        @app.get("/calls", tags=["inspection"])
        async def calls(out_trade_no: str | None = None) -> dict[str, Any]:
            return {"calls": [call.as_json() for call in self.calls(out_trade_no)]}

        @app.post("/deliveries/run", tags=["control"])
        async def run_deliveries() -> dict[str, Any]:
            return {"delivered": await self.deliver_due()}

        @app.get("/faults", tags=["control"])
        async def get_faults() -> FaultSettings:
            return self.faults

        @app.put("/faults", tags=["control"])
        async def put_faults(settings: FaultSettings) -> FaultSettings:
            async with self._lock:
                self.set_faults(settings)
            return self.faults

        @app.post("/clock", tags=["control"])
        async def clock(body: ClockAdvance) -> dict[str, Any]:
            now, delivered = await self.advance_clock(body.advance_s)
            return {
                "now": now.isoformat(),
                "delivered": delivered,
                "pending_notifications": self._notifier.pending(),
            }

        @app.get("/{channel}/statements/{day}", tags=["inspection"])
        async def statement(channel: str, day: date) -> PlainTextResponse:
            simulated = self._channels.get(channel)
            if simulated is None:
                raise Problem(404, "channel_unknown", "Unknown channel", channel)
            text = self._ledger.statement_csv(channel=channel, day=day, tz=simulated.statement_zone)
            return PlainTextResponse(text, media_type="text/csv; charset=utf-8")

        @app.get("/", include_in_schema=False)
        async def index(request: Request) -> Response:
            if wants_html(request):
                return self._phone.index(request, self.channel_names)
            phone = f"{request.scope.get('root_path', '')}{PHONE_PATH}"
            return JSONResponse(
                {"sandbox": "payonce", "channels": self.channel_names, "links": {"phone": phone}}
            )

        return app


def sandbox_root_app(sandbox: Sandbox, *, run_dispatcher: bool = True) -> FastAPI:
    """An app serving ``sandbox.app`` at ``/sandbox`` (``payonce sandbox``), dispatcher included."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(sandbox.run_dispatcher()) if run_dispatcher else None
        try:
            yield
        finally:
            await sandbox.aclose()
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    root = FastAPI(title="payonce provider sandbox", lifespan=lifespan, docs_url=None)
    root.mount("/sandbox", sandbox.app)
    return root
