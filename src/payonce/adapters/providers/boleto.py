"""The boleto channel over its PSP's REST API (httpx): vouchers, query, refund, signed webhooks.

The PSP's API is modelled on Pagar.me's v5 charges (JSON, centavos, our ``out_trade_no`` as the
charge's ``code``, Basic auth with the secret key). A boleto is paid at a bank and confirmed by
the PSP one to three business days later; it cannot be cancelled once issued, so ``close``
never makes an open voucher unpayable: it is refused, and a second payment of the order is
refunded instead.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from payonce.adapters.providers.boleto_statement import parse_psp_time, parse_statement
from payonce.adapters.providers.freshness import require_fresh
from payonce.adapters.providers.http_pool import ClientPool
from payonce.adapters.providers.strict_json import loads_strict
from payonce.domain.channels import Channel, Platform
from payonce.domain.money import InvalidMoney, Money
from payonce.domain.payment import Action, ActionType
from payonce.errors import (
    NotificationRejected,
    ProviderRejected,
    ProviderRetryable,
    ProviderUnavailable,
)
from payonce.ports.clock import Clock
from payonce.ports.provider import (
    CreatedTrade,
    NotificationReply,
    ProviderNotification,
    RefundResult,
    StatementLine,
    TradeRequest,
    TradeSnapshot,
    TradeState,
)

log = logging.getLogger(__name__)

CURRENCY = "BRL"
# The PSP's calendar: a due date is a São Paulo date.
SAO_PAULO = ZoneInfo("America/Sao_Paulo")
SIGNATURE_HEADER = "x-boleto-signature"
# Every status a charge can be in, as payonce sees it. A boleto paid at a bank stays "pending"
# until the PSP confirms it; a partly refunded charge was still captured.
_STATES = {
    "pending": TradeState.OPEN,
    "paid": TradeState.PAID,
    "partially_refunded": TradeState.PAID,
    "refunded": TradeState.REFUNDED,
    "expired": TradeState.CLOSED,
}
# Answers that are a definite "no" (bad request, wrong state, conflicting reuse, bad key).
_REFUSALS = {400, 401, 403, 404, 409, 422}


@dataclass(frozen=True)
class BoletoSettings:
    api_url: str  # the API root, e.g. https://psp.example/boleto/v1
    api_key: str = field(repr=False)
    account_id: str
    webhook_secret: str = field(repr=False)
    notify_url: str
    timeout_s: float = 15.0


def due_date_for(pay_deadline: datetime, now: datetime) -> date:
    """The voucher's due date: the São Paulo date of the order's deadline, never before today.

    The voucher stays payable to the end of that day, or of the next business day when it is a
    weekend or holiday: possibly after the order's deadline (see the module's notes).
    """
    return max(pay_deadline.astimezone(SAO_PAULO).date(), now.astimezone(SAO_PAULO).date())


class BoletoProvider:
    channel = Channel.BOLETO

    def __init__(self, settings: BoletoSettings, clock: Clock) -> None:
        self.settings = settings
        self._clock = clock
        auth = httpx.BasicAuth(settings.api_key, "")
        self._pool = ClientPool(
            lambda: httpx.AsyncClient(
                base_url=settings.api_url, auth=auth, timeout=settings.timeout_s
            )
        )

    async def aclose(self) -> None:
        await self._pool.aclose()

    @property
    def merchant_id(self) -> str:
        return self.settings.account_id

    @property
    def statement_zone(self) -> tzinfo:
        return SAO_PAULO

    def supports(self, platform: Platform, currency: str) -> bool:
        # A voucher is the same on every platform: a line to type, a barcode to scan, a page.
        return currency == CURRENCY

    # -- calls -----------------------------------------------------------------------------

    async def _call(
        self,
        what: str,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """One API call; every failure that leaves the outcome open is ProviderUnavailable."""
        try:
            response = await self._pool.client().request(method, path, json=body, params=params)
        except (httpx.ConnectError, httpx.ConnectTimeout) as error:
            # The connection was never made: nothing reached the PSP.
            raise ProviderRetryable(f"boleto {what}: {type(error).__name__}: {error}") from error
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            raise ProviderUnavailable(f"boleto {what}: {type(error).__name__}: {error}") from error
        try:
            answer = response.json()
        except ValueError as error:
            raise ProviderUnavailable(
                f"boleto {what}: HTTP {response.status_code}, not JSON"
            ) from error
        if not isinstance(answer, dict):
            raise ProviderUnavailable(f"boleto {what}: unexpected answer {answer!r}")
        status = response.status_code
        if 200 <= status < 300:
            return status, answer
        detail = f"boleto {what}: HTTP {status} {answer.get('code')} {answer.get('message')}"
        if status in _REFUSALS:
            code = answer.get("code")
            raise ProviderRejected(detail, provider_code=str(code) if code else str(status))
        raise ProviderUnavailable(detail)  # 5xx, 429 and the unexpected: ask again later

    async def create(self, request: TradeRequest) -> CreatedTrade:
        """Issue the voucher; a retry after a time-out gets the same one (same ``code``)."""
        if request.amount.currency != CURRENCY:
            raise ProviderRejected(f"boleto takes BRL, not {request.amount.currency}")
        due = due_date_for(request.pay_deadline, self._clock.now())
        _, charge = await self._call(
            "create",
            "POST",
            "/charges",
            body={
                "code": request.out_trade_no,
                "amount": request.amount.amount,
                "currency": CURRENCY,
                "payment_method": "boleto",
                "due_date": due.isoformat(),
                "description": request.subject[:256],
                "notification_url": self.settings.notify_url,
            },
        )
        snapshot = self._snapshot(charge, request.out_trade_no)
        if charge.get("status") != "pending":
            raise ProviderRejected(
                f"boleto charge {request.out_trade_no} is {charge.get('status')}, not payable",
                provider_code="charge_not_pending",
            )
        return CreatedTrade(self._voucher(charge), snapshot.provider_trade_no)

    def _voucher(self, charge: Mapping[str, Any]) -> Action:
        voucher = charge.get("boleto")
        if not isinstance(voucher, dict):
            raise ProviderUnavailable(f"boleto: no voucher in {charge}")
        try:
            fields = {
                "digitable_line": _text(voucher, "digitable_line"),
                "barcode": _text(voucher, "barcode"),
                "due_date": date.fromisoformat(_text(voucher, "due_date")).isoformat(),
                "voucher_url": _text(voucher, "url"),
            }
            # The end of the last payable day, in the PSP's own words (it knows the holidays).
            expires = datetime.fromisoformat(_text(voucher, "payable_until"))
        except (KeyError, ValueError) as error:
            raise ProviderUnavailable(f"boleto: no usable voucher in {charge}") from error
        if expires.tzinfo is None:
            raise ProviderUnavailable(f"boleto: payable_until without a zone in {charge}")
        return Action(ActionType.VOUCHER, fields, expires)

    def _snapshot(self, charge: Mapping[str, Any], out_trade_no: str) -> TradeSnapshot:
        if charge.get("code") != out_trade_no:
            raise ProviderUnavailable(f"boleto: answer about {charge.get('code')}, not ours")
        state = _STATES.get(str(charge.get("status")))
        if state is None:
            raise ProviderUnavailable(f"boleto: unknown charge status {charge.get('status')}")
        try:
            amount = _charge_amount(charge)
        except (KeyError, InvalidMoney) as error:
            raise ProviderUnavailable(f"boleto: bad amount in {charge}") from error
        try:
            paid_at = _paid_at(charge)
        except ValueError as error:
            raise ProviderUnavailable(f"boleto: bad paid_at in {charge}") from error
        charge_id = charge.get("id")
        return TradeSnapshot(state, str(charge_id) if charge_id else None, amount, paid_at)

    async def _find(self, out_trade_no: str) -> dict[str, Any] | None:
        _, listed = await self._call("query", "GET", "/charges", params={"code": out_trade_no})
        data = listed.get("data")
        if not isinstance(data, list) or len(data) > 1:
            raise ProviderUnavailable(f"boleto query: unexpected list {listed}")
        if not data:
            return None
        charge = data[0]
        if not isinstance(charge, dict):
            raise ProviderUnavailable(f"boleto query: unexpected item {charge!r}")
        return charge

    async def query(
        self, out_trade_no: str, *, provider_trade_no: str | None = None
    ) -> TradeSnapshot:
        charge = await self._find(out_trade_no)
        if charge is None:
            return TradeSnapshot(TradeState.NOT_FOUND)
        return self._snapshot(charge, out_trade_no)

    async def close(
        self, out_trade_no: str, *, provider_trade_no: str | None = None
    ) -> TradeSnapshot:
        """Vouchers cannot be cancelled: an open one is refused (``charge_not_cancellable``).

        A charge that is already unpayable is reported as it is (paid, expired, refunded),
        and a reference the PSP never issued as NOT_FOUND: there is nothing anyone could pay.
        """
        charge = await self._find(out_trade_no)
        if charge is None:
            return TradeSnapshot(TradeState.NOT_FOUND)
        snapshot = self._snapshot(charge, out_trade_no)
        if snapshot.state is not TradeState.OPEN:
            return snapshot
        await self._call("close", "POST", f"/charges/{charge['id']}/cancel")
        # A PSP that did cancel it: read what it became.
        return await self.query(out_trade_no)

    async def capture(
        self, out_trade_no: str, *, provider_trade_no: str | None = None
    ) -> TradeSnapshot:
        """The PSP captures a boleto when it confirms the bank's payment: nothing to collect."""
        return await self.query(out_trade_no)

    async def refund(
        self,
        out_trade_no: str,
        refund_no: str,
        amount: Money,
        *,
        provider_trade_no: str | None = None,
    ) -> RefundResult:
        """Refund once per ``refund_no`` (the PSP's refund ``code``); the PSP moves it at once."""
        charge = await self._find(out_trade_no)
        if charge is None:
            raise ProviderRejected(f"boleto: no charge {out_trade_no}", provider_code="not_found")
        _, refund = await self._call(
            "refund",
            "POST",
            f"/charges/{charge['id']}/refunds",
            body={"code": refund_no, "amount": amount.amount},
        )
        if refund.get("code") != refund_no or not isinstance(refund.get("amount"), int):
            raise ProviderUnavailable(f"boleto refund: unexpected answer {refund}")
        return RefundResult(
            refund_no,
            Money(refund["amount"], CURRENCY),
            completed=refund.get("status") == "succeeded",
        )

    # -- statements ------------------------------------------------------------------------

    async def statement(self, day: date) -> list[StatementLine]:
        """The PSP's statement of a São Paulo day; 409 ``statement_not_ready`` while it is open."""
        try:
            _, answer = await self._call("statement", "GET", f"/statements/{day.isoformat()}")
        except ProviderRejected as refusal:
            if refusal.provider_code == "statement_not_ready":
                raise ProviderUnavailable(f"boleto statement of {day}: not ready") from refusal
            raise
        return parse_statement(answer, day, currency=CURRENCY)

    # -- webhooks --------------------------------------------------------------------------

    def named_trade(self, body: bytes) -> str | None:
        return _named_trade(body)

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> ProviderNotification:
        stamp = self._verify(headers, body)
        try:
            signed_at = datetime.fromtimestamp(stamp, UTC)
        except (OverflowError, OSError, ValueError) as error:
            raise NotificationRejected("malformed", f"timestamp {stamp}") from error
        # The PSP signs every attempt anew: an old timestamp is a replay of an earlier delivery.
        require_fresh(signed_at, self._clock.now(), what=f"signature time {stamp}")
        try:
            event = loads_strict(body)
        except ValueError as error:  # not UTF-8, not JSON, a key twice
            raise NotificationRejected("malformed", f"not JSON: {error}") from error
        if not isinstance(event, dict):
            raise NotificationRejected("malformed", "not a JSON object")
        return self._notification(event)

    def _verify(self, headers: Mapping[str, str], body: bytes) -> int:
        """The signed timestamp, once ``v1`` proves the body came from the PSP unchanged."""
        header = next(
            (value for key, value in headers.items() if key.lower() == SIGNATURE_HEADER), ""
        )
        if not header:
            raise NotificationRejected("unsigned", "no X-Boleto-Signature header")
        parts = [part.partition("=") for part in header.split(",")]
        stamps = [value.strip() for key, _, value in parts if key.strip() == "t"]
        signatures = [value.strip() for key, _, value in parts if key.strip() == "v1"]
        if not signatures:
            raise NotificationRejected("unsupported_algorithm", f"no v1 signature in {header!r}")
        if len(stamps) != 1 or not (stamps[0].isascii() and stamps[0].isdigit()):
            raise NotificationRejected("malformed", f"no timestamp in {header!r}")
        message = stamps[0].encode("ascii") + b"." + body
        expected = hmac.new(
            self.settings.webhook_secret.encode("utf-8"), message, hashlib.sha256
        ).hexdigest()
        # Several v1 values are allowed while the PSP rolls its secret: one must match.
        if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
            raise NotificationRejected("bad_signature", "v1 does not match the body")
        return int(stamps[0])

    def _notification(self, event: Mapping[str, Any]) -> ProviderNotification:
        account = event.get("account")
        account_id = account.get("id") if isinstance(account, dict) else None
        if account_id != self.settings.account_id:
            raise NotificationRejected("merchant_mismatch", f"account {account_id}")
        event_id, event_type, charge = event.get("id"), event.get("type"), event.get("data")
        if not isinstance(event_id, str) or not event_id or not isinstance(event_type, str):
            raise NotificationRejected("malformed", "no event id or type")
        # Every charge event carries the charge as it was: its status is the news, whatever
        # the event's name, so events we do not act on restate a state and are acknowledged
        # (a genuine event refused would be retried for days for nothing).
        if not event_type.startswith("charge.") or not isinstance(charge, dict):
            raise NotificationRejected("unsupported_event", f"event type {event_type}")
        state = _STATES.get(str(charge.get("status")))
        code = charge.get("code")
        if state is None or not isinstance(code, str) or not code:
            raise NotificationRejected("malformed", f"charge status {charge.get('status')}")
        if event_type == "charge.paid" and state is not TradeState.PAID:
            # The event's name and the charge it carries must tell the same story.
            raise NotificationRejected("not_success", f"charge.paid of a {charge['status']} charge")
        try:
            amount = _charge_amount(charge)
        except (KeyError, InvalidMoney) as error:
            raise NotificationRejected("amount_mismatch", f"amount in {charge}") from error
        try:
            paid_at = _paid_at(charge)
        except ValueError as error:
            raise NotificationRejected("malformed", f"paid_at {charge.get('paid_at')!r}") from error
        charge_id = charge.get("id")
        return ProviderNotification(
            channel=Channel.BOLETO,
            notify_id=event_id,
            out_trade_no=code,
            provider_trade_no=str(charge_id) if charge_id else None,
            state=state,
            amount=amount,
            merchant_id=account_id,
            paid_at=paid_at,
        )

    def acknowledge(self) -> NotificationReply:
        return NotificationReply(200, b'{"received":true}', "application/json")

    def refuse(self, reason: str) -> NotificationReply:
        body = json.dumps({"received": False, "reason": reason}).encode("utf-8")
        return NotificationReply(400, body, "application/json")


def _named_trade(body: bytes) -> str | None:
    """The charge code (our number) a refused event names, read without trusting it."""
    try:
        named = json.loads(body)["data"]["code"]
    except (ValueError, TypeError, KeyError):
        return None
    return named if isinstance(named, str) and 0 < len(named) <= 64 else None


def _text(fields: Mapping[str, Any], key: str) -> str:
    value = fields[key]
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} is not a string")
    return value


def _paid_at(charge: Mapping[str, Any]) -> datetime | None:
    """When the shopper paid at the bank (the charge's ``paid_at``), once the PSP knows it."""
    text = charge.get("paid_at")
    return None if text is None else parse_psp_time(text)


def _charge_amount(charge: Mapping[str, Any]) -> Money:
    """The charge's amount, or what was paid when a paid charge says it differs (a boleto paid
    with another amount must not match our record)."""
    amount, paid = charge["amount"], charge.get("paid_amount")
    if charge.get("status") == "paid" and paid is not None and paid != amount:
        amount = paid
    return Money(amount, str(charge["currency"]))
