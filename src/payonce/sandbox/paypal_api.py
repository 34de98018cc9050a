"""PayPal's REST API as merchants call it: OAuth tokens, orders, captures, refunds, webhooks."""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

from payonce.sandbox.call_log import GatewayCall
from payonce.sandbox.channel import SandboxContext
from payonce.sandbox.faults import CallFault, Operation
from payonce.sandbox.paypal_book import PaypalBook
from payonce.sandbox.paypal_credentials import PaypalCredentials
from payonce.sandbox.paypal_notices import Subscription
from payonce.sandbox.paypal_records import CHANNEL, Order, OrderTerms
from payonce.sandbox.paypal_reports import TransactionSearch
from payonce.sandbox.paypal_wire import (
    DebugIds,
    PaypalError,
    authentication_failure,
    capture_json,
    internal_error,
    invalid_request,
    not_found,
    order_json,
    parse_money,
    paypal_time,
    refund_json,
)

TOKEN_LIFETIME = timedelta(hours=9)  # PayPal's access tokens last 32400 s
SCOPES = (
    "https://uri.paypal.com/services/payments/payment "
    "https://uri.paypal.com/services/payments/refund "
    "https://uri.paypal.com/services/payments/orders/readwrite "
    "https://uri.paypal.com/services/notifications/webhooks "
    "https://uri.paypal.com/services/reporting/search/read"
)
_TEXT_LIMIT = 127


@dataclass
class Answer:
    """One REST answer before it goes on the wire; ``hold`` when a time-out fault struck."""

    status: int
    body: dict[str, Any]
    hold: bool = False


@dataclass
class _Call:
    """What one call touched and which fault befell it, for the call log."""

    client_id: str = ""
    fault: CallFault | None = None
    out_trade_no: str | None = None
    trade_no: str | None = None
    issue: str | None = None

    def about(self, order: Order) -> None:
        self.out_trade_no, self.trade_no = order.out_trade_no, order.id


@dataclass
class _Token:
    client_id: str
    expires_at: datetime


@dataclass
class _Tokens:
    issued: dict[str, _Token] = field(default_factory=dict)
    seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))


Work = Callable[[PaypalCredentials, _Call], Answer]


