"""Request and response models of the HTTP API: strict, bounded, and the source of /openapi.json."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from payonce.domain.money import CURRENCY_EXPONENTS, MAX_MINOR_AMOUNT


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class OrderLineIn(_Strict):
    sku: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    quantity: int = Field(ge=1, le=10_000)
    unit_amount: int = Field(ge=0, le=MAX_MINOR_AMOUNT, description="minor units (fen, cents)")


class CreateOrderIn(_Strict):
    customer_id: str = Field(min_length=1, max_length=128)
    currency: str = Field(min_length=3, max_length=3, examples=["CNY"])
    lines: list[OrderLineIn] = Field(min_length=1, max_length=100)
    expires_in_s: int | None = Field(
        default=None, ge=60, le=7 * 86400, description="default: the server's order TTL (30 min)"
    )

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        if value not in CURRENCY_EXPONENTS:
            raise ValueError(f"currency must be one of {sorted(CURRENCY_EXPONENTS)}")
        return value


class ApplyPaymentIn(_Strict):
    channel: str = Field(max_length=32, examples=["alipay"])
    platform: Literal["pc", "wap", "app"]


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


class Problem(BaseModel):
    type: str = "about:blank"
    title: str
    status: int
    code: str
    detail: str | None = None
