"""What every simulated channel is to the sandbox: its shared context and the protocol it meets."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any, Protocol

from fastapi import APIRouter

from payonce.ports.clock import Clock
from payonce.sandbox.call_log import CallLog
from payonce.sandbox.faults import Faults
from payonce.sandbox.ledger import Ledger
from payonce.sandbox.notifier import Notifier
from payonce.sandbox.wallet import Wallet, WalletView


@dataclass(frozen=True)
class SandboxContext:
    """The parts every channel shares: one clock, ledger, call log, dice and notifier.

    ``lock`` makes each state change whole (one event loop serves the sandbox); ``hold`` is
    awaited after a "timed out" call did its work, before its answer goes out.
    """

    clock: Clock
    ledger: Ledger
    calls: CallLog
    faults: Faults
    notifier: Notifier
    lock: asyncio.Lock
    hold: Callable[[], Awaitable[None]]
    public_url: str  # where the sandbox app is reachable, mount path included


@dataclass(frozen=True)
class TradeListing:
    """One trade as ``GET /trades`` lists it, whatever its channel."""

    channel: str
    out_trade_no: str
    trade_no: str
    status: str  # in the channel's own words (WAIT_BUYER_PAY, SUCCESS, COMPLETED, PAID...)
    amount: int
    currency: str
    subject: str
    created_at: datetime
    paid_at: datetime | None
    closed_at: datetime | None
    captured: int
    refunded: int

    def as_json(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "out_trade_no": self.out_trade_no,
            "trade_no": self.trade_no,
            "status": self.status,
            "amount": self.amount,
            "currency": self.currency,
            "subject": self.subject,
            "created_at": self.created_at.isoformat(),
            "paid_at": self.paid_at.isoformat() if self.paid_at else None,
            "closed_at": self.closed_at.isoformat() if self.closed_at else None,
            "captured": self.captured,
            "refunded": self.refunded,
        }


class SandboxChannel(Protocol):
    """A simulated provider: its wire endpoints, its wallet side and its records."""

    @property
    def name(self) -> str: ...

    @property
    def statement_zone(self) -> tzinfo:
        """The time zone its statement days follow."""
        ...

    def router(self, wallet: Wallet) -> APIRouter:
        """Its endpoints, in its own wire format, mounted under the sandbox app."""
        ...

    def trades(self, out_trade_no: str | None = None) -> Sequence[TradeListing]: ...

    def tick(self) -> None:
        """Called under the lock before each delivery round: expiries, confirmations, ..."""
        ...

    # The wallet side: each raises Problem when it refuses.
    def recognises(self, code: str) -> bool: ...

    async def view(self, code: str) -> WalletView: ...

    async def scan(self, code: str) -> WalletView: ...

    async def pay(self, code: str) -> WalletView: ...
