"""The boleto PSP's daily statement (``GET /statements/{date}``) read into statement lines, and
the PSP's way of writing an instant.

Each entry is a ``payment`` (the PSP captured a bank payment, on the clearing's confirmation) or
a ``refund``, in centavos, stamped with the instant it moved; a payment is named by its charge
id, a refund by the refund code payonce gave it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from payonce.domain.money import InvalidMoney, Money
from payonce.errors import ProviderUnavailable
from payonce.ports.provider import StatementLine

SAO_PAULO = ZoneInfo("America/Sao_Paulo")


def parse_psp_time(text: object) -> datetime:
    """One of the PSP's instants (``2026-11-24T02:00:00Z``) as aware UTC; ValueError if not."""
    if not isinstance(text, str) or not text:
        raise ValueError(f"not a time: {text!r}")
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no zone")
    return moment.astimezone(UTC)


def parse_statement(answer: Mapping[str, Any], day: date, *, currency: str) -> list[StatementLine]:
    """The lines of the PSP's statement of ``day``; ProviderUnavailable if it is not one."""
    data, paging = answer.get("data"), answer.get("paging")
    if answer.get("date") != day.isoformat() or not isinstance(data, list):
        raise ProviderUnavailable(f"boleto statement: not the statement of {day}")
    if not isinstance(paging, dict) or paging.get("total") != len(data):
        raise ProviderUnavailable(f"boleto statement of {day}: incomplete ({paging})")
    return [_line(entry, day, currency) for entry in data]


def _line(entry: object, day: date, currency: str) -> StatementLine:
    if not isinstance(entry, dict):
        raise ProviderUnavailable(f"boleto statement: an entry {entry!r}")
    kind, charge_id, code = entry.get("type"), entry.get("charge_id"), entry.get("code")
    refund_code = entry.get("refund_code")
    try:
        at = parse_psp_time(entry.get("created_at"))
        amount = Money(entry["amount"], str(entry["currency"]))
    except (KeyError, ValueError, InvalidMoney) as error:
        raise ProviderUnavailable(f"boleto statement: unreadable entry {entry}") from error
    if at.astimezone(SAO_PAULO).date() != day:
        raise ProviderUnavailable(f"boleto statement of {day}: an entry at {at}")
    if kind not in ("payment", "refund") or amount.amount == 0 or amount.currency != currency:
        raise ProviderUnavailable(f"boleto statement: entry {entry}")
    reference = refund_code if kind == "refund" else charge_id
    if not (isinstance(charge_id, str) and isinstance(code, str) and isinstance(reference, str)):
        raise ProviderUnavailable(f"boleto statement: an entry without its numbers: {entry}")
    if not (charge_id and code and reference):
        raise ProviderUnavailable(f"boleto statement: an entry without its numbers: {entry}")
    return StatementLine(
        kind="refund" if kind == "refund" else "capture",
        out_trade_no=code,
        provider_trade_no=charge_id,
        amount=amount,
        at=at,
        reference=reference,
    )
