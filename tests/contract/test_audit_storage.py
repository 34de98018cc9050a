"""The audit trail's storage contract: every adapter keeps an order's rows in time order, rolls
them back with their transaction, and finds the notifications of an order's payments."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from payonce.domain.channels import Channel, Platform
from payonce.domain.ids import OrderId
from payonce.domain.order import Order, OrderLine
from payonce.domain.payment import Payment
from payonce.ports.storage import AuditEntity, AuditEntry, ReceivedNotification, Storage
from tests.conftest import START


def _entry(order_id: OrderId, to_status: str, *, seconds: int = 0, **changes: object) -> AuditEntry:
    entry = AuditEntry(
        order_id=order_id,
        entity=AuditEntity.ORDER,
        entity_id=order_id,
        from_status=None,
        to_status=to_status,
        why="order created",
        cause="POST /api/orders req 1",
        at=START + timedelta(seconds=seconds),
    )
    return replace(entry, **changes)  # type: ignore[arg-type]


def _plain(entries: list[AuditEntry]) -> list[tuple[object, ...]]:
    return [
        (e.entity, e.entity_id, e.from_status, e.to_status, e.why, e.cause, e.at) for e in entries
    ]


async def test_an_order_s_rows_come_back_by_time_then_as_appended(storage: Storage) -> None:
    order, other = OrderId("ord_a"), OrderId("ord_b")
    first = _entry(order, "UNPAID")
    paid = _entry(
        order,
        "PAID",
        seconds=5,
        entity=AuditEntity.PAYMENT,
        entity_id="pay_1",
        from_status="PAYING",
        why="notification alipay N1: paid, applied to the order",
        cause="POST /api/notify/alipay req 2",
    )
    same_instant = [
        _entry(order, "PAYING", seconds=5, entity=AuditEntity.PAYMENT, entity_id="pay_1"),
        paid,
        _entry(order, "READY_FOR_SHIPMENT", seconds=5, from_status="UNPAID"),
    ]
    async with storage.transaction() as uow:
        for entry in same_instant:
            await uow.audit.append(entry)
        await uow.audit.append(first)  # appended last, happened first
        await uow.audit.append(_entry(other, "UNPAID"))
    async with storage.transaction() as uow:
        found = await uow.audit.for_order(order)
        assert await uow.audit.for_order(OrderId("ord_none")) == []
    assert _plain(found) == _plain([first, *same_instant])
    ids = [entry.id for entry in found if entry.id is not None]
    assert len(ids) == len(found)  # the store numbers them
    assert ids[1] < ids[2] < ids[3]  # at one instant: as appended
    assert found[2].at.tzinfo is not None  # aware UTC, as written


async def test_rows_of_a_rolled_back_transaction_are_not_kept(storage: Storage) -> None:
    order = OrderId("ord_rollback")
    async with storage.transaction() as uow:
        await uow.audit.append(_entry(order, "UNPAID"))

    async def crash_before_commit() -> None:
        async with storage.transaction() as uow:
            await uow.audit.append(_entry(order, "CLOSED", seconds=1, from_status="UNPAID"))
            raise RuntimeError("crash before commit")

    with pytest.raises(RuntimeError):
        await crash_before_commit()
    async with storage.transaction() as uow:
        assert [e.to_status for e in await uow.audit.for_order(order)] == ["UNPAID"]


async def test_long_reasons_are_kept(storage: Storage) -> None:
    order = OrderId("ord_long")
    why = "no answer: " + "x" * 900
    async with storage.transaction() as uow:
        await uow.audit.append(_entry(order, "UNKNOWN", why=why))
    async with storage.transaction() as uow:
        [found] = await uow.audit.for_order(order)
    assert found.why == why


async def test_the_notifications_of_payments_are_found_oldest_first(storage: Storage) -> None:
    order = Order.create(
        customer_id="c-1", currency="CNY", lines=(OrderLine("S", "Tea", 1, 1000),), now=START
    )
    payments = [
        replace(
            Payment.open_intent(
                order_id=order.id,
                channel=channel,
                platform=Platform.PC,
                amount=order.total,
                now=START,
            ),
            number=n,
        )
        for n, channel in enumerate((Channel.ALIPAY, Channel.WECHAT, Channel.PAYPAL), start=1)
    ]
    alipay, wechat, paypal = payments
    async with storage.transaction() as uow:
        await uow.orders.add(order)
        for payment in payments:
            await uow.payments.add(replace(payment, closable=False))
        later = START + timedelta(seconds=30)
        await uow.notifications.record("wechat", "W1", payment_id=wechat.id, now=later)
        await uow.notifications.record(
            "alipay", "A1", payment_id=alipay.id, now=START, note="conflict: PAID → CLOSED"
        )
        await uow.notifications.record("paypal", "P1", payment_id=paypal.id, now=START)
        # A repeat keeps the first delivery's time.
        await uow.notifications.record(
            "wechat", "W1", payment_id=wechat.id, now=later + timedelta(seconds=1)
        )
    async with storage.transaction() as uow:
        found = await uow.notifications.for_payments([alipay.id, wechat.id])
        assert await uow.notifications.for_payments([]) == []
    assert found == [
        ReceivedNotification("alipay", "A1", alipay.id, START, "conflict: PAID → CLOSED"),
        ReceivedNotification("wechat", "W1", wechat.id, later, None),
    ]
