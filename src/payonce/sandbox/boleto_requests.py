"""The merchant's requests to the boleto PSP: their JSON bodies, parsed and checked."""

from __future__ import annotations

import json
from datetime import date
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from payonce.sandbox.boleto_charges import ChargeTerms, Customer
from payonce.sandbox.boleto_codes import MAX_CENTAVOS
from payonce.sandbox.boleto_wire import BoletoError

_REFERENCE = r"^[A-Za-z0-9_.\-]{1,64}$"


class _CustomerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=64)
    document: str | None = Field(default=None, pattern=r"^(\d{11}|\d{14})$")


class ChargeIn(BaseModel):
    """``POST /charges``: a boleto for the merchant's reference ``code``."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=_REFERENCE)
    amount: StrictInt = Field(gt=0, le=MAX_CENTAVOS)
    currency: Literal["BRL"] = "BRL"
    payment_method: Literal["boleto"] = "boleto"
    due_date: date
    description: str = Field(default="", max_length=256)
    # Where this charge's webhooks go (the PSP's dashboard setting, given per charge here).
    notification_url: str | None = Field(
        default=None, max_length=2048, pattern=r"^https?://[^\s]+$"
    )
    customer: _CustomerIn | None = None

    def terms(self, account_id: str) -> ChargeTerms:
        customer = self.customer
        return ChargeTerms(
            account_id=account_id,
            code=self.code,
            amount=self.amount,
            due_date=self.due_date,
            description=self.description,
            notification_url=self.notification_url,
            customer=Customer(customer.name, customer.document) if customer else None,
        )


class RefundIn(BaseModel):
    """``POST /charges/{id}/refunds``: ``code`` is the merchant's refund id (one refund each)."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(pattern=_REFERENCE)
    amount: StrictInt = Field(gt=0, le=MAX_CENTAVOS)


Model = TypeVar("Model", bound=BaseModel)


def parse(model: type[Model], raw: bytes) -> Model:
    """The body as ``model``; a 422 in the PSP's own words otherwise."""
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as error:
        details = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or 'body'}: {item['msg']}"
            for item in error.errors()
        )
        raise BoletoError(422, "invalid_request", f"The request is invalid. {details}") from error


def reference_of(raw: bytes) -> str | None:
    """The ``code`` a body names, if any, for the call log (even of a refused request)."""
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    code = body.get("code") if isinstance(body, dict) else None
    return code if isinstance(code, str) else None
