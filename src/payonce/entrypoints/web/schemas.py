"""Request and response models of the HTTP API: strict, bounded, and the source of /openapi.json."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

from payonce.domain.channels import Channel, Platform
from payonce.domain.money import MAX_MINOR_AMOUNT, ORDER_CURRENCIES

# Text a person or a shop typed: no control characters (a NUL breaks PostgreSQL, a newline a log).
PRINTABLE = r"^[^\x00-\x1f\x7f]+$"
# Our ids are letters, digits and underscores ("ord_…", "pay_…"); anything else is found nowhere.
ID_PATTERN = r"^[0-9A-Za-z_]+$"
MAX_ID_LENGTH = 40  # the id columns' width
MAX_QUANTITY = 10_000
MAX_LINES = 100
# 100 lines x 10 000 x 10**12 = 10**18 < 2**63: no total can overflow a BIGINT before Money
# refuses it (a total above MAX_MINOR_AMOUNT is a 422 invalid_request).
MAX_UNIT_AMOUNT = MAX_MINOR_AMOUNT

OrderIdPath = Annotated[
    str, Path(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN, examples=["ord_x"])
]
PaymentIdPath = Annotated[
    str, Path(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN, examples=["pay_x"])
]


_CURRENCY_ENUM: list[JsonValue] = [*sorted(ORDER_CURRENCIES)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class OrderLineIn(_Strict):
    sku: str = Field(min_length=1, max_length=64, pattern=PRINTABLE)
    name: str = Field(min_length=1, max_length=200, pattern=PRINTABLE)
    # strict: a JSON integer, never "1999" or 19.0 read as one
    quantity: int = Field(strict=True, ge=1, le=MAX_QUANTITY)
    # 0 is a free line (a gift); the order's total is what the shopper pays.
    unit_amount: int = Field(
        strict=True, ge=0, le=MAX_UNIT_AMOUNT, description="minor units (fen, cents)"
    )


class CreateOrderIn(_Strict):
    customer_id: str = Field(min_length=1, max_length=128, pattern=PRINTABLE)
    currency: str = Field(
        examples=["CNY"],
        description="a currency at least one channel takes",
        json_schema_extra={"enum": _CURRENCY_ENUM},
    )
    lines: list[OrderLineIn] = Field(min_length=1, max_length=MAX_LINES)
    expires_in_s: int | None = Field(
        default=None,
        strict=True,
        ge=60,
        le=7 * 86400,
        description="default: the server's order TTL (30 min)",
    )

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        if value not in ORDER_CURRENCIES:
            raise ValueError(f"currency must be one of {sorted(ORDER_CURRENCIES)}")
        return value


class ApplyPaymentIn(_Strict):
    # An unknown channel is refused as 422 channel_unsupported (problems.py), as API.md says.
    channel: Channel = Field(examples=["alipay"])
    platform: Platform = Field(examples=["pc"])


class OrderLineOut(BaseModel):
    sku: str
    name: str
    quantity: int
    unit_amount: int


class OrderOut(BaseModel):
    id: str
    status: Literal["UNPAID", "READY_FOR_SHIPMENT", "CLOSED"]
    amount: int
    currency: str
    customer_id: str
    lines: list[OrderLineOut]
    expires_at: str
    status_version: int
    paid_payment_id: str | None
    created_at: str
    client_secret: str | None = Field(
        default=None, description="only for the shop backend (API key) caller"
    )


class ActionOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: Literal["qr_code", "launch_url", "app_order", "redirect_url", "voucher"]
    expires_at: str | None = None


class RefundOut(BaseModel):
    refund_no: str
    reason: Literal["duplicate", "late"]
    status: Literal["REQUESTED", "SUCCEEDED"]
    amount: int
    currency: str
    requested_at: str
    completed_at: str | None


class PaymentOut(BaseModel):
    id: str
    order_id: str
    channel: str
    platform: str
    status: Literal[
        "UNPAID",
        "PAYING",
        "UNKNOWN",
        "PAID",
        "FAILED",
        "CLOSING",
        "CLOSED",
        "REFUNDING",
        "REFUNDED",
    ]
    applied: bool
    amount: int
    currency: str
    out_trade_no: str
    status_version: int
    action: ActionOut | None
    created_at: str
    updated_at: str
    # In an order's payment list: the refund of an extra capture, when one was made.
    refund: RefundOut | None = None


class PaymentListOut(BaseModel):
    payments: list[PaymentOut]


class PaymentOptionOut(BaseModel):
    channel: str
    platforms: list[Literal["pc", "wap", "app"]]


class PaymentOptionsOut(BaseModel):
    options: list[PaymentOptionOut]


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class HealthOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: Literal["ok"]


class Problem(BaseModel):
    """An RFC 9457 problem; ``code`` is the stable, machine-readable part."""

    type: str = "about:blank"
    title: str
    status: int
    code: str
    detail: str | None = None
    errors: list[FieldError] | None = Field(default=None, description="422 invalid_request only")


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema with its ``$defs`` written in place: for response bodies that
    FastAPI does not register as components (those of another media type than the route's)."""
    schema = model.model_json_schema()
    defs: dict[str, Any] = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return resolve(defs[str(node["$ref"]).rsplit("/", 1)[-1]])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(value) for value in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved
