"""PayPal's REST wire format: amounts, times, errors, and the JSON of orders, captures, refunds."""

from __future__ import annotations

import hashlib
import itertools
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from payonce.sandbox.paypal_records import (
    APPROVABLE,
    BUYER_EMAIL,
    BUYER_PAYER_ID,
    Capture,
    Order,
    OrderStatus,
    Refund,
)

# Currencies the sandbox's PayPal takes, with their decimals (JPY has none on PayPal's wire).
CURRENCY_DECIMALS: dict[str, int] = {
    "AUD": 2,
    "BRL": 2,
    "CAD": 2,
    "CHF": 2,
    "CNY": 2,  # in-country (China) PayPal accounts only
    "EUR": 2,
    "GBP": 2,
    "HKD": 2,
    "JPY": 0,
    "SGD": 2,
    "USD": 2,
}
# Where the buyer approves an order: PayPal's ``/checkoutnow?token=<order id>``.
CHECKOUT_PATH = "/paypal/checkoutnow"
_VALUE = re.compile(r"^\d{1,10}(\.\d{1,2})?$")
MAX_VALUE = 10**12  # minor units


def approve_link(public_url: str, order_id: str) -> str:
    return f"{public_url}{CHECKOUT_PATH}?token={order_id}"


def paypal_time(moment: datetime) -> str:
    """``2026-11-24T08:00:00Z``: RFC 3339 in UTC, as every time on PayPal's wire."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def value_of(amount: int, currency: str) -> str:
    """Minor units as PayPal's ``value``: 1234 USD → ``"12.34"``, 1234 JPY → ``"1234"``."""
    decimals = CURRENCY_DECIMALS[currency]
    if decimals == 0:
        return str(amount)
    return f"{Decimal(amount).scaleb(-decimals):.{decimals}f}"


def money(amount: int, currency: str) -> dict[str, str]:
    return {"currency_code": currency, "value": value_of(amount, currency)}


