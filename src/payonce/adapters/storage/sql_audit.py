"""The SQL audit trail: every status change of an order, its payments and refunds, appended."""

from __future__ import annotations

from sqlalchemy import select

from payonce.adapters.storage import rows
from payonce.adapters.storage.session import Session
from payonce.adapters.storage.tables import audit_trail
from payonce.domain.ids import OrderId
from payonce.ports.storage import AuditEntry


class SqlAuditTrail:
    def __init__(self, session: Session) -> None:
        self._s = session

    async def append(self, entry: AuditEntry) -> None:
        await self._s.execute(audit_trail.insert().values(**rows.audit_to_row(entry)))

    async def for_order(self, order_id: OrderId) -> list[AuditEntry]:
        query = (
            select(audit_trail)
            .where(audit_trail.c.order_id == order_id)
            .order_by(audit_trail.c.at, audit_trail.c.id)
        )
        return [rows.audit_from_row(row) for row in (await self._s.execute(query)).mappings()]
