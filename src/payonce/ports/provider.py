"""The provider port: one adapter per channel, speaking that channel's protocol.

Adapters classify every foreign failure at the edge, in three kinds: a call that may have
reached the provider and did not answer raises ``ProviderUnavailable`` (the outcome is unknown,
never "failed"); one that certainly did nothing (never sent, or refused before any work)
raises ``ProviderRetryable`` (a ProviderUnavailable: callers that do not care stay safe); a
definitive refusal raises ``ProviderRejected`` (terminal).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from enum import StrEnum
from typing import Literal, Protocol

from payonce.domain.channels import Channel, Platform
from payonce.domain.money import Money
from payonce.domain.payment import Action


@dataclass(frozen=True, slots=True)
class TradeRequest:
    out_trade_no: str
    amount: Money
    platform: Platform
    subject: str
    pay_deadline: datetime  # the provider refuses payment after this instant
    return_url: str | None = None
    # The shopper's IP as payonce saw it (WeChat Pay's H5 orders must name it).
    shopper_ip: str | None = None


@dataclass(frozen=True, slots=True)
class CreatedTrade:
    action: Action
    provider_trade_no: str | None = None


class TradeState(StrEnum):
    NOT_FOUND = "NOT_FOUND"  # the provider holds no trade (yet: Alipay opens it at scan)
    OPEN = "OPEN"  # waiting for the shopper
    # The shopper approved the payment and the merchant must capture it (PayPal); no money has
    # moved yet, so until captured it is as open as OPEN.
    APPROVED = "APPROVED"
    PAID = "PAID"
    CLOSED = "CLOSED"  # closed unpaid; can no longer be paid
    REFUNDED = "REFUNDED"  # paid, then refunded in full by the provider (a cancel of a paid trade)


@dataclass(frozen=True, slots=True)
class TradeSnapshot:
    state: TradeState
    provider_trade_no: str | None = None
    amount: Money | None = None
    # When the provider captured the money (the shopper paid; for a boleto, when the shopper
    # paid at the bank, not the clearing's later confirmation), aware UTC; None when the
    # answer does not say (unpaid, or a protocol that does not carry it).
    paid_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RefundResult:
    refund_no: str
    amount: Money
    completed: bool


@dataclass(frozen=True, slots=True)
class ProviderNotification:
    """A notification whose signature has been verified; its business fields are not yet matched."""

    channel: Channel
    notify_id: str
    out_trade_no: str
    provider_trade_no: str | None
    state: TradeState
    amount: Money
    merchant_id: str
    # As TradeSnapshot.paid_at: when the money was captured, aware UTC, if the notice says.
    paid_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class StatementLine:
    """One money movement on a provider's statement (bill) of a day."""

    kind: Literal["capture", "refund"]
    out_trade_no: str
    provider_trade_no: str | None
    amount: Money  # positive
    at: datetime  # aware UTC
    # Captures: the provider's trade (or capture) number; refunds: our refund request number
    # (out_request_no, out_refund_no, PayPal-Request-Id, boleto refund code).
    reference: str


@dataclass(frozen=True, slots=True)
class NotificationReply:
    status_code: int
    body: bytes
    media_type: str


class PaymentProvider(Protocol):
    @property
    def channel(self) -> Channel: ...

    def supports(self, platform: Platform, currency: str) -> bool: ...

    @property
    def merchant_id(self) -> str:
        """Our id at the provider (app id, merchant id); notifications must name it."""
        ...

    async def create(self, request: TradeRequest) -> CreatedTrade: ...

    # ``provider_trade_no``, when we hold it, is the provider's own number for the trade; a
    # provider that cannot find a trade by our number alone (PayPal, after a while) needs it.

    async def query(
        self, out_trade_no: str, *, provider_trade_no: str | None = None
    ) -> TradeSnapshot: ...

    async def close(
        self, out_trade_no: str, *, provider_trade_no: str | None = None
    ) -> TradeSnapshot:
        """Make the trade unpayable. Answers CLOSED, or PAID when the shopper paid first."""
        ...

    async def capture(
        self, out_trade_no: str, *, provider_trade_no: str | None = None
    ) -> TradeSnapshot:
        """Collect a payment the shopper approved (PayPal), idempotently; answers PAID.

        Channels where the shopper's payment is itself the capture answer as ``query`` does.
        """
        ...

    async def refund(
        self,
        out_trade_no: str,
        refund_no: str,
        amount: Money,
        *,
        provider_trade_no: str | None = None,
    ) -> RefundResult: ...

    @property
    def statement_zone(self) -> tzinfo:
        """The time zone whose calendar days the channel's statements follow."""
        ...

    async def statement(self, day: date) -> list[StatementLine]:
        """Every money movement of that day, the day in the channel's statement time zone.

        Raises ``ProviderUnavailable`` when the provider does not answer or the bill is not
        ready (a day is billed once it has ended).
        """
        ...

    async def aclose(self) -> None:
        """Release what the adapter holds open (pooled connections)."""
        ...

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> ProviderNotification:
        """Verify the signature on the raw bytes; raise ``NotificationRejected`` otherwise."""
        ...

    def named_trade(self, body: bytes) -> str | None:
        """Our trade number a notification's body names, read without verifying it: never
        trusted, only a hint of which trade to ask the provider about after a refusal."""
        ...

    def acknowledge(self) -> NotificationReply:
        """The answer that tells the provider to stop retrying."""
        ...

    def refuse(self, reason: str) -> NotificationReply:
        """The answer that tells the provider to try again later."""
        ...
