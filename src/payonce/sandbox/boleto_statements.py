"""The boleto PSP's daily statement: ``GET /statements/{date}``, the account's money movements.

A São Paulo day is stated once it has ended (before, 409 ``statement_not_ready``). Each entry is
one movement: a ``payment`` (the clearing confirmed a bank payment; the PSP captured it) or a
``refund``, with the charge it belongs to, the merchant's reference (``code``), the refund's
code for refunds, centavos and the instant it moved. Same shape as the PSP's other lists:
``{"data": [...], "paging": {"total": n}}``.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from typing import Any

from payonce.domain.bank_days import SAO_PAULO
from payonce.sandbox.boleto_book import BoletoBook
from payonce.sandbox.boleto_charges import CHANNEL, iso
from payonce.sandbox.boleto_wire import BoletoError
from payonce.sandbox.ledger import Ledger, Movement, day_ended


def parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as error:
        raise BoletoError(422, "invalid_request", f"{text} is not a date (YYYY-MM-DD).") from error


def statement_json(
    ledger: Ledger, book: BoletoBook, account_id: str, day: date, now: datetime
) -> dict[str, Any]:
    """The account's statement of a São Paulo day; 409 while the day is still open."""
    if not day_ended(day, SAO_PAULO, now):
        raise BoletoError(
            409, "statement_not_ready", f"The statement of {day} is ready once the day has ended."
        )
    entries = [
        _entry(movement)
        for movement in ledger.on_day(channel=CHANNEL, day=day, tz=SAO_PAULO)
        if (charge := book.lookup(movement.trade_no)) is not None
        and charge.terms.account_id == account_id
    ]
    return {
        "date": day.isoformat(),
        "timezone": SAO_PAULO.key,
        "data": entries,
        "paging": {"total": len(entries)},
    }


def _entry(movement: Movement) -> dict[str, Any]:
    refund = movement.kind == "refund"
    digest = hashlib.sha256(
        f"{movement.trade_no}|{movement.kind}|{movement.reference}".encode()
    ).hexdigest()[:16]
    return {
        "id": "bo_" + digest,
        "type": "refund" if refund else "payment",
        "charge_id": movement.trade_no,
        "code": movement.out_trade_no,
        "refund_code": movement.reference if refund else None,
        "amount": movement.amount,
        "currency": movement.currency,
        "created_at": iso(movement.at),
    }
