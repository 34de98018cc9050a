"""The PayPal channel over its REST API (Orders v2) with httpx: create, query, capture, refund.

PayPal has no lookup by our invoice number, and the port names a trade by ``out_trade_no``
only. So every call that needs the order finds it the way PayPal's idempotency allows: it sends
the create again with the same ``PayPal-Request-Id`` (derived from ``out_trade_no``), and PayPal
answers the order that id made, as it is now. That lookup carries no purchase unit, so it can
only replay: when PayPal never made (or no longer remembers) the order, it refuses the body as
incomplete and the adapter answers NOT_FOUND, creating nothing. PayPal keeps a create's request
id for 6 hours by default (72 hours on request); beyond that an order cannot be found again.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from payonce.adapters.providers.paypal_http import (
    PaypalRefusal,
    PaypalRest,
    PaypalSettings,
    parse_paypal_time,
)
from payonce.adapters.providers.paypal_report import report_page
from payonce.adapters.providers.paypal_webhooks import WebhookVerifier, named_trade
from payonce.domain.channels import Channel, Platform
from payonce.domain.money import InvalidMoney, Money
from payonce.domain.payment import Action, ActionType
from payonce.errors import ProviderRejected, ProviderUnavailable
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

__all__ = ["PaypalProvider", "PaypalSettings"]

ORDERS = "/v2/checkout/orders"
# Currencies with two decimals that PayPal takes (JPY, with none, is left out on purpose);
# CNY only on an in-country (China) account, which a shop also taking Alipay would have.
CURRENCIES = frozenset({"USD", "EUR", "GBP", "BRL", "HKD", "CNY"})
# The buyer can approve an order for three hours after it is created.
APPROVAL_WINDOW = timedelta(hours=3)
_OPEN = frozenset({"CREATED", "SAVED", "PAYER_ACTION_REQUIRED"})
CUSTOM_ID_LIMIT = 127
REPORT_PAGE_SIZE = 500
_APPROVE_RELS = ("payer-action", "approve")


def _create_request_id(out_trade_no: str) -> str:
    return f"payonce-order-{out_trade_no}"


def _capture_request_id(out_trade_no: str) -> str:
    return f"payonce-capture-{out_trade_no}"


def _money(data: object, what: str) -> Money:
    if not isinstance(data, dict):
        raise ProviderUnavailable(f"paypal: no amount in {what}")
    try:
        return Money.from_decimal_string(str(data["value"]), str(data["currency_code"]))
    except (KeyError, InvalidMoney) as error:
        raise ProviderUnavailable(f"paypal: bad amount {data} in {what}") from error


def _unit(order: Mapping[str, Any]) -> Mapping[str, Any]:
    units = order.get("purchase_units")
    if not isinstance(units, list) or not units or not isinstance(units[0], dict):
        raise ProviderUnavailable(f"paypal: order {order.get('id')} without a purchase unit")
    unit: Mapping[str, Any] = units[0]
    return unit


def _capture_of(order: Mapping[str, Any]) -> Mapping[str, Any] | None:
    captures = (_unit(order).get("payments") or {}).get("captures")
    if isinstance(captures, list) and captures and isinstance(captures[0], dict):
        capture: Mapping[str, Any] = captures[0]
        return capture
    return None


class PaypalProvider:
    channel = Channel.PAYPAL

    async def aclose(self) -> None:
        await self._rest.aclose()

    def __init__(self, settings: PaypalSettings, clock: Clock) -> None:
        self.settings = settings
        self._clock = clock
        self._rest = PaypalRest(settings, clock)
        self._webhooks = WebhookVerifier(
            webhook_id=settings.webhook_id,
            merchant_id=settings.merchant_id,
            cert_pem=settings.webhook_cert_pem,
            clock=clock,
            api_base=settings.api_base,
        )

    @property
    def merchant_id(self) -> str:
        return self.settings.merchant_id

    @property
    def statement_zone(self) -> tzinfo:
        return ZoneInfo(self.settings.report_zone)

    def supports(self, platform: Platform, currency: str) -> bool:
        return currency in CURRENCIES  # one redirect to PayPal serves every platform

    # -- HTTP ------------------------------------------------------------------------------

    # -- orders ----------------------------------------------------------------------------

    def _order_body(self, request: TradeRequest) -> dict[str, Any]:
        number = request.out_trade_no
        context: dict[str, Any] = {"user_action": "PAY_NOW", "shipping_preference": "NO_SHIPPING"}
        if request.return_url is not None:
            # PayPal appends ?token=<order id>&PayerID=... (or just the token on cancel); payonce's
            # pay page shows the truth either way.
            context["return_url"] = request.return_url
            context["cancel_url"] = request.return_url
        return {
            "intent": "CAPTURE",
            "purchase_units": [
                {
                    "reference_id": number,
                    "custom_id": number,
                    "invoice_id": number,
                    "description": request.subject[:127],
                    "amount": {
                        "currency_code": request.amount.currency,
                        "value": request.amount.to_decimal_string(),
                    },
                }
            ],
            "payment_source": {"paypal": {"experience_context": context}},
        }

    async def create(self, request: TradeRequest) -> CreatedTrade:
        if request.amount.currency not in CURRENCIES:
            raise ProviderRejected(f"paypal takes no {request.amount.currency} here")
        async with self._rest.connection() as client:
            order = await self._rest.send(
                client,
                "create",
                "POST",
                ORDERS,
                body=self._order_body(request),
                request_id=_create_request_id(request.out_trade_no),
            )
        self._check_ours(order, request.out_trade_no)
        if _money(_unit(order).get("amount"), "create") != request.amount:
            raise ProviderRejected(f"paypal order {order.get('id')} holds another amount")
        links = order.get("links")
        approve = next(
            (
                link.get("href")
                for rel in _APPROVE_RELS
                for link in (links if isinstance(links, list) else [])
                if isinstance(link, dict) and link.get("rel") == rel
            ),
            None,
        )
        if not isinstance(approve, str):
            # Only a replay of an order past approval lacks the link: a query will tell.
            raise ProviderUnavailable(f"paypal order {order.get('id')} has no approve link")
        fields = {"redirect_url": approve}
        if request.return_url is not None:
            fields["fallback_url"] = request.return_url
        created = _created_at(order) or self._clock.now()
        expires = min(request.pay_deadline, created + APPROVAL_WINDOW)
        return CreatedTrade(Action(ActionType.REDIRECT_URL, fields, expires), str(order["id"]))

    def _check_ours(self, order: Mapping[str, Any], out_trade_no: str) -> None:
        """The order our request id found must be ours: our number, our payee."""
        if not isinstance(order.get("id"), str) or not isinstance(order.get("status"), str):
            raise ProviderUnavailable(f"paypal: not an order: {sorted(order)}")
        unit = _unit(order)
        # Our number is on the purchase unit, and (in a capture's answer) on the capture too.
        capture = _capture_of(order) or {}
        numbers = {
            unit.get("invoice_id"),
            unit.get("custom_id"),
            capture.get("invoice_id"),
            capture.get("custom_id"),
        } - {None}
        payee = (unit.get("payee") or {}).get("merchant_id", self.merchant_id)
        if numbers != {out_trade_no} or payee != self.merchant_id:
            raise ProviderUnavailable(
                f"paypal: order {order['id']} is not {out_trade_no} of {self.merchant_id}"
            )

    async def _lookup(
        self, client: httpx.AsyncClient, out_trade_no: str, order_id: str | None
    ) -> dict[str, Any] | None:
        """The order made for ``out_trade_no``, as PayPal holds it now, or None if none is known.

        By its id when we hold it (PayPal keeps an order for years); else by replaying the
        create with its request id, which PayPal remembers for hours only (6 h by default).
        """
        if order_id is not None:
            try:
                order = await self._rest.send(client, "get", "GET", f"{ORDERS}/{order_id}")
            except PaypalRefusal as refusal:
                if refusal.status == 404:
                    return None
                raise
            self._check_ours(order, out_trade_no)
            return order
        try:
            order = await self._rest.send(
                client,
                "lookup",
                "POST",
                ORDERS,
                body={"intent": "CAPTURE"},
                request_id=_create_request_id(out_trade_no),
            )
        except PaypalRefusal as refusal:
            incomplete = refusal.status == 400 and "MISSING_REQUIRED_PARAMETER" in refusal.issues
            if incomplete or refusal.status == 404:
                return None
            raise
        self._check_ours(order, out_trade_no)
        return order

    def _snapshot(self, order: Mapping[str, Any]) -> TradeSnapshot:
        status, order_id = order["status"], str(order["id"])
        if status in _OPEN or status == "APPROVED":
            amount = _money(_unit(order).get("amount"), f"order {order_id}")
            state = TradeState.APPROVED if status == "APPROVED" else TradeState.OPEN
            return TradeSnapshot(state, order_id, amount)
        if status == "VOIDED":  # not captured in time: it can never be paid
            return TradeSnapshot(TradeState.CLOSED, order_id)
        capture = _capture_of(order) if status == "COMPLETED" else None
        if capture is None:
            raise ProviderUnavailable(f"paypal: order {order_id} is {status} without a capture")
        amount = _money(capture.get("amount"), f"capture of {order_id}")
        match capture.get("status"):
            case "COMPLETED" | "PARTIALLY_REFUNDED":
                return TradeSnapshot(TradeState.PAID, order_id, amount, _captured_at(capture))
            case "REFUNDED":
                return TradeSnapshot(TradeState.REFUNDED, order_id, amount, _captured_at(capture))
            case "PENDING":  # captured, the funds not yet received: not paid yet
                return TradeSnapshot(TradeState.OPEN, order_id, amount)
            case "DECLINED" | "FAILED":  # no money moved, and the order is spent
                return TradeSnapshot(TradeState.CLOSED, order_id)
        raise ProviderUnavailable(f"paypal: capture of {order_id} is {capture.get('status')}")

    async def query(
        self, out_trade_no: str, *, provider_trade_no: str | None = None
    ) -> TradeSnapshot:
        async with self._rest.connection() as client:
            order = await self._lookup(client, out_trade_no, provider_trade_no)
        return TradeSnapshot(TradeState.NOT_FOUND) if order is None else self._snapshot(order)

    async def close(
        self, out_trade_no: str, *, provider_trade_no: str | None = None
    ) -> TradeSnapshot:
        """PayPal cannot void an order by API: one we never capture lapses at its expiry.

        So closing is deciding never to capture (payonce captures only PAYING or UNKNOWN
        payments): CLOSED, unless it is captured already (PAID or REFUNDED).
        """
        async with self._rest.connection() as client:
            order = await self._lookup(client, out_trade_no, provider_trade_no)
        if order is None:
            return TradeSnapshot(TradeState.CLOSED)
        snapshot = self._snapshot(order)
        if snapshot.state in (TradeState.PAID, TradeState.REFUNDED):
            return snapshot
        if order["status"] == "COMPLETED":  # a capture whose funds are pending: not settled
            raise ProviderUnavailable(f"paypal: order {order['id']} has a pending capture")
        return TradeSnapshot(TradeState.CLOSED, snapshot.provider_trade_no)

    async def capture(
        self, out_trade_no: str, *, provider_trade_no: str | None = None
    ) -> TradeSnapshot:
        """Capture an approved order, idempotently (one PayPal-Request-Id per trade)."""
        async with self._rest.connection() as client:
            order = await self._lookup(client, out_trade_no, provider_trade_no)
            if order is None:
                return TradeSnapshot(TradeState.NOT_FOUND)
            if order["status"] != "APPROVED":
                return self._snapshot(order)
            try:
                captured = await self._rest.send(
                    client,
                    "capture",
                    "POST",
                    f"{ORDERS}/{order['id']}/capture",
                    body={},
                    request_id=_capture_request_id(out_trade_no),
                )
            except PaypalRefusal as refusal:
                if refusal.status != 422:
                    raise
                # Captured under another request id (ORDER_ALREADY_CAPTURED), or expired since:
                # the order says what is true now.
                again = await self._lookup(client, out_trade_no, provider_trade_no)
                if again is None or again["status"] == "APPROVED":
                    raise
                return self._snapshot(again)
        self._check_ours(captured, out_trade_no)
        return self._snapshot(captured)

    async def refund(
        self,
        out_trade_no: str,
        refund_no: str,
        amount: Money,
        *,
        provider_trade_no: str | None = None,
    ) -> RefundResult:
        """Refund part or all of the capture, once per ``refund_no`` (the PayPal-Request-Id)."""
        async with self._rest.connection() as client:
            order = await self._lookup(client, out_trade_no, provider_trade_no)
            if order is None:
                raise ProviderRejected(
                    f"paypal: no order for {out_trade_no}", provider_code="RESOURCE_NOT_FOUND"
                )
            capture = _capture_of(order)
            if capture is None:
                raise ProviderRejected(
                    f"paypal: {out_trade_no} is not captured", provider_code="ORDER_NOT_CAPTURED"
                )
            capture_id = str(capture.get("id"))
            refund = await self._rest.send(
                client,
                "refund",
                "POST",
                f"/v2/payments/captures/{capture_id}/refund",
                body={
                    "amount": {
                        "currency_code": amount.currency,
                        "value": amount.to_decimal_string(),
                    },
                    # Reports name a refund by its custom_id: ours is the refund's number.
                    **({"custom_id": refund_no} if len(refund_no) <= CUSTOM_ID_LIMIT else {}),
                },
                request_id=refund_no,
            )
        refunded = _money(refund.get("amount"), f"refund {refund.get('id')}")
        links = refund.get("links")
        up = [
            link.get("href")
            for link in (links if isinstance(links, list) else [])
            if isinstance(link, dict) and link.get("rel") == "up"
        ]
        if refunded != amount or not all(str(href).endswith(f"/{capture_id}") for href in up):
            # The request id was used before for another amount or another capture.
            raise ProviderRejected(
                f"paypal: refund {refund_no} was made before for {refunded} of another request",
                provider_code="REQUEST_ID_REUSED",
            )
        return RefundResult(refund_no, amount, completed=refund.get("status") == "COMPLETED")

    # -- statements ------------------------------------------------------------------------

    async def statement(self, day: date) -> list[StatementLine]:
        """The day's transactions (the account's time zone) from Transaction Search, all pages."""
        zone = ZoneInfo(self.settings.report_zone)
        start = datetime.combine(day, time(0), tzinfo=zone)
        end = datetime.combine(day, time(23, 59, 59), tzinfo=zone)
        if self._clock.now() <= end:
            raise ProviderUnavailable(f"paypal report of {day}: the day is not over")
        lines: list[StatementLine] = []
        page, pages = 1, 1
        async with self._rest.connection() as client:
            while page <= pages:
                answer = await self._rest.send(
                    client,
                    "report",
                    "GET",
                    "/v1/reporting/transactions",
                    params={
                        "start_date": start.strftime("%Y-%m-%dT%H:%M:%S%z"),
                        "end_date": end.strftime("%Y-%m-%dT%H:%M:%S%z"),
                        "fields": "transaction_info",
                        "page_size": str(REPORT_PAGE_SIZE),
                        "page": str(page),
                    },
                )
                found, pages = report_page(
                    answer, merchant_id=self.merchant_id, start=start, end=end
                )
                lines.extend(found)
                page += 1
        return lines

    # -- webhooks --------------------------------------------------------------------------

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> ProviderNotification:
        return self._webhooks.parse(headers, body)

    def named_trade(self, body: bytes) -> str | None:
        return named_trade(body)

    def acknowledge(self) -> NotificationReply:
        return NotificationReply(200, b"", "text/plain")

    def refuse(self, reason: str) -> NotificationReply:
        """400 makes PayPal deliver again; a genuine event we do not act on is acknowledged.

        The port lets ``parse_notification`` only return or raise, so such an event is raised
        as "ignored" after it was verified, and answered 200 here: retrying it for three days
        would change nothing.
        """
        if reason == "ignored":
            return NotificationReply(200, b"", "text/plain")
        return NotificationReply(400, b"", "text/plain")


def _captured_at(capture: Mapping[str, Any]) -> datetime:
    """When PayPal captured the money: the capture's ``create_time``."""
    try:
        return parse_paypal_time(capture.get("create_time"))
    except ValueError as error:
        raise ProviderUnavailable(f"paypal: capture {capture.get('id')} without a time") from error


def _created_at(order: Mapping[str, Any]) -> datetime | None:
    text = order.get("create_time")
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None
