"""PayPal's Transaction Search (``GET /v1/reporting/transactions``): the account's money movements.

Given ``start_date`` and ``end_date`` (ISO 8601 with an offset, at most 31 days apart), it lists
every movement whose time falls in that range, inclusive, to the second: a capture as event code
T0006 with a positive ``transaction_amount``, a merchant's refund as T1107 with a negative one
pointing at its capture (``paypal_reference_id``). ``invoice_id`` is the order's invoice;
``custom_field`` is the ``custom_id`` of the capture (the order's) or of the refund (the refund
request's). ``last_refreshed_datetime`` says up to when the data is complete (here: now, no lag).
Paged by ``page_size`` (at most 500) and ``page``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from payonce.sandbox.ledger import Ledger, Movement
from payonce.sandbox.paypal_book import PaypalBook
from payonce.sandbox.paypal_records import BUYER_PAYER_ID, CHANNEL, Order, Refund
from payonce.sandbox.paypal_wire import PaypalError, invalid_request, money, value_of

MAX_RANGE = timedelta(days=31)
MAX_PAGE_SIZE = 500
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:?\d{2})$")


def report_time(moment: datetime) -> str:
    """``2026-11-24T02:00:00+0000``: how Transaction Search writes every instant (UTC)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def _instant(query: Mapping[str, str], name: str) -> datetime:
    text = query.get(name)
    if not text:
        raise invalid_request(name, "MISSING_REQUIRED_PARAMETER", f"{name} is required.")
    if not _DATE.fullmatch(text):
        raise invalid_request(name, "INVALID_PARAMETER_SYNTAX", f"{name}: ISO 8601 with offset.")
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _positive(query: Mapping[str, str], name: str, default: int, limit: int) -> int:
    text = query.get(name, str(default))
    if not text.isdigit() or not 1 <= int(text) <= limit:
        raise invalid_request(name, "INVALID_PARAMETER_VALUE", f"{name}: 1 to {limit}.")
    return int(text)


class TransactionSearch:
    """Answers Transaction Search from the ledger and the book, for one merchant at a time."""

    def __init__(self, *, ledger: Ledger, book: PaypalBook) -> None:
        self._ledger = ledger
        self._book = book

    def search(self, merchant_id: str, query: Mapping[str, str], now: datetime) -> dict[str, Any]:
        """The answer's body; PaypalError when the request is not one PayPal takes."""
        start, end = _instant(query, "start_date"), _instant(query, "end_date")
        if end < start or end - start > MAX_RANGE:
            raise invalid_request(
                "end_date", "INVALID_PARAMETER_VALUE", "end_date: after start_date, within 31 days."
            )
        refreshed = now.replace(microsecond=0)
        if start > refreshed:
            raise PaypalError(
                400,
                "INVALID_REQUEST",
                "Request is not well-formed, syntactically incorrect, or violates schema.",
                issue="INVALID_DATE_RANGE",
                description="Data for the given start date is not available.",
            )
        size = _positive(query, "page_size", 100, MAX_PAGE_SIZE)
        page = _positive(query, "page", 1, 10**6)
        details = [
            {"transaction_info": info}
            for movement in self._ledger.movements(channel=CHANNEL)
            if start <= movement.at.replace(microsecond=0) <= end
            and (info := self._info(merchant_id, movement)) is not None
        ]
        details.sort(key=lambda detail: detail["transaction_info"]["transaction_initiation_date"])
        pages = max(1, math.ceil(len(details) / size))
        return {
            "transaction_details": details[(page - 1) * size : page * size],
            "account_number": merchant_id,
            "start_date": report_time(start),
            "end_date": report_time(end),
            "last_refreshed_datetime": report_time(refreshed),
            "page": page,
            "total_items": len(details),
            "total_pages": pages,
        }

    def _info(self, merchant_id: str, movement: Movement) -> dict[str, Any] | None:
        order = self._book.known(movement.trade_no)
        if order is None or order.terms.merchant_id != merchant_id or order.capture is None:
            return None
        capture = order.capture
        if movement.kind == "capture":
            return self._capture_info(order, movement)
        refund = capture.refunds.get(movement.reference)
        return None if refund is None else self._refund_info(order, refund)

    @staticmethod
    def _common(order: Order, at: datetime) -> dict[str, Any]:
        info: dict[str, Any] = {
            "paypal_account_id": BUYER_PAYER_ID,
            "transaction_initiation_date": report_time(at),
            "transaction_updated_date": report_time(at),
            "transaction_status": "S",
            "transaction_subject": order.terms.description,
            "protection_eligibility": "01",
        }
        if order.terms.invoice_id is not None:
            info["invoice_id"] = order.terms.invoice_id
        return info

    def _capture_info(self, order: Order, movement: Movement) -> dict[str, Any]:
        assert order.capture is not None
        capture = order.capture
        fee = capture.amount * 349 // 10000 + 49 if capture.amount > 49 else 0
        info = self._common(order, capture.at)
        info |= {
            "transaction_id": capture.id,
            "transaction_event_code": "T0006",
            "transaction_amount": money(capture.amount, capture.currency),
            "fee_amount": {
                "currency_code": capture.currency,
                "value": "-" + value_of(fee, capture.currency),
            },
        }
        if order.terms.custom_id is not None:
            info["custom_field"] = order.terms.custom_id
        return info

    def _refund_info(self, order: Order, refund: Refund) -> dict[str, Any]:
        info = self._common(order, refund.at)
        info |= {
            "transaction_id": refund.id,
            "paypal_reference_id": refund.capture_id,
            "paypal_reference_id_type": "TXN",
            "transaction_event_code": "T1107",
            "transaction_amount": {
                "currency_code": refund.currency,
                "value": "-" + value_of(refund.amount, refund.currency),
            },
        }
        if refund.custom_id is not None:
            info["custom_field"] = refund.custom_id
        return info
