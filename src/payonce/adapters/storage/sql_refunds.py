"""The SQL repository of refunds payonce asked providers for."""

from __future__ import annotations

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.dialects import postgresql, sqlite

from payonce.adapters.storage import rows
from payonce.adapters.storage.session import Session
from payonce.adapters.storage.tables import refunds
from payonce.domain.ids import OrderId, PaymentId
from payonce.domain.refund import Refund


class SqlRefunds:
    def __init__(self, session: Session) -> None:
        self._s = session

    async def add(self, refund: Refund) -> bool:
        # Any conflict (this number, or another refund of this payment) means "recorded before".
        dialect_insert = postgresql.insert if self._s.dialect == "postgresql" else sqlite.insert
        statement = (
            dialect_insert(refunds)
            .values(**rows.refund_to_row(refund))
            .on_conflict_do_nothing()
            .returning(refunds.c.refund_no)
        )
        return (await self._s.execute(statement)).first() is not None

    async def _where(self, *where: ColumnElement[bool]) -> list[Refund]:
        query = select(refunds).where(*where).order_by(refunds.c.requested_at, refunds.c.refund_no)
        return [rows.refund_from_row(row) for row in (await self._s.execute(query)).mappings()]

    async def get(self, refund_no: str) -> Refund | None:
        found = await self._where(refunds.c.refund_no == refund_no)
        return found[0] if found else None

    async def for_payment(self, payment_id: PaymentId) -> Refund | None:
        found = await self._where(refunds.c.payment_id == payment_id)
        return found[0] if found else None

    async def for_order(self, order_id: OrderId) -> list[Refund]:
        return await self._where(refunds.c.order_id == order_id)

    async def update(self, refund: Refund) -> None:
        await self._s.execute(
            update(refunds)
            .where(refunds.c.refund_no == refund.refund_no)
            .values(**rows.refund_to_row(refund))
        )
