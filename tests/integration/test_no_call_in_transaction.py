"""No provider call is ever made while payonce holds a database transaction open."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from payonce.domain.channels import Channel, Platform
from payonce.domain.money import Money
from payonce.ports.provider import (
    CreatedTrade,
    NotificationReply,
    PaymentProvider,
    ProviderNotification,
    RefundResult,
    TradeRequest,
    TradeSnapshot,
)
from tests.integration.conftest import LiveFactory


class TransactionProbe:
    """A provider decorator: before each call, try to take SQLite's write lock without waiting.

    payonce opens every transaction with BEGIN IMMEDIATE, so any transaction it holds open makes
    this attempt fail at once.
    """

    def __init__(self, inner: PaymentProvider, database: Path) -> None:
        self.inner = inner
        self.database = database
        self.calls: list[tuple[str, bool]] = []  # (call, database was free)

    def _probe(self, call: str) -> None:
        conn = sqlite3.connect(self.database, timeout=0, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
            self.calls.append((call, True))
        except sqlite3.OperationalError:
            self.calls.append((call, False))
        finally:
            conn.close()

    @property
    def channel(self) -> Channel:
        return self.inner.channel

    @property
    def merchant_id(self) -> str:
        return self.inner.merchant_id

    def supports(self, platform: Platform, currency: str) -> bool:
        return self.inner.supports(platform, currency)

    async def create(self, request: TradeRequest) -> CreatedTrade:
        self._probe("create")
        return await self.inner.create(request)

    async def query(
        self, out_trade_no: str, *, provider_trade_no: str | None = None
    ) -> TradeSnapshot:
        self._probe("query")
        return await self.inner.query(out_trade_no, provider_trade_no=provider_trade_no)

    async def close(
        self, out_trade_no: str, *, provider_trade_no: str | None = None
    ) -> TradeSnapshot:
        self._probe("close")
        return await self.inner.close(out_trade_no, provider_trade_no=provider_trade_no)

    async def capture(
        self, out_trade_no: str, *, provider_trade_no: str | None = None
    ) -> TradeSnapshot:
        self._probe("capture")
        return await self.inner.capture(out_trade_no, provider_trade_no=provider_trade_no)

    async def refund(
        self,
        out_trade_no: str,
        refund_no: str,
        amount: Money,
        *,
        provider_trade_no: str | None = None,
    ) -> RefundResult:
        self._probe("refund")
        return await self.inner.refund(
            out_trade_no, refund_no, amount, provider_trade_no=provider_trade_no
        )

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


async def test_every_provider_call_happens_outside_a_transaction(start_live: LiveFactory) -> None:
    live = await start_live(provider_timeout_s=0.3)
    providers: Any = live.container.deps.providers
    probe = TransactionProbe(
        providers[Channel.ALIPAY], live.container.settings.data_dir / "payonce.db"
    )
    providers[Channel.ALIPAY] = probe

    order = await live.create_order()
    pc = (await live.apply(order, platform="pc")).json()  # create
    await live.wallet("scan", pc["action"]["qr_code"])
    await live.apply(order, platform="wap")  # close the scanned trade, then create
    shopper = {"Authorization": f"Bearer {order['client_secret']}"}
    [wap, _] = await live.payments(order)
    await live.http.post(f"/api/payments/{wap['id']}/cancel", headers=shopper)  # close

    await live.http.put("/sandbox/faults", json={"create_timeout_rate": 1.0, "timeout_hold_s": 1.0})
    assert (await live.apply(order)).json()["code"] == "payment_outcome_unknown"
    await live.http.put("/sandbox/faults", json={})
    assert (await live.apply(order)).status_code == 201  # query, close (cancel), create

    made = [call for call, _ in probe.calls]
    assert made == ["create", "close", "create", "close", "create", "query", "close", "create"]
    assert [call for call, free in probe.calls if not free] == []
