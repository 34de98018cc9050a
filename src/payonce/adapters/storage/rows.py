"""Mapping between domain objects and SQL rows, shared by every SQL backend."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import RowMapping

from payonce.domain.channels import Channel, Platform
from payonce.domain.events import Event, Topic
from payonce.domain.ids import EventId, OrderId, PaymentId
from payonce.domain.money import Money
from payonce.domain.order import Order, OrderLine, OrderStatus
from payonce.domain.payment import Action, Payment, PaymentStatus
from payonce.domain.refund import Refund, RefundReason, RefundStatus
from payonce.ports.storage import (
    AuditEntity,
    AuditEntry,
    IdempotencyRecord,
    IdempotencyState,
    OutboxEntry,
    PollJob,
)


def order_to_row(order: Order) -> dict[str, Any]:
    return {
        "id": order.id,
        "customer_id": order.customer_id,
        "currency": order.total.currency,
        "amount": order.total.amount,
        "lines": json.dumps(
            [
                {
                    "sku": ln.sku,
                    "name": ln.name,
                    "quantity": ln.quantity,
                    "unit_amount": ln.unit_amount,
                }
                for ln in order.lines
            ]
        ),
        "status": order.status.value,
        "version": order.version,
        "expires_at": order.expires_at,
        "client_secret": order.client_secret,
        "paid_payment_id": order.paid_payment_id,
        "created_at": order.created_at,
        "updated_at": order.updated_at,
    }


def order_from_row(row: RowMapping) -> Order:
    return Order(
        id=OrderId(row["id"]),
        customer_id=row["customer_id"],
        total=Money(row["amount"], row["currency"]),
        lines=tuple(OrderLine(**line) for line in json.loads(row["lines"])),
        status=OrderStatus(row["status"]),
        version=row["version"],
        expires_at=row["expires_at"],
        client_secret=row["client_secret"],
        paid_payment_id=PaymentId(row["paid_payment_id"]) if row["paid_payment_id"] else None,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def payment_to_row(payment: Payment) -> dict[str, Any]:
    return {
        "id": payment.id,
        "order_id": payment.order_id,
        "number": payment.number,
        "channel": payment.channel.value,
        "platform": payment.platform.value,
        "currency": payment.amount.currency,
        "amount": payment.amount.amount,
        "out_trade_no": payment.out_trade_no,
        "status": payment.status.value,
        "version": payment.version,
        "closable": payment.closable,
        "applied": payment.applied,
        "action": payment.action.to_json() if payment.action else None,
        "provider_trade_no": payment.provider_trade_no,
        "last_error": payment.last_error,
        "created_at": payment.created_at,
        "updated_at": payment.updated_at,
        "paid_at": payment.paid_at,
    }


def payment_from_row(row: RowMapping) -> Payment:
    return Payment(
        id=PaymentId(row["id"]),
        order_id=OrderId(row["order_id"]),
        number=row["number"],
        channel=Channel(row["channel"]),
        platform=Platform(row["platform"]),
        amount=Money(row["amount"], row["currency"]),
        out_trade_no=row["out_trade_no"],
        status=PaymentStatus(row["status"]),
        version=row["version"],
        closable=bool(row["closable"]),
        applied=bool(row["applied"]),
        action=Action.from_json(row["action"]) if row["action"] else None,
        provider_trade_no=row["provider_trade_no"],
        last_error=row["last_error"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        paid_at=row["paid_at"],
    )


def event_to_row(event: Event) -> dict[str, Any]:
    return {
        "event_id": event.id,
        "topic": event.topic.value,
        "order_id": event.order_id,
        "payment_id": event.payment_id,
        "payload": json.dumps(event.payload, sort_keys=True),
        "occurred_at": event.occurred_at,
    }


def outbox_from_row(row: RowMapping) -> OutboxEntry:
    return OutboxEntry(
        event=Event(
            id=EventId(row["event_id"]),
            topic=Topic(row["topic"]),
            order_id=OrderId(row["order_id"]),
            payment_id=PaymentId(row["payment_id"]),
            payload=json.loads(row["payload"]),
            occurred_at=row["occurred_at"],
        ),
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        delivered_at=row["delivered_at"],
        last_error=row["last_error"],
    )


def idempotency_to_row(record: IdempotencyRecord) -> dict[str, Any]:
    return {
        "caller": record.caller,
        "key": record.key,
        "fingerprint": record.fingerprint,
        "state": record.state.value,
        "locked_until": record.locked_until,
        "expires_at": record.expires_at,
        "response_status": record.response_status,
        "response_body": record.response_body,
        "response_type": record.response_type,
    }


def idempotency_from_row(row: RowMapping) -> IdempotencyRecord:
    return IdempotencyRecord(
        caller=row["caller"],
        key=row["key"],
        fingerprint=row["fingerprint"],
        state=IdempotencyState(row["state"]),
        locked_until=row["locked_until"],
        expires_at=row["expires_at"],
        response_status=row["response_status"],
        response_body=bytes(row["response_body"]) if row["response_body"] is not None else None,
        response_type=row["response_type"],
    )


def poll_job_from_row(row: RowMapping) -> PollJob:
    return PollJob(
        payment_id=PaymentId(row["payment_id"]),
        order_id=OrderId(row["order_id"]),
        due_at=row["due_at"],
        attempts=row["attempts"],
    )


def refund_to_row(refund: Refund) -> dict[str, Any]:
    return {
        "refund_no": refund.refund_no,
        "payment_id": refund.payment_id,
        "order_id": refund.order_id,
        "currency": refund.amount.currency,
        "amount": refund.amount.amount,
        "reason": refund.reason.value,
        "status": refund.status.value,
        "requested_at": refund.requested_at,
        "completed_at": refund.completed_at,
    }


def refund_from_row(row: RowMapping) -> Refund:
    return Refund(
        refund_no=row["refund_no"],
        payment_id=PaymentId(row["payment_id"]),
        order_id=OrderId(row["order_id"]),
        amount=Money(row["amount"], row["currency"]),
        reason=RefundReason(row["reason"]),
        status=RefundStatus(row["status"]),
        requested_at=row["requested_at"],
        completed_at=row["completed_at"],
    )


def audit_to_row(entry: AuditEntry) -> dict[str, Any]:
    return {
        "order_id": entry.order_id,
        "entity": entry.entity.value,
        "entity_id": entry.entity_id,
        "from_status": entry.from_status,
        "to_status": entry.to_status,
        "why": entry.why[:1000],
        "cause": entry.cause[:500],
        "at": entry.at,
    }


def audit_from_row(row: RowMapping) -> AuditEntry:
    return AuditEntry(
        order_id=OrderId(row["order_id"]),
        entity=AuditEntity(row["entity"]),
        entity_id=row["entity_id"],
        from_status=row["from_status"],
        to_status=row["to_status"],
        why=row["why"],
        cause=row["cause"],
        at=row["at"],
        id=row["id"],
    )
