"""The public shape of orders, payments and order events: one view for REST, WebSocket and hooks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from payonce.domain.order import Order
from payonce.domain.payment import Action, ActionType, Payment
from payonce.domain.refund import Refund


def timestamp(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def order_view(order: Order, *, include_secret: bool = False) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": order.id,
        "status": order.status.value,
        "amount": order.total.amount,
        "currency": order.total.currency,
        "customer_id": order.customer_id,
        "lines": [
            {"sku": ln.sku, "name": ln.name, "quantity": ln.quantity, "unit_amount": ln.unit_amount}
            for ln in order.lines
        ],
        "expires_at": timestamp(order.expires_at),
        "status_version": order.version,
        "paid_payment_id": order.paid_payment_id,
        "created_at": timestamp(order.created_at),
    }
    if include_secret:
        view["client_secret"] = order.client_secret
    return view


def action_view(payment: Payment, action: Action) -> dict[str, Any]:
    view: dict[str, Any] = {"type": action.type.value, **action.fields}
    if action.type in (ActionType.QR_CODE, ActionType.LAUNCH_URL):
        view["qr_svg_url"] = f"/api/payments/{payment.id}/qr.svg"
    view["expires_at"] = timestamp(action.expires_at)
    return view


def refund_view(refund: Refund) -> dict[str, Any]:
    return {
        "refund_no": refund.refund_no,
        "reason": refund.reason.value,
        "status": refund.status.value,
        "amount": refund.amount.amount,
        "currency": refund.amount.currency,
        "requested_at": timestamp(refund.requested_at),
        "completed_at": timestamp(refund.completed_at),
    }


def payment_view(payment: Payment, *, refund: Refund | None = None) -> dict[str, Any]:
    view = {
        "id": payment.id,
        "order_id": payment.order_id,
        "channel": payment.channel.value,
        "platform": payment.platform.value,
        "status": payment.status.value,
        "applied": payment.applied,
        "amount": payment.amount.amount,
        "currency": payment.amount.currency,
        "out_trade_no": payment.out_trade_no,
        "status_version": payment.version,
        "action": action_view(payment, payment.action) if payment.action else None,
        "created_at": timestamp(payment.created_at),
        "updated_at": timestamp(payment.updated_at),
    }
    if refund is not None:
        view["refund"] = refund_view(refund)
    return view


def order_event(order: Order, payment: Payment | None) -> dict[str, Any]:
    """The message a WebSocket subscriber receives on connect and on every change."""
    return {
        "order_id": order.id,
        "status": order.status.value,
        "status_version": order.version,
        "paid_payment_id": order.paid_payment_id,
        "payment": payment_view(payment) if payment else None,
    }
