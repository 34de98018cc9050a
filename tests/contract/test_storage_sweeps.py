"""The storage contract for what the background sweeps read: expired orders, unwatched live
payments, and the refunds payonce asked for (each payment refunded at most once)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, event

from payonce.adapters.storage.engine import open_engine, sqlite_url, upgrade
from payonce.adapters.storage.sql import SqlStorage
from payonce.adapters.storage.tables import metadata
from payonce.domain.channels import Channel
from payonce.domain.order import OrderStatus
from payonce.domain.payment import PaymentStatus
from payonce.domain.refund import Refund, RefundReason, RefundStatus
from payonce.errors import StorageIntegrityError
from payonce.ports.storage import Storage
from tests.conftest import START
from tests.contract.test_storage import _payment, _saved

S = PaymentStatus


async def test_expired_orders_come_soonest_first_and_postponed_ones_wait(storage: Storage) -> None:
    first, second, paid = [await _saved(storage) for _ in range(3)]
    deadline = first.expires_at
    async with storage.transaction() as uow:
        stored_paid = await uow.orders.get(paid.id)
        assert stored_paid is not None
        await uow.orders.update(
            stored_paid.moved_to(OrderStatus.READY_FOR_SHIPMENT, now=START), expected_version=1
        )
        assert await uow.orders.expired(now=deadline - timedelta(seconds=1), limit=10) == []
        due = await uow.orders.expired(now=deadline, limit=10)
        assert {order.id for order in due} == {first.id, second.id}  # never a paid order
        assert len(await uow.orders.expired(now=deadline, limit=1)) == 1
        await uow.orders.postpone_expiry(first.id, until=deadline + timedelta(minutes=10))
    async with storage.transaction() as uow:
        assert [o.id for o in await uow.orders.expired(now=deadline, limit=10)] == [second.id]
        later = deadline + timedelta(minutes=10)
        assert {o.id for o in await uow.orders.expired(now=later, limit=10)} == {
            first.id,
            second.id,
        }


async def test_a_postponed_expiry_never_moves_earlier(storage: Storage) -> None:
    order = await _saved(storage)
    held = order.expires_at + timedelta(days=3)
    async with storage.transaction() as uow:
        await uow.orders.postpone_expiry(order.id, until=held)
        await uow.orders.postpone_expiry(order.id, until=order.expires_at + timedelta(minutes=5))
        await uow.orders.update(order.touched(START), expected_version=order.version)
        assert await uow.orders.expired(now=held - timedelta(seconds=1), limit=10) == []
        due = await uow.orders.expired(now=held, limit=10)
    assert [o.id for o in due] == [order.id]


async def test_unwatched_payments_are_live_stale_and_without_a_timely_poll(
    storage: Storage,
) -> None:
    orders = [await _saved(storage) for _ in range(5)]
    unpolled = _payment(orders[0], status=S.PAYING)
    overdue = _payment(orders[1], status=S.PAYING)
    polled = _payment(orders[2], status=S.PAYING)
    settled = _payment(orders[3], status=S.CLOSED)
    fresh = _payment(orders[4], status=S.PAYING, updated_at=START + timedelta(minutes=30))
    async with storage.transaction() as uow:
        for payment in (unpolled, overdue, polled, settled, fresh):
            await uow.payments.add(payment)
        await uow.polls.schedule(overdue.id, overdue.order_id, due_at=START, attempts=3)
        await uow.polls.schedule(
            polled.id, polled.order_id, due_at=START + timedelta(hours=1), attempts=3
        )
    async with storage.transaction() as uow:
        found = await uow.payments.unwatched(
            stale_before=START + timedelta(minutes=10),
            overdue_before=START + timedelta(minutes=5),
            limit=10,
        )
        assert {p.id for p in found} == {unpolled.id, overdue.id}
        assert (
            len(
                await uow.payments.unwatched(
                    stale_before=START + timedelta(minutes=10),
                    overdue_before=START + timedelta(minutes=5),
                    limit=1,
                )
            )
            == 1
        )
        # Batches go on from the last one taken, never from the start again.
        window = {
            "stale_before": START + timedelta(minutes=10),
            "overdue_before": START + timedelta(minutes=5),
        }
        [first] = await uow.payments.unwatched(**window, limit=1)
        [second] = await uow.payments.unwatched(
            **window, limit=5, after=(first.updated_at, first.id)
        )
        assert {first.id, second.id} == {unpolled.id, overdue.id}
        after_both = (second.updated_at, second.id)
        assert await uow.payments.unwatched(**window, limit=5, after=after_both) == []
        # A poll job that is late but within the overdue margin is still trusted.
        assert [
            p.id
            for p in await uow.payments.unwatched(
                stale_before=START + timedelta(minutes=10),
                overdue_before=START - timedelta(seconds=1),
                limit=10,
            )
        ] == [unpolled.id]


async def test_a_payment_is_refunded_at_most_once(storage: Storage) -> None:
    order = await _saved(storage)
    paid = _payment(order, status=S.PAID)
    async with storage.transaction() as uow:
        await uow.payments.add(paid)
    refund = Refund.of_extra_capture(paid, RefundReason.DUPLICATE, START)
    async with storage.transaction() as uow:
        assert await uow.refunds.add(refund) is True
        assert await uow.refunds.add(refund) is False
        other_number = replace(refund, refund_no=refund.refund_no + "X")
        assert await uow.refunds.add(other_number) is False  # the same payment, again
    done = refund.succeeded(START + timedelta(seconds=5))
    async with storage.transaction() as uow:
        await uow.refunds.update(done)
    async with storage.transaction() as uow:
        assert await uow.refunds.get(refund.refund_no) == done
        assert await uow.refunds.for_payment(paid.id) == done
        assert await uow.refunds.for_order(order.id) == [done]
        assert await uow.refunds.get("missing") is None
    assert done.status is RefundStatus.SUCCEEDED


async def test_a_refund_names_a_stored_payment(storage: Storage) -> None:
    order = await _saved(storage)
    ghost = _payment(order, status=S.PAID)
    with pytest.raises(StorageIntegrityError):
        async with storage.transaction() as uow:
            await uow.refunds.add(Refund.of_extra_capture(ghost, RefundReason.LATE, START))


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
async def test_the_migrations_build_exactly_the_declared_schema(
    database: str, request: pytest.FixtureRequest
) -> None:
    url = (
        request.getfixturevalue("postgres_url")
        if database == "postgres"
        else sqlite_url(request.getfixturevalue("tmp_path") / "schema.db")
    )
    engine = open_engine(url)
    try:
        await upgrade(engine)

        def differences(conn: Connection) -> list[object]:
            context = MigrationContext.configure(conn, opts={"compare_type": False})
            return list(compare_metadata(context, metadata))

        async with engine.connect() as conn:
            diff = await conn.run_sync(differences)
        assert diff == []
    finally:
        await engine.dispose()


async def test_payments_paid_in_a_window_of_one_channel(storage: Storage) -> None:
    orders = [await _saved(storage) for _ in range(4)]
    at = START + timedelta(hours=1)
    inside = _payment(orders[0], status=S.PAID, paid_at=at)
    edge = _payment(orders[1], status=S.PAID, paid_at=at + timedelta(hours=1))
    other_channel = _payment(orders[2], Channel.WECHAT, status=S.PAID, paid_at=at)
    unpaid = _payment(orders[3], status=S.PAYING)
    async with storage.transaction() as uow:
        for payment in (inside, edge, other_channel, unpaid):
            await uow.payments.add(payment)
    async with storage.transaction() as uow:
        found = await uow.payments.paid_between("alipay", start=at, end=at + timedelta(hours=1))
        assert found == [inside]  # the window's end is excluded
        stored = await uow.payments.get(inside.id)
    assert stored is not None
    assert stored.paid_at == at


async def test_the_sweeps_read_their_partial_indexes_on_sqlite(tmp_path: Path) -> None:
    """The sweeper and the expiry scan must never scan the tables: on SQLite a partial index
    is used only when the query names the index's values, which a bound parameter does not."""
    engine = open_engine(sqlite_url(tmp_path / "plans.db"))
    await upgrade(engine)
    storage = SqlStorage(engine)
    statements: list[tuple[str, Any]] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        statements.append((statement, parameters))

    async def plan_of(read: Callable[[Any], Awaitable[object]]) -> str:
        async with storage.transaction() as uow:
            await read(uow)
            statement, parameters = statements[-1]
            conn = uow.orders._s.conn  # type: ignore[attr-defined]
            rows = await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            return " | ".join(str(row[3]) for row in rows)

    try:
        swept = await plan_of(
            lambda uow: uow.payments.unwatched(stale_before=START, overdue_before=START, limit=9)
        )
        expired = await plan_of(lambda uow: uow.orders.expired(now=START, limit=9))
    finally:
        await storage.close()
    assert "USING INDEX ix_payments_live_changed" in swept, swept
    assert "SCAN payments" not in swept, swept
    assert "USING INDEX ix_orders_expiry_due" in expired, expired
    assert "SCAN orders" not in expired, expired
