"""PayPal's Transaction Search answers read into statement lines.

Each ``transaction_details[].transaction_info`` is one movement: event codes T00xx are payments
received (captures, positive ``transaction_amount``), T11xx reversals and refunds (negative); other
codes (fees, holds, transfers) move no trade's money and are left out, as are transactions not
yet successful (status other than ``S``). Our number is the ``invoice_id`` payonce gives every
order; the refund request number is the refund's ``custom_field`` (the ``custom_id`` payonce gives
every refund). The report does not name the order, so lines carry no ``provider_trade_no``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from payonce.adapters.providers.paypal_http import parse_paypal_time
from payonce.domain.money import InvalidMoney, Money
from payonce.errors import ProviderUnavailable
from payonce.ports.provider import StatementLine

log = logging.getLogger(__name__)


def report_page(
    answer: Mapping[str, Any], *, merchant_id: str, start: datetime, end: datetime
) -> tuple[list[StatementLine], int]:
    """One page's lines between ``start`` and ``end`` (inclusive), and how many pages there are.

    ProviderUnavailable when the answer is not a report of our account, or its data is not
    complete up to ``end`` yet.
    """
    if answer.get("account_number") != merchant_id:
        raise ProviderUnavailable(f"paypal report of account {answer.get('account_number')}")
    details, pages = answer.get("transaction_details"), answer.get("total_pages")
    if not isinstance(details, list) or not isinstance(pages, int) or pages < 1:
        raise ProviderUnavailable(f"paypal report: unexpected answer {sorted(answer)}")
    try:
        refreshed = parse_paypal_time(answer.get("last_refreshed_datetime"))
    except ValueError as error:
        raise ProviderUnavailable("paypal report: no last_refreshed_datetime") from error
    if refreshed < end:
        raise ProviderUnavailable(f"paypal report: complete up to {refreshed} only, not {end}")
    lines = []
    for detail in details:
        info = detail.get("transaction_info") if isinstance(detail, dict) else None
        if not isinstance(info, dict):
            raise ProviderUnavailable(f"paypal report: a detail without its info: {detail!r}")
        line = _line(info, start, end)
        if line is not None:
            lines.append(line)
    return lines, pages


def _line(info: Mapping[str, Any], start: datetime, end: datetime) -> StatementLine | None:
    code, status = str(info.get("transaction_event_code", "")), info.get("transaction_status")
    if code.startswith("T00"):
        kind = "capture"
    elif code.startswith("T11"):
        kind = "refund"
    else:
        return None
    if status != "S":  # pending, denied or reversed: no money moved (yet)
        return None
    transaction_id = info.get("transaction_id")
    amount = info.get("transaction_amount")
    try:
        at = parse_paypal_time(info.get("transaction_initiation_date"))
        if not isinstance(amount, dict):
            raise ValueError("no transaction_amount")
        value = Decimal(str(amount["value"]))
        money = Money.from_decimal_string(str(abs(value)), str(amount["currency_code"]))
    except (KeyError, ValueError, InvalidOperation, InvalidMoney) as error:
        raise ProviderUnavailable(f"paypal report: unreadable transaction {info}") from error
    if not start <= at <= end:
        raise ProviderUnavailable(f"paypal report: {transaction_id} at {at}, out of range")
    if money.amount == 0 or (value < 0) != (kind == "refund"):
        raise ProviderUnavailable(f"paypal report: {code} of {value}")
    if not isinstance(transaction_id, str) or not transaction_id:
        raise ProviderUnavailable(f"paypal report: a transaction without an id: {info}")
    out_trade_no = info.get("invoice_id")
    if not isinstance(out_trade_no, str) or not out_trade_no:
        log.warning("paypal report: %s names no invoice; not one of payonce's", transaction_id)
        return None
    custom = info.get("custom_field")
    reference = custom if kind == "refund" and isinstance(custom, str) and custom else None
    return StatementLine(
        kind="refund" if kind == "refund" else "capture",
        out_trade_no=out_trade_no,
        provider_trade_no=None,
        amount=money,
        at=at,
        reference=reference or transaction_id,
    )
