"""Times every call a provider adapter makes and counts how it ended, by channel and call."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import date, tzinfo
from typing import TypeVar

from payonce.domain.channels import Channel, Platform
from payonce.domain.money import Money
from payonce.errors import ProviderRejected, ProviderRetryable, ProviderUnavailable
from payonce.ports.metrics import CallOutcome, Metrics
from payonce.ports.provider import (
    CreatedTrade,
    NotificationReply,
    PaymentProvider,
    ProviderNotification,
    RefundResult,
    StatementLine,
    TradeRequest,
    TradeSnapshot,
)

T = TypeVar("T")


def _outcome_of(error: BaseException) -> CallOutcome:
    if isinstance(error, ProviderRetryable):
        return "unavailable"  # certainly not done: refused at the door
    if isinstance(error, ProviderUnavailable):
        return "unanswered"  # perhaps done: the outcome is unknown
    if isinstance(error, ProviderRejected):
        return "rejected"
    return "error"


class MeteredProvider:
    """A provider adapter as it is, its calls measured into ``metrics``."""

    def __init__(self, inner: PaymentProvider, metrics: Metrics) -> None:
        self.inner = inner
        self._metrics = metrics
        self._channel = inner.channel.value

    async def _timed(self, call: str, work: Callable[[], Awaitable[T]]) -> T:
        started = time.perf_counter()
        try:
            answer = await work()
        except BaseException as error:
            outcome = _outcome_of(error)
            self._metrics.provider_call(self._channel, call, outcome, time.perf_counter() - started)
            raise
        self._metrics.provider_call(self._channel, call, "ok", time.perf_counter() - started)
        return answer

    @property
    def channel(self) -> Channel:
        return self.inner.channel

    def supports(self, platform: Platform, currency: str) -> bool:
        return self.inner.supports(platform, currency)

    @property
    def merchant_id(self) -> str:
        return self.inner.merchant_id

    async def create(self, request: TradeRequest) -> CreatedTrade:
        return await self._timed("create", lambda: self.inner.create(request))

    async def query(
        self, out_trade_no: str, *, provider_trade_no: str | None = None
    ) -> TradeSnapshot:
        return await self._timed(
            "query", lambda: self.inner.query(out_trade_no, provider_trade_no=provider_trade_no)
        )

    async def close(
        self, out_trade_no: str, *, provider_trade_no: str | None = None
    ) -> TradeSnapshot:
        return await self._timed(
            "close", lambda: self.inner.close(out_trade_no, provider_trade_no=provider_trade_no)
        )

    async def capture(
        self, out_trade_no: str, *, provider_trade_no: str | None = None
    ) -> TradeSnapshot:
        return await self._timed(
            "capture",
            lambda: self.inner.capture(out_trade_no, provider_trade_no=provider_trade_no),
        )

    async def refund(
        self,
        out_trade_no: str,
        refund_no: str,
        amount: Money,
        *,
        provider_trade_no: str | None = None,
    ) -> RefundResult:
        return await self._timed(
            "refund",
            lambda: self.inner.refund(
                out_trade_no, refund_no, amount, provider_trade_no=provider_trade_no
            ),
        )

    @property
    def statement_zone(self) -> tzinfo:
        return self.inner.statement_zone

    async def statement(self, day: date) -> list[StatementLine]:
        return await self._timed("statement", lambda: self.inner.statement(day))

    async def aclose(self) -> None:
        await self.inner.aclose()

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> ProviderNotification:
        return self.inner.parse_notification(headers, body)

    def named_trade(self, body: bytes) -> str | None:
        return self.inner.named_trade(body)

    def acknowledge(self) -> NotificationReply:
        return self.inner.acknowledge()

    def refuse(self, reason: str) -> NotificationReply:
        return self.inner.refuse(reason)