def _text(data: Mapping[str, Any], key: str, where: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= _TEXT_LIMIT:
        raise invalid_request(f"{where}/{key}", "INVALID_STRING_LENGTH", f"{key}: 1-127 chars.")
    return value


def _url(data: Mapping[str, Any], key: str, where: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise invalid_request(f"{where}/{key}", "INVALID_PARAMETER_SYNTAX", f"{key}: a URL.")
    return value


def _json_body(raw: bytes, *, required: bool) -> Any:
    if not raw.strip():
        if required:
            raise invalid_request("/", "MALFORMED_REQUEST_JSON", "The request body is empty.")
        return {}
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise invalid_request("/", "MALFORMED_REQUEST_JSON", str(error)) from error


class PaypalApi:
    """Answers every merchant REST call under the sandbox's state lock, and logs it."""

    def __init__(
        self,
        context: SandboxContext,
        *,
        apps: Mapping[str, PaypalCredentials],
        book: PaypalBook,
        subscription: Subscription,
        api: str,
        approve_url: Callable[[Order], str],
    ) -> None:
        self._clock = context.clock
        self._calls = context.calls
        self._faults = context.faults
        self._lock = context.lock
        self._apps = dict(apps)
        self._book = book
        self._subscription = subscription
        self._api = api
        self._approve_url = approve_url
        self._tokens = _Tokens()
        self._debug_ids = DebugIds(book.epoch)
        self._search = TransactionSearch(ledger=context.ledger, book=book)

    # -- plumbing --------------------------------------------------------------------------

    def error(self, error: PaypalError) -> Answer:
        return Answer(error.status, error.body(self._debug_ids.next()))

    def _authenticate(self, headers: Mapping[str, str]) -> PaypalCredentials:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        issued = self._tokens.issued.get(token) if scheme.lower() == "bearer" else None
        if issued is None or self._clock.now() >= issued.expires_at:
            raise authentication_failure()
        return self._apps[issued.client_id]

    def _roll(self, call: _Call, op: Operation) -> None:
        """Roll this call's fault: an "error" answers 500 and does nothing."""
        call.fault = self._faults.call_fault(op, CHANNEL)
        if call.fault == "error":
            raise internal_error()

    async def _run(self, method: str, headers: Mapping[str, str], work: Work) -> Answer:
        call = _Call()
        try:
            app = self._authenticate(headers)
            call.client_id = app.client_id
            async with self._lock:
                answer = work(app, call)
        except PaypalError as error:
            call.issue = error.issue or error.name
            answer = self.error(error)
        answer.hold = call.fault == "timeout"
        self._log(method, call, answer)
        return answer

    def _log(self, method: str, call: _Call, answer: Answer) -> None:
        self._calls.record(
            GatewayCall(
                channel=CHANNEL,
                method=method,
                app_id=call.client_id,
                out_trade_no=call.out_trade_no,
                trade_no=call.trade_no,
                at=self._clock.now(),
                code=str(answer.status),
                sub_code=call.issue,
                held=answer.hold,
            )
        )

    def _order_json(self, order: Order, headers: Mapping[str, str]) -> dict[str, Any]:
        full = "return=representation" in headers.get("prefer", "")
        return order_json(order, self._api, self._approve_url(order), full=full)

    # -- OAuth -----------------------------------------------------------------------------

    def token(self, headers: Mapping[str, str], raw: bytes) -> tuple[int, dict[str, Any]]:
        """Client credentials (HTTP Basic) for a bearer token, valid nine hours."""
        app = self._client(headers.get("authorization", ""))
        form = dict(parse_qsl(raw.decode("utf-8", errors="replace")))
        status: int
        body: dict[str, Any]
        if app is None:
            status = 401
            body = {"error": "invalid_client", "error_description": "Client Authentication failed"}
        elif form.get("grant_type") != "client_credentials":
            status = 400
            body = {
                "error": "unsupported_grant_type",
                "error_description": "Grant Type is NULL or not supported",
            }
        else:
            status, body = 200, self._issue(app)
        call = _Call(client_id=app.client_id if app else "", issue=body.get("error"))
        self._log("POST /v1/oauth2/token", call, Answer(status, body))
        return status, body

    def _issue(self, app: PaypalCredentials) -> dict[str, Any]:
        now = self._clock.now()
        seed = f"token|{self._book.epoch}|{next(self._tokens.seq)}|{app.client_id}"
        digest = hashlib.sha256(seed.encode()).hexdigest()
        token = f"A21AA{digest}{digest[::-1]}"
        self._tokens.issued[token] = _Token(app.client_id, now + TOKEN_LIFETIME)
        return {
            "scope": SCOPES,
            "access_token": token,
            "token_type": "Bearer",
            "app_id": "APP-" + hashlib.sha256(app.client_id.encode()).hexdigest()[:17].upper(),
            "expires_in": int(TOKEN_LIFETIME.total_seconds()),
            "nonce": f"{paypal_time(now)}{digest[:40]}",
        }

    def _client(self, authorization: str) -> PaypalCredentials | None:
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            client_id, _, secret = base64.b64decode(encoded).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        app = self._apps.get(client_id)
        return app if app is not None and app.client_secret == secret else None

    # -- orders ----------------------------------------------------------------------------

    async def create_order(self, headers: Mapping[str, str], raw: bytes) -> Answer:
        """A new order, or (same PayPal-Request-Id, while kept) the same order as it is now.

        A replay is a read, so it meets the query faults; a new order meets the create faults.
        Validation comes after the replay lookup: a body without purchase units can only replay.
        """
        request_id = headers.get("paypal-request-id") or None

        def work(app: PaypalCredentials, call: _Call) -> Answer:
            replayed = self._book.replay(app.merchant_id, request_id)
            if replayed is not None:
                call.about(replayed)
                self._roll(call, "query")
                return Answer(200, self._order_json(replayed, headers))
            terms = self._terms(app, _json_body(raw, required=True), request_id)
            call.out_trade_no = terms.out_trade_no
            self._roll(call, "create")
            order = self._book.create(terms)
            call.about(order)
            return Answer(201, self._order_json(order, headers))

        return await self._run("POST /v2/checkout/orders", headers, work)

    def _terms(self, app: PaypalCredentials, body: Any, request_id: str | None) -> OrderTerms:
        if not isinstance(body, dict):
            raise invalid_request("/", "MALFORMED_REQUEST_JSON", "The body is not an object.")
        if body.get("intent") != "CAPTURE":
            raise invalid_request("/intent", "INVALID_PARAMETER_VALUE", "intent must be CAPTURE.")
        units = body.get("purchase_units")
        if not isinstance(units, list) or not units:
            raise invalid_request(
                "/purchase_units", "MISSING_REQUIRED_PARAMETER", "purchase_units is required."
            )
        if len(units) != 1 or not isinstance(units[0], dict):
            raise invalid_request(
                "/purchase_units", "INVALID_ARRAY_MAX_ITEMS", "One purchase unit per order."
            )
        unit: dict[str, Any] = units[0]
        amount, currency = parse_money(unit.get("amount"), "/purchase_units/@reference_id/amount")
        where = "/purchase_units/@reference_id"
        source = body.get("payment_source")
        if isinstance(source, dict) and isinstance(source.get("paypal"), dict):
            context = source["paypal"].get("experience_context") or {}
            context_at = "/payment_source/paypal/experience_context"
        else:
            source = None
            context = body.get("application_context") or {}
            context_at = "/application_context"
        if not isinstance(context, dict):
            raise invalid_request(context_at, "INVALID_PARAMETER_SYNTAX", "Not an object.")
        return OrderTerms(
            merchant_id=app.merchant_id,
            client_id=app.client_id,
            request_id=request_id,
            reference_id=_text(unit, "reference_id", where) or "default",
            custom_id=_text(unit, "custom_id", where),
            invoice_id=_text(unit, "invoice_id", where),
            description=_text(unit, "description", where) or "",
            amount=amount,
            currency=currency,
            return_url=_url(context, "return_url", context_at),
            cancel_url=_url(context, "cancel_url", context_at),
            payment_source=source is not None,
        )

    async def get_order(self, headers: Mapping[str, str], order_id: str) -> Answer:
        def work(app: PaypalCredentials, call: _Call) -> Answer:
            self._roll(call, "query")
            order = self._book.order(order_id, app.merchant_id)
            call.about(order)
            return Answer(200, order_json(order, self._api, self._approve_url(order)))

        return await self._run("GET /v2/checkout/orders/{id}", headers, work)

    async def capture_order(self, headers: Mapping[str, str], order_id: str, raw: bytes) -> Answer:
        request_id = headers.get("paypal-request-id") or None

        def work(app: PaypalCredentials, call: _Call) -> Answer:
            _json_body(raw, required=False)
            order = self._book.order(order_id, app.merchant_id)
            call.about(order)
            self._roll(call, "capture")
            captured, moved = self._book.capture(order, request_id)
            body = order_json(captured, self._api, self._approve_url(captured))
            return Answer(201 if moved else 200, body)

        return await self._run("POST /v2/checkout/orders/{id}/capture", headers, work)

    # -- payments --------------------------------------------------------------------------

    async def refund_capture(
        self, headers: Mapping[str, str], capture_id: str, raw: bytes
    ) -> Answer:
        """Refund a capture (in part or in full) once per PayPal-Request-Id."""
        given_id = headers.get("paypal-request-id") or None

        def work(app: PaypalCredentials, call: _Call) -> Answer:
            body = _json_body(raw, required=False)
            if not isinstance(body, dict):
                raise invalid_request("/", "MALFORMED_REQUEST_JSON", "The body is not an object.")
            order = self._book.captured(capture_id, app.merchant_id)
            call.about(order)
            amount = currency = None
            if body.get("amount") is not None:
                amount, currency = parse_money(body["amount"], "/amount")
            custom_id, invoice_id = _text(body, "custom_id", ""), _text(body, "invoice_id", "")
            self._roll(call, "refund")
            # Without a request id every call is a new refund, as at PayPal.
            request_id = given_id or f"sandbox-{self._debug_ids.next()}"
            refund, moved = self._book.refund(
                order, request_id, amount, currency, custom_id=custom_id, invoice_id=invoice_id
            )
            if "return=representation" in headers.get("prefer", ""):
                answer = refund_json(order, refund, self._api)
            else:
                full = refund_json(order, refund, self._api)
                answer = {key: full[key] for key in ("id", "status", "links")}
            return Answer(201 if moved else 200, answer)

        return await self._run("POST /v2/payments/captures/{id}/refund", headers, work)

    async def get_capture(self, headers: Mapping[str, str], capture_id: str) -> Answer:
        def work(app: PaypalCredentials, call: _Call) -> Answer:
            self._roll(call, "query")
            order = self._book.captured(capture_id, app.merchant_id)
            call.about(order)
            assert order.capture is not None
            return Answer(200, capture_json(order, order.capture, self._api))

        return await self._run("GET /v2/payments/captures/{id}", headers, work)

    async def get_refund(self, headers: Mapping[str, str], refund_id: str) -> Answer:
        def work(app: PaypalCredentials, call: _Call) -> Answer:
            self._roll(call, "query")
            order, refund = self._book.refund_by_id(refund_id, app.merchant_id)
            call.about(order)
            return Answer(200, refund_json(order, refund, self._api))

        return await self._run("GET /v2/payments/refunds/{id}", headers, work)

    # -- reports ---------------------------------------------------------------------------

    async def transactions(self, headers: Mapping[str, str], query: Mapping[str, str]) -> Answer:
        """Transaction Search: the merchant's movements between two instants."""

        def work(app: PaypalCredentials, call: _Call) -> Answer:
            return Answer(200, self._search.search(app.merchant_id, query, self._clock.now()))

        return await self._run("GET /v1/reporting/transactions", headers, work)

    # -- webhooks --------------------------------------------------------------------------

    async def webhook(
        self, headers: Mapping[str, str], webhook_id: str, raw: bytes | None
    ) -> Answer:
        """Show (GET) or change (PATCH ``/url``, ``/event_types``) the merchant's webhook."""

        def work(app: PaypalCredentials, call: _Call) -> Answer:
            subscription = self._subscription
            if webhook_id != app.webhook_id or webhook_id != subscription.webhook_id:
                raise not_found(f"webhook {webhook_id}")
            if raw is not None:
                self._patch(subscription, _json_body(raw, required=True))
            return Answer(200, self._webhook_json(subscription))

        method = "GET" if raw is None else "PATCH"
        return await self._run(f"{method} /v1/notifications/webhooks/{{id}}", headers, work)

    @staticmethod
    def _patch(subscription: Subscription, operations: Any) -> None:
        if not isinstance(operations, list):
            raise invalid_request("/", "INVALID_PARAMETER_SYNTAX", "A JSON Patch array.")
        for operation in operations:
            if not isinstance(operation, dict) or operation.get("op") != "replace":
                raise invalid_request("/op", "INVALID_PARAMETER_VALUE", "Only replace is allowed.")
            value = operation.get("value")
            if operation.get("path") == "/url":
                subscription.url = _url({"url": value}, "url", "/value")
            elif operation.get("path") == "/event_types" and isinstance(value, list):
                subscription.event_types = [
                    str(item.get("name")) for item in value if isinstance(item, dict)
                ]
            else:
                raise invalid_request("/path", "INVALID_PARAMETER_VALUE", "Unknown path.")

    def _webhook_json(self, subscription: Subscription) -> dict[str, Any]:
        href = f"{self._api}/v1/notifications/webhooks/{subscription.webhook_id}"
        return {
            "id": subscription.webhook_id,
            "url": subscription.url,
            "event_types": [{"name": name} for name in subscription.event_types],
            "links": [
                {"href": href, "rel": "self", "method": "GET"},
                {"href": href, "rel": "update", "method": "PATCH"},
                {"href": href, "rel": "delete", "method": "DELETE"},
            ],
        }
