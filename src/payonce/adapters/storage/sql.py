"""The SQL storage adapter: repositories over SQLAlchemy Core, one connection per unit of work."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import BindParameter, bindparam, delete, exc, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from payonce.adapters.storage import rows
from payonce.adapters.storage.session import Session, integrity_error
from payonce.adapters.storage.sql_audit import SqlAuditTrail
from payonce.adapters.storage.sql_outbox import SqlOutbox
from payonce.adapters.storage.sql_refunds import SqlRefunds
from payonce.adapters.storage.tables import (
    idempotency_keys,
    inbox,
    lock_fences,
    notifications,
    orders,
    payments,
    poll_jobs,
)
from payonce.domain.ids import EventId, OrderId, PaymentId
from payonce.domain.order import Order
from payonce.domain.payment import LIVE_STATUSES, Payment
from payonce.errors import (
    FenceRejected,
    StaleVersion,
    StorageUnavailable,
)
from payonce.ports.storage import (
    IdempotencyRecord,
    IdempotencyState,
    PollJob,
    ReceivedNotification,
)

LIVE_VALUES = sorted(status.value for status in LIVE_STATUSES)


def _literal(name: str, value: object) -> BindParameter[Any]:
    """A constant written into the SQL itself: a partial index is used only by a query whose
    predicate names its values (SQLite never matches bound ones; PostgreSQL's generic plans
    neither)."""
    return bindparam(name, value, expanding=isinstance(value, list), literal_execute=True)


class _Orders:
    def __init__(self, session: Session) -> None:
        self._s = session

    async def add(self, order: Order) -> None:
        await self._s.execute(
            orders.insert().values(**rows.order_to_row(order), expiry_check_at=order.expires_at)
        )

    async def get(self, order_id: OrderId) -> Order | None:
        row = (await self._s.execute(select(orders).where(orders.c.id == order_id))).mappings()
        found = row.first()
        return rows.order_from_row(found) if found else None

    async def update(self, order: Order, *, expected_version: int) -> None:
        result = await self._s.execute(
            update(orders)
            .where(orders.c.id == order.id, orders.c.version == expected_version)
            .values(**rows.order_to_row(order))
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise StaleVersion(f"order {order.id} is no longer at version {expected_version}")

    async def expired(self, *, now: datetime, limit: int) -> list[Order]:
        query = (
            select(orders)
            .where(orders.c.status == _literal("unpaid", "UNPAID"), orders.c.expiry_check_at <= now)
            .order_by(orders.c.expiry_check_at, orders.c.id)
            .limit(limit)
        )
        if self._s.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True)  # another worker's: skipped
        return [rows.order_from_row(row) for row in (await self._s.execute(query)).mappings()]

    async def postpone_expiry(self, order_id: OrderId, *, until: datetime) -> None:
        await self._s.execute(
            update(orders)
            .where(orders.c.id == order_id, orders.c.expiry_check_at < until)
            .values(expiry_check_at=until)
        )


class _Payments:
    def __init__(self, session: Session) -> None:
        self._s = session

    async def add(self, payment: Payment) -> None:
        await self._s.execute(payments.insert().values(**rows.payment_to_row(payment)))

    async def _one(self, *where: Any) -> Payment | None:
        found = (await self._s.execute(select(payments).where(*where))).mappings().first()
        return rows.payment_from_row(found) if found else None

    async def get(self, payment_id: PaymentId) -> Payment | None:
        return await self._one(payments.c.id == payment_id)

    async def by_out_trade_no(self, out_trade_no: str) -> Payment | None:
        return await self._one(payments.c.out_trade_no == out_trade_no)

    async def for_order(self, order_id: OrderId) -> list[Payment]:
        result = await self._s.execute(
            select(payments)
            .where(payments.c.order_id == order_id)
            .order_by(payments.c.number.desc())
        )
        return [rows.payment_from_row(row) for row in result.mappings()]

    async def update(self, payment: Payment, *, expected_version: int) -> None:
        result = await self._s.execute(
            update(payments)
            .where(payments.c.id == payment.id, payments.c.version == expected_version)
            .values(**rows.payment_to_row(payment))
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise StaleVersion(f"payment {payment.id} is no longer at version {expected_version}")

    async def unwatched(
        self,
        *,
        stale_before: datetime,
        overdue_before: datetime,
        limit: int,
        after: tuple[datetime, PaymentId] | None = None,
    ) -> list[Payment]:
        job = poll_jobs.alias("job")
        query = (
            select(payments)
            .outerjoin(job, job.c.payment_id == payments.c.id)
            .where(
                payments.c.status.in_(_literal("live", LIVE_VALUES)),
                payments.c.updated_at <= stale_before,
                or_(job.c.payment_id.is_(None), job.c.due_at <= overdue_before),
            )
            .order_by(payments.c.updated_at, payments.c.id)
            .limit(limit)
        )
        if after is not None:
            changed, payment_id = after
            # A row comparison: the index's range starts right after the last one taken.
            query = query.where(
                tuple_(payments.c.updated_at, payments.c.id) > tuple_(changed, payment_id)
            )
        return [rows.payment_from_row(row) for row in (await self._s.execute(query)).mappings()]

    async def paid_between(self, channel: str, *, start: datetime, end: datetime) -> list[Payment]:
        query = (
            select(payments)
            .where(
                payments.c.channel == channel,
                payments.c.paid_at >= start,
                payments.c.paid_at < end,
            )
            .order_by(payments.c.paid_at, payments.c.id)
        )
        return [rows.payment_from_row(row) for row in (await self._s.execute(query)).mappings()]


class _Inbox:
    def __init__(self, session: Session) -> None:
        self._s = session

    async def record(self, consumer: str, event_id: EventId, *, now: datetime) -> bool:
        return await self._s.insert_ignoring_conflict(
            inbox,
            {"consumer": consumer, "event_id": event_id, "processed_at": now},
            ["consumer", "event_id"],
        )


class _Notifications:
    def __init__(self, session: Session) -> None:
        self._s = session

    async def record(
        self,
        channel: str,
        notify_id: str,
        *,
        payment_id: PaymentId,
        now: datetime,
        note: str | None = None,
    ) -> bool:
        row = {"channel": channel, "notify_id": notify_id, "payment_id": payment_id}
        if await self._s.insert_ignoring_conflict(
            notifications, {**row, "received_at": now, "note": note}, ["channel", "notify_id"]
        ):
            return True
        first = await self._s.execute(
            select(notifications.c.payment_id).where(
                notifications.c.channel == channel, notifications.c.notify_id == notify_id
            )
        )
        return bool(first.scalar_one() != payment_id)

    async def note_of(self, channel: str, notify_id: str) -> str | None:
        found = await self._s.execute(
            select(notifications.c.note).where(
                notifications.c.channel == channel, notifications.c.notify_id == notify_id
            )
        )
        note: str | None = found.scalar_one_or_none()
        return note

    async def for_payments(self, payment_ids: Sequence[PaymentId]) -> list[ReceivedNotification]:
        query = (
            select(notifications)
            .where(notifications.c.payment_id.in_(list(payment_ids)))
            .order_by(notifications.c.received_at, notifications.c.notify_id)
        )
        return [
            ReceivedNotification(
                channel=row["channel"],
                notify_id=row["notify_id"],
                payment_id=PaymentId(row["payment_id"]),
                received_at=row["received_at"],
                note=row["note"],
            )
            for row in (await self._s.execute(query)).mappings()
        ]


class _Idempotency:
    def __init__(self, session: Session) -> None:
        self._s = session

    def _key(self, caller: str, key: str) -> tuple[Any, Any]:
        return (idempotency_keys.c.caller == caller, idempotency_keys.c.key == key)

    async def get(self, caller: str, key: str) -> IdempotencyRecord | None:
        found = (
            (await self._s.execute(select(idempotency_keys).where(*self._key(caller, key))))
            .mappings()
            .first()
        )
        return rows.idempotency_from_row(found) if found else None

    async def insert(self, record: IdempotencyRecord) -> bool:
        return await self._s.insert_ignoring_conflict(
            idempotency_keys, rows.idempotency_to_row(record), ["caller", "key"]
        )

    async def take_over(
        self, record: IdempotencyRecord, *, expected_locked_until: datetime
    ) -> bool:
        result = await self._s.execute(
            update(idempotency_keys)
            .where(
                *self._key(record.caller, record.key),
                idempotency_keys.c.state == IdempotencyState.IN_FLIGHT.value,
                idempotency_keys.c.locked_until == expected_locked_until,
            )
            .values(**rows.idempotency_to_row(record))
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def _held_by(self, claim: IdempotencyRecord) -> tuple[Any, ...]:
        return (
            *self._key(claim.caller, claim.key),
            idempotency_keys.c.state == IdempotencyState.IN_FLIGHT.value,
            idempotency_keys.c.locked_until == claim.locked_until,
        )

    async def complete(
        self, claim: IdempotencyRecord, *, status: int, body: bytes, media_type: str
    ) -> bool:
        result = await self._s.execute(
            update(idempotency_keys)
            .where(*self._held_by(claim))
            .values(
                state=IdempotencyState.DONE.value,
                response_status=status,
                response_body=body,
                response_type=media_type,
            )
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def release(self, claim: IdempotencyRecord) -> None:
        await self._s.execute(delete(idempotency_keys).where(*self._held_by(claim)))

    async def delete(self, caller: str, key: str) -> None:
        await self._s.execute(delete(idempotency_keys).where(*self._key(caller, key)))


class _Fences:
    def __init__(self, session: Session) -> None:
        self._s = session

    async def check(self, key: str, token: int) -> None:
        dialect_insert = postgresql.insert if self._s.dialect == "postgresql" else sqlite.insert
        insert = dialect_insert(lock_fences).values(key=key, token=token)
        upsert = insert.on_conflict_do_update(
            index_elements=["key"],
            set_={"token": insert.excluded.token},
            where=lock_fences.c.token <= insert.excluded.token,
        ).returning(lock_fences.c.key)
        result = await self._s.execute(upsert)
        if result.first() is None:  # nothing written: a newer token already wrote
            raise FenceRejected(f"lock token {token} for {key} is older than one that wrote")


class _PollJobs:
    def __init__(self, session: Session) -> None:
        self._s = session

    async def schedule(
        self, payment_id: PaymentId, order_id: OrderId, *, due_at: datetime, attempts: int
    ) -> None:
        dialect_insert = postgresql.insert if self._s.dialect == "postgresql" else sqlite.insert
        insert = dialect_insert(poll_jobs).values(
            payment_id=payment_id, order_id=order_id, due_at=due_at, attempts=attempts
        )
        await self._s.execute(
            insert.on_conflict_do_update(
                index_elements=["payment_id"],
                set_={"due_at": insert.excluded.due_at, "attempts": insert.excluded.attempts},
            )
        )

    async def claim(self, *, now: datetime, until: datetime, limit: int) -> list[PollJob]:
        query = (
            select(poll_jobs)
            .where(poll_jobs.c.due_at <= now)
            .order_by(poll_jobs.c.due_at, poll_jobs.c.payment_id)
            .limit(limit)
        )
        if self._s.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True)  # others' jobs: skipped, not awaited
        taken = [rows.poll_job_from_row(row) for row in (await self._s.execute(query)).mappings()]
        if taken:
            await self._s.execute(
                update(poll_jobs)
                .where(poll_jobs.c.payment_id.in_([job.payment_id for job in taken]))
                .values(due_at=until)
            )
        return taken

    async def get(self, payment_id: PaymentId) -> PollJob | None:
        query = select(poll_jobs).where(poll_jobs.c.payment_id == payment_id)
        found = (await self._s.execute(query)).mappings().first()
        return rows.poll_job_from_row(found) if found else None

    async def finish(self, payment_id: PaymentId) -> None:
        await self._s.execute(delete(poll_jobs).where(poll_jobs.c.payment_id == payment_id))


class SqlUnitOfWork:
    def __init__(self, conn: AsyncConnection) -> None:
        session = Session(conn)
        self.orders = _Orders(session)
        self.payments = _Payments(session)
        self.refunds = SqlRefunds(session)
        self.outbox = SqlOutbox(session)
        self.inbox = _Inbox(session)
        self.polls = _PollJobs(session)
        self.notifications = _Notifications(session)
        self.idempotency = _Idempotency(session)
        self.fences = _Fences(session)
        self.audit = SqlAuditTrail(session)


class SqlStorage:
    """Storage on any SQLAlchemy async engine this project configures (SQLite, PostgreSQL)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqlUnitOfWork]:
        try:
            async with self.engine.connect() as conn, conn.begin():
                yield SqlUnitOfWork(conn)
        except exc.OperationalError as error:
            raise StorageUnavailable(str(error.orig).splitlines()[0]) from error
        except exc.IntegrityError as error:  # raised at commit by deferred constraints
            raise integrity_error(error) from error

    async def ping(self) -> None:
        try:
            async with self.engine.connect() as conn:
                await conn.exec_driver_sql("SELECT 1")
        except (exc.OperationalError, exc.InterfaceError, OSError) as error:
            raise StorageUnavailable(str(error)) from error

    async def close(self) -> None:
        await self.engine.dispose()
