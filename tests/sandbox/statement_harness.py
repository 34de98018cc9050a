"""Helpers for the statement tests: local days per channel, a paid-and-refunded trade, tampering.

``Tamper`` sits between the test's HTTP clients and the sandbox app and rewrites the body of the
answers it is told to (a man in the middle): the adapters must notice where the channel signs.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

from provider_kits import Kit, KitEnv
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from payonce.domain.channels import Channel, Platform
from payonce.domain.money import Money
from payonce.ports.provider import PaymentProvider, StatementLine, TradeRequest, TradeState

CHINA = ZoneInfo("Asia/Shanghai")
# The time zone each channel's statement days follow.
ZONES: dict[Channel, tzinfo] = {
    Channel.ALIPAY: CHINA,
    Channel.WECHAT: CHINA,
    Channel.PAYPAL: ZoneInfo("America/Los_Angeles"),
    Channel.BOLETO: ZoneInfo("America/Sao_Paulo"),
}
_numbers = itertools.count(1)


def local(kit: Kit, day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=ZONES[kit.channel])


async def walk_to(env: KitEnv, moment: datetime) -> None:
    """Move the sandbox's clock forward to ``moment`` (delivering what falls due on the way)."""
    seconds = (moment - env.clock.now()).total_seconds()
    assert seconds >= 0, f"{moment} is in the past"
    await env.sandbox.advance_clock(seconds)


async def after(env: KitEnv, kit: Kit, day: date) -> None:
    """Just past the end of ``day`` in the channel's zone: its bill can be asked for."""
    await walk_to(env, local(kit, day + timedelta(days=1), time(0, 0, 1)))


@dataclass(frozen=True)
class Paid:
    request: TradeRequest
    number: str | None  # the provider's trade number, as payonce records it


async def pay(kit: Kit, env: KitEnv, provider: PaymentProvider, amount: int = 1234) -> Paid:
    """A trade the shopper pays now and the merchant captures (boleto: confirmed days later)."""
    request = TradeRequest(
        out_trade_no=f"st{next(_numbers):06d}{kit.channel.value[:2]}",
        amount=Money(amount, kit.currency),
        platform=Platform.PC,
        subject="Statement tea",
        pay_deadline=env.clock.now() + timedelta(minutes=30),
    )
    created = await provider.create(request)
    await kit.pay(env, created.action)
    snapshot = await provider.capture(
        request.out_trade_no, provider_trade_no=created.provider_trade_no
    )
    assert snapshot.state is TradeState.PAID
    return Paid(request, snapshot.provider_trade_no or created.provider_trade_no)


async def refund(provider: PaymentProvider, paid: Paid, refund_no: str, amount: int) -> None:
    money = Money(amount, paid.request.amount.currency)
    done = await provider.refund(
        paid.request.out_trade_no, refund_no, money, provider_trade_no=paid.number
    )
    assert done.amount == money


def expected(kit: Kit, env: KitEnv, out_trade_no: str) -> list[StatementLine]:
    """The sandbox's ledger of a trade, as its channel's statement must tell it."""
    return [
        StatementLine(
            kind=movement.kind,
            out_trade_no=movement.out_trade_no,
            # PayPal's report does not name the order: its lines carry no trade number.
            provider_trade_no=None if kit.channel is Channel.PAYPAL else movement.trade_no,
            amount=Money(movement.amount, movement.currency),
            at=movement.at,
            reference=movement.reference,
        )
        for movement in env.sandbox.ledger(out_trade_no)
    ]


class Tamper:
    """An ASGI app that rewrites the body of the answers whose path and query match."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        path: str,
        change: Callable[[bytes], bytes],
        query: str = "",
    ) -> None:
        self.app = app
        self.path = path
        self.query = query
        self.change = change
        self.hits = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or self.path not in scope["path"]
            or self.query not in scope.get("query_string", b"").decode()
        ):
            await self.app(scope, receive, send)
            return
        self.hits += 1
        start: Message = {}
        chunks: list[bytes] = []

        async def rewrite(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = self.change(b"".join(chunks))
            headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, rewrite)
