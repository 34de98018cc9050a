"""The shopper's wallet: scan and pay endpoints, and the page a demo user clicks after a QR code."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic import BaseModel, Field

from payonce.domain.money import CURRENCY_SYMBOLS
from payonce.sandbox.problems import Problem

NOT_SCANNED = "NOT_SCANNED"


@dataclass(frozen=True)
class WalletView:
    """What the shopper's wallet shows for one code."""

    channel: str
    code: str
    out_trade_no: str
    trade_no: str | None
    subject: str
    amount: int
    currency: str
    status: str  # NOT_SCANNED, or the trade's status at the provider
    pay_deadline: datetime
    can_scan: bool
    can_pay: bool
    note: str | None = None
    # Where the shopper's browser goes after paying (e.g. Alipay's signed wap return).
    return_url: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "code": self.code,
            "out_trade_no": self.out_trade_no,
            "trade_no": self.trade_no,
            "subject": self.subject,
            "amount": self.amount,
            "currency": self.currency,
            "status": self.status,
            "pay_deadline": self.pay_deadline.isoformat(),
            "can_scan": self.can_scan,
            "can_pay": self.can_pay,
            "note": self.note,
            "return_url": self.return_url,
        }


# A symbol of more than one character stands apart from the amount on the wallet's screen
# (R$ 39.98), as Brazilian banks print it.
_SYMBOLS = {
    code: symbol + (" " if len(symbol) > 1 else "") for code, symbol in CURRENCY_SYMBOLS.items()
}
# A code as the wallet takes it: the same bounds on the query string as on the JSON body.
CODE_MAX_LENGTH = 16384


def currency_symbols() -> dict[str, str]:
    """The symbol the wallet writes before an amount, per currency (the phone page formats too)."""
    return dict(_SYMBOLS)


def _amount(minor: int, currency: str) -> str:
    """An amount as the wallet shows it, e.g. ¥12.34 or R$5.00 (two-decimal currencies)."""
    return f"{_SYMBOLS.get(currency, '')}{minor // 100}.{minor % 100:02d}"


class WalletChannel(Protocol):
    """A channel as the wallet sees it; each method raises Problem when it refuses."""

    def recognises(self, code: str) -> bool: ...

    async def view(self, code: str) -> WalletView: ...

    async def scan(self, code: str) -> WalletView: ...

    async def pay(self, code: str) -> WalletView: ...


class CodeBody(BaseModel):
    code: str = Field(min_length=1, max_length=CODE_MAX_LENGTH)


class Wallet:
    """Routes a code to the channel that issued it; renders the wallet page."""

    def __init__(self, channels: Sequence[WalletChannel]) -> None:
        self._channels = list(channels)
        self._templates = Environment(
            loader=PackageLoader("payonce.sandbox", "templates"),
            autoescape=select_autoescape(default=True),
        )

    def channel_for(self, code: str) -> WalletChannel:
        for channel in self._channels:
            if channel.recognises(code.strip()):
                return channel
        raise Problem(422, "code_unknown", "Unknown code", "no channel issued this code")

    async def page(self, request: Request, code: str) -> HTMLResponse:
        """The wallet page for a code (or the page saying why it cannot be shown)."""
        try:
            view = await self.channel_for(code).view(code.strip())
        except Problem as problem:
            return self.error_page(request, problem)
        html = self._templates.get_template("wallet.html").render(
            view=view,
            amount=_amount(view.amount, view.currency),
            root=request.scope.get("root_path", ""),
            problem=None,
        )
        return HTMLResponse(html)

    def error_page(self, request: Request, problem: Problem) -> HTMLResponse:
        html = self._templates.get_template("wallet.html").render(
            view=None, amount=None, root=request.scope.get("root_path", ""), problem=problem
        )
        return HTMLResponse(html, status_code=problem.status)

    def router(self) -> APIRouter:
        router = APIRouter(tags=["wallet"])

        @router.post("/wallet/scan")
        async def scan(body: CodeBody) -> JSONResponse:
            """The shopper opens the trade in the wallet (for Alipay, it exists from now on)."""
            view = await self.channel_for(body.code).scan(body.code.strip())
            return JSONResponse(view.as_json())

        @router.post("/wallet/pay")
        async def pay(body: CodeBody) -> JSONResponse:
            """The shopper pays (scanning first if needed): money moves, notices are scheduled."""
            view = await self.channel_for(body.code).pay(body.code.strip())
            return JSONResponse(view.as_json())

        @router.get("/wallet/view")
        async def view(
            code: Annotated[str, Query(min_length=1, max_length=CODE_MAX_LENGTH)],
        ) -> JSONResponse:
            """The trade as the wallet shows it for a code, without scanning or paying it."""
            seen = await self.channel_for(code).view(code.strip())
            return JSONResponse(seen.as_json())

        @router.get("/wallet", response_class=HTMLResponse)
        async def wallet_page(request: Request, code: str) -> HTMLResponse:
            return await self.page(request, code)

        return router
