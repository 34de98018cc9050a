"""The audit trail: every status change of an order, a payment or a refund leaves one row (what,
from, to, why, and which request or job), written with the change; a repeat leaves none."""

from __future__ import annotations

from datetime import timedelta

import pytest

from payonce.adapters.clock import AdjustableClock
from payonce.domain.channels import Channel, Platform
from payonce.domain.ids import OrderId
from payonce.domain.order import OrderLine, OrderStatus
from payonce.domain.outcomes import TradeCaptured, TradeOpened
from payonce.domain.payment import Action, ActionType, Payment
from payonce.domain.refund import Refund, RefundReason
from payonce.errors import StaleVersion
from payonce.ports.storage import AuditEntity
from payonce.service import audit, outbox
from payonce.service.context import Deps
from payonce.service.order_inbox import OrderInbox
from payonce.service.orders import create_order
from payonce.service.provenance import caused_by, current_cause
from payonce.service.recording import insert_intent, record
from tests.builders import memory_deps

Row = tuple[str, str | None, str, str, str]


@pytest.fixture
def deps(clock: AdjustableClock) -> Deps:
    built = memory_deps(clock)
    built.consumers = (OrderInbox(built),)
    return built


async def _rows(deps: Deps, order_id: OrderId) -> list[Row]:
    async with deps.storage.transaction() as uow:
        found = await uow.audit.for_order(order_id)
    return [(e.entity.value, e.from_status, e.to_status, e.why, e.cause) for e in found]


async def _opened(deps: Deps) -> tuple[OrderId, Payment]:
    with caused_by("POST /api/orders req 1"):
        order = await create_order(
            deps, customer_id="c-1", currency="CNY", lines=(OrderLine("S", "Tea", 1, 1000),)
        )
    intent = Payment.open_intent(
        order_id=order.id,
        channel=Channel.ALIPAY,
        platform=Platform.PC,
        amount=order.total,
        now=deps.clock.now(),
    )
    with caused_by("POST /api/orders/x/payments req 2"):
        async with deps.locks.hold(f"order:{order.id}", ttl_s=30, wait_s=1) as lease:
            intent = await insert_intent(deps, intent, lease, seen=order)
            qr = Action(ActionType.QR_CODE, {"qr_code": "https://qr/1"})
            await record(deps, intent.id, TradeOpened(qr, "T1"), lease=lease)
    return order.id, intent


def test_the_cause_is_unknown_unless_named_and_restored_after() -> None:
    assert current_cause() == "unknown"
    with caused_by("job poll"):
        with caused_by("job relay"):
            assert current_cause() == "job relay"
        assert current_cause() == "job poll"
    assert current_cause() == "unknown"


async def test_a_paid_order_has_each_transition_once_with_its_cause(deps: Deps) -> None:
    order_id, payment = await _opened(deps)
    notification = ("alipay", "2026112400001")
    with caused_by("POST /api/notify/alipay req 3"):
        for _ in range(2):  # the provider repeats its notification: nothing new the second time
            await record(deps, payment.id, TradeCaptured("T1"), notification=notification)
    with caused_by("job relay"):
        await outbox.deliver_due(deps)  # already delivered inline: nothing more to apply
    rows = await _rows(deps, order_id)
    async with deps.storage.transaction() as uow:
        [event] = await uow.outbox.search(undelivered_only=False, limit=5, order_id=order_id)
    assert rows == [
        ("order", None, "UNPAID", "order created", "POST /api/orders req 1"),
        (
            "payment",
            None,
            "UNPAID",
            "intent written: alipay pc",
            "POST /api/orders/x/payments req 2",
        ),
        (
            "payment",
            "UNPAID",
            "PAYING",
            "trade opened at the provider",
            "POST /api/orders/x/payments req 2",
        ),
        (
            "payment",
            "PAYING",
            "PAID",
            "notification alipay 2026112400001: paid, applied to the order",
            "POST /api/notify/alipay req 3",
        ),
        (
            "order",
            "UNPAID",
            "READY_FOR_SHIPMENT",
            f"payment.succeeded {event.event.id}: paid by {payment.id}",
            "POST /api/notify/alipay req 3",  # delivered at once, inside the notification
        ),
    ]
    async with deps.storage.transaction() as uow:
        entries = await uow.audit.for_order(order_id)
    assert [e.entity_id for e in entries] == [
        order_id,
        payment.id,
        payment.id,
        payment.id,
        order_id,
    ]


async def test_a_change_rolled_back_leaves_no_row(deps: Deps, clock: AdjustableClock) -> None:
    order_id, _ = await _opened(deps)
    before = await _rows(deps, order_id)
    async with deps.storage.transaction() as uow:
        order = await uow.orders.get(order_id)
    assert order is not None

    async def close_on_a_stale_version() -> None:
        async with deps.storage.transaction() as uow:
            closed = order.moved_to(OrderStatus.CLOSED, now=clock.now())
            await audit.moved(uow, order, closed, why="expired", now=clock.now())
            await uow.orders.update(closed, expected_version=order.version - 1)

    with pytest.raises(StaleVersion):
        await close_on_a_stale_version()
    assert await _rows(deps, order_id) == before


async def test_a_refund_s_rows_follow_its_status_only(deps: Deps, clock: AdjustableClock) -> None:
    order_id, payment = await _opened(deps)
    refund = Refund.of_extra_capture(payment, RefundReason.DUPLICATE, clock.now())
    clock.advance(timedelta(seconds=3))
    with caused_by("job relay"):
        async with deps.storage.transaction() as uow:
            await audit.moved(uow, None, refund, why="extra capture", now=refund.requested_at)
            done = refund.succeeded(clock.now())
            await audit.moved(uow, refund, done, why="confirmed", now=clock.now())
            await audit.moved(uow, done, done.succeeded(clock.now()), why="again", now=clock.now())
    async with deps.storage.transaction() as uow:
        rows = [e for e in await uow.audit.for_order(order_id) if e.entity is AuditEntity.REFUND]
    assert [(e.entity_id, e.from_status, e.to_status, e.why, e.cause) for e in rows] == [
        (refund.refund_no, None, "REQUESTED", "extra capture", "job relay"),
        (refund.refund_no, "REQUESTED", "SUCCEEDED", "confirmed", "job relay"),
    ]