class PaypalError(Exception):
    """A refusal in PayPal's shape: ``name``, ``message``, ``debug_id``, ``details[{issue}]``."""

    def __init__(
        self,
        status: int,
        name: str,
        message: str,
        *,
        issue: str | None = None,
        description: str | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(f"{status} {name} {issue or ''}".strip())
        self.status = status
        self.name = name
        self.message = message
        self.issue = issue
        self.description = description
        self.field = field

    def body(self, debug_id: str) -> dict[str, Any]:
        body: dict[str, Any] = {"name": self.name, "message": self.message, "debug_id": debug_id}
        if self.issue is not None:
            detail: dict[str, str] = {"issue": self.issue}
            if self.field is not None:
                detail["field"] = self.field
                detail["location"] = "body"
            detail["description"] = self.description or self.message
            body["details"] = [detail]
        body["links"] = [
            {
                "href": f"https://developer.paypal.com/docs/api/orders/v2/#error-{self.issue}"
                if self.issue
                else "https://developer.paypal.com/api/rest/reference/orders/v2/errors/",
                "rel": "information_link",
                "method": "GET",
            }
        ]
        return body


def invalid_request(field: str, issue: str, description: str) -> PaypalError:
    return PaypalError(
        400,
        "INVALID_REQUEST",
        "Request is not well-formed, syntactically incorrect, or violates schema.",
        issue=issue,
        description=description,
        field=field,
    )


def unprocessable(issue: str, description: str) -> PaypalError:
    return PaypalError(
        422,
        "UNPROCESSABLE_ENTITY",
        "The requested action could not be performed, semantically incorrect, or failed "
        "business validation.",
        issue=issue,
        description=description,
    )


def not_found(what: str) -> PaypalError:
    return PaypalError(
        404,
        "RESOURCE_NOT_FOUND",
        "The specified resource does not exist.",
        issue="INVALID_RESOURCE_ID",
        description=f"Specified resource ID does not exist ({what}).",
    )


def authentication_failure() -> PaypalError:
    return PaypalError(
        401,
        "AUTHENTICATION_FAILURE",
        "Authentication failed due to invalid authentication credentials or a missing "
        "Authorization header.",
    )


def internal_error() -> PaypalError:
    return PaypalError(500, "INTERNAL_SERVER_ERROR", "An internal server error has occurred.")


class DebugIds:
    """PayPal stamps every error with a ``debug_id``; here a deterministic one per answer."""

    def __init__(self, epoch: int) -> None:
        self._epoch = epoch
        self._seq = itertools.count(1)

    def next(self) -> str:
        return hashlib.sha256(f"debug|{self._epoch}|{next(self._seq)}".encode()).hexdigest()[:13]


def parse_money(data: object, field: str) -> tuple[int, str]:
    """``{"currency_code", "value"}`` as (minor units, currency); PaypalError when invalid."""
    if not isinstance(data, dict):
        raise invalid_request(field, "MISSING_REQUIRED_PARAMETER", f"{field} is required.")
    currency, value = data.get("currency_code"), data.get("value")
    if not isinstance(currency, str) or currency not in CURRENCY_DECIMALS:
        raise unprocessable("CURRENCY_NOT_SUPPORTED", f"Currency {currency!r} is not supported.")
    if not isinstance(value, str) or not _VALUE.fullmatch(value):
        raise invalid_request(f"{field}/value", "INVALID_PARAMETER_SYNTAX", "Invalid value.")
    decimals = CURRENCY_DECIMALS[currency]
    minor = Decimal(value).scaleb(decimals)
    if minor != minor.to_integral_value():
        raise unprocessable(
            "DECIMAL_PRECISION", f"{currency} takes at most {decimals} decimal places."
        )
    amount = int(minor)
    if not 0 < amount <= MAX_VALUE:
        raise unprocessable("AMOUNT_NOT_POSITIVE" if amount <= 0 else "AMOUNT_TOO_LARGE", value)
    return amount, currency


# -- resources ------------------------------------------------------------------------------


def capture_json(order: Order, capture: Capture, api: str) -> dict[str, Any]:
    """A capture as ``GET /v2/payments/captures/{id}`` and the PAYMENT.CAPTURE.* events show it."""
    terms = order.terms
    # PayPal's standard US rate, 3.49 % + 0.49 (shown to the merchant, not in the ledger).
    fee = capture.amount * 349 // 10000 + 49 if capture.amount > 49 else 0
    body: dict[str, Any] = {
        "id": capture.id,
        "status": capture.status.value,
        "amount": money(capture.amount, capture.currency),
        "final_capture": True,
        "seller_protection": {
            "status": "ELIGIBLE",
            "dispute_categories": ["ITEM_NOT_RECEIVED", "UNAUTHORIZED_TRANSACTION"],
        },
        "seller_receivable_breakdown": {
            "gross_amount": money(capture.amount, capture.currency),
            "paypal_fee": money(fee, capture.currency),
            "net_amount": money(capture.amount - fee, capture.currency),
        },
        "payee": {"merchant_id": terms.merchant_id},
        "supplementary_data": {"related_ids": {"order_id": order.id}},
        "create_time": paypal_time(capture.at),
        "update_time": paypal_time(capture.at),
        "links": [
            {"href": f"{api}/v2/payments/captures/{capture.id}", "rel": "self", "method": "GET"},
            {
                "href": f"{api}/v2/payments/captures/{capture.id}/refund",
                "rel": "refund",
                "method": "POST",
            },
            {"href": f"{api}/v2/checkout/orders/{order.id}", "rel": "up", "method": "GET"},
        ],
    }
    if terms.custom_id is not None:
        body["custom_id"] = terms.custom_id
    if terms.invoice_id is not None:
        body["invoice_id"] = terms.invoice_id
    return body


def refund_json(order: Order, refund: Refund, api: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": refund.id,
        "status": "COMPLETED",
        "amount": money(refund.amount, refund.currency),
        "seller_payable_breakdown": {
            "gross_amount": money(refund.amount, refund.currency),
            "net_amount": money(refund.amount, refund.currency),
            "total_refunded_amount": money(
                order.capture.refunded if order.capture else refund.amount, refund.currency
            ),
        },
        "payer": {"merchant_id": order.terms.merchant_id},
        "create_time": paypal_time(refund.at),
        "update_time": paypal_time(refund.at),
        "links": [
            {"href": f"{api}/v2/payments/refunds/{refund.id}", "rel": "self", "method": "GET"},
            {
                "href": f"{api}/v2/payments/captures/{refund.capture_id}",
                "rel": "up",
                "method": "GET",
            },
        ],
    }
    # The refund's own, when its request named them; else the order's.
    custom_id = refund.custom_id or order.terms.custom_id
    invoice_id = refund.invoice_id or order.terms.invoice_id
    if custom_id is not None:
        body["custom_id"] = custom_id
    if invoice_id is not None:
        body["invoice_id"] = invoice_id
    return body


def order_links(order: Order, api: str, approve_url: str) -> list[dict[str, str]]:
    """HATEOAS links: the approve link only while the buyer can approve, capture once approved."""
    self_href = f"{api}/v2/checkout/orders/{order.id}"
    links = [{"href": self_href, "rel": "self", "method": "GET"}]
    if order.status in APPROVABLE:
        links.append({"href": approve_url, "rel": order.link_rel, "method": "GET"})
    if order.status in APPROVABLE or order.status is OrderStatus.APPROVED:
        links.append({"href": self_href, "rel": "update", "method": "PATCH"})
    if order.status is OrderStatus.APPROVED:
        links.append({"href": f"{self_href}/capture", "rel": "capture", "method": "POST"})
    return links


def order_json(order: Order, api: str, approve_url: str, *, full: bool = True) -> dict[str, Any]:
    """An order as the Orders API answers it (``full``: ``Prefer: return=representation``)."""
    links = order_links(order, api, approve_url)
    if not full:
        return {"id": order.id, "status": order.status.value, "links": links}
    terms = order.terms
    unit: dict[str, Any] = {
        "reference_id": terms.reference_id,
        "amount": money(terms.amount, terms.currency),
        "payee": {"merchant_id": terms.merchant_id},
        "description": terms.description,
    }
    if terms.custom_id is not None:
        unit["custom_id"] = terms.custom_id
    if terms.invoice_id is not None:
        unit["invoice_id"] = terms.invoice_id
    if order.capture is not None:
        unit["payments"] = {"captures": [capture_json(order, order.capture, api)]}
    body: dict[str, Any] = {
        "id": order.id,
        "intent": "CAPTURE",
        "status": order.status.value,
        "purchase_units": [unit],
        "create_time": paypal_time(order.created_at),
        "links": links,
    }
    if terms.payment_source:
        source: dict[str, Any] = {}
        if order.approved_at is not None:
            source = {"email_address": BUYER_EMAIL, "account_id": BUYER_PAYER_ID}
        body["payment_source"] = {"paypal": source}
    if order.approved_at is not None:
        body["payer"] = {"email_address": BUYER_EMAIL, "payer_id": BUYER_PAYER_ID}
    if order.capture is not None:
        body["update_time"] = paypal_time(order.capture.at)
    elif order.approved_at is not None:
        body["update_time"] = paypal_time(order.approved_at)
    return body
