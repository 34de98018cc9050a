"""Typed, unguessable identifiers for orders, payments and events, and the client secret."""

from __future__ import annotations

import secrets
from typing import NewType

OrderId = NewType("OrderId", str)
PaymentId = NewType("PaymentId", str)
EventId = NewType("EventId", str)

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def _token(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def new_order_id() -> OrderId:
    return OrderId(f"ord_{_token(20)}")


def new_payment_id() -> PaymentId:
    return PaymentId(f"pay_{_token(20)}")


def new_event_id() -> EventId:
    return EventId(f"evt_{_token(20)}")


def new_out_trade_no() -> str:
    """The id a provider sees for one trade: letters and digits only, 26 characters.

    Alipay allows 64 characters, WeChat Pay 32, both [0-9A-Za-z_]; this fits every channel.
    """
    return f"PO{_token(24).upper()}"


def new_client_secret(order_id: OrderId) -> str:
    """A bearer secret for one order's browser; it names its order so lookup needs no scan."""
    return f"{order_id}_secret_{secrets.token_urlsafe(24)}"


def order_id_of_secret(client_secret: str) -> OrderId | None:
    order_part, sep, _ = client_secret.partition("_secret_")
    if not sep or not order_part.startswith("ord_"):
        return None
    return OrderId(order_part)
