"""The SQL outbox: events waiting for their consumers, and each consumer's side of delivery."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from payonce.adapters.storage import rows
from payonce.adapters.storage.session import Session
from payonce.adapters.storage.tables import outbox, outbox_deliveries
from payonce.domain.events import Event, Topic
from payonce.domain.ids import EventId, OrderId
from payonce.ports.storage import ConsumerDelivery, OutboxEntry


class SqlOutbox:
    def __init__(self, session: Session) -> None:
        self._s = session

    async def add(self, event: Event, *, now: datetime) -> None:
        await self._s.execute(
            outbox.insert().values(
                **rows.event_to_row(event), attempts=0, next_attempt_at=now, delivered_at=None
            )
        )

    @staticmethod
    def _due(now: datetime, limit: int, order_id: OrderId | None) -> Select[Any]:
        query = (
            select(outbox)
            .where(outbox.c.delivered_at.is_(None), outbox.c.next_attempt_at <= now)
            .order_by(outbox.c.next_attempt_at, outbox.c.event_id)
            .limit(limit)
        )
        return query if order_id is None else query.where(outbox.c.order_id == order_id)

    async def _entries(self, query: Select[Any]) -> list[OutboxEntry]:
        """The entries ``query`` selects, each with its consumers' states (one more query)."""
        found = [rows.outbox_from_row(row) for row in (await self._s.execute(query)).mappings()]
        if not found:
            return found
        states: dict[str, list[ConsumerDelivery]] = {}
        result = await self._s.execute(
            select(outbox_deliveries)
            .where(outbox_deliveries.c.event_id.in_([entry.event.id for entry in found]))
            .order_by(outbox_deliveries.c.event_id, outbox_deliveries.c.consumer)
        )
        for row in result.mappings():
            states.setdefault(row["event_id"], []).append(
                ConsumerDelivery(
                    consumer=row["consumer"],
                    attempts=row["attempts"],
                    last_attempt_at=row["last_attempt_at"],
                    delivered_at=row["delivered_at"],
                    last_error=row["last_error"],
                )
            )
        return [replace(entry, consumers=tuple(states.get(entry.event.id, ()))) for entry in found]

    async def due(
        self, *, now: datetime, limit: int, order_id: OrderId | None = None
    ) -> list[OutboxEntry]:
        return await self._entries(self._due(now, limit, order_id))

    async def claim(
        self, *, now: datetime, until: datetime, limit: int, order_id: OrderId | None = None
    ) -> list[OutboxEntry]:
        query = self._due(now, limit, order_id)
        if self._s.dialect == "postgresql":
            # Rows another relay is taking are skipped, not waited for (SQLite: one writer).
            query = query.with_for_update(skip_locked=True)
        taken = await self._entries(query)
        if taken:
            await self._s.execute(
                update(outbox)
                .where(outbox.c.event_id.in_([entry.event.id for entry in taken]))
                .values(next_attempt_at=until)
            )
        return taken

    async def get(self, event_id: EventId, *, lock: bool = False) -> OutboxEntry | None:
        query = select(outbox).where(outbox.c.event_id == event_id)
        if lock and self._s.dialect == "postgresql":
            query = query.with_for_update()  # a replay updates this row first: it waits, or we do
        found = await self._entries(query)
        return found[0] if found else None

    async def mark_delivered(self, event_id: EventId, *, now: datetime) -> bool:
        result = await self._s.execute(
            update(outbox)
            .where(outbox.c.event_id == event_id, outbox.c.delivered_at.is_(None))
            .values(delivered_at=now, attempts=outbox.c.attempts + 1, last_error=None)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def mark_failed(
        self, event_id: EventId, *, next_attempt_at: datetime, error: str
    ) -> None:
        await self._s.execute(
            update(outbox)
            .where(outbox.c.event_id == event_id, outbox.c.delivered_at.is_(None))
            .values(
                attempts=outbox.c.attempts + 1, next_attempt_at=next_attempt_at, last_error=error
            )
        )

    async def record_consumers(
        self, event_id: EventId, outcomes: Mapping[str, str | None], *, now: datetime
    ) -> None:
        if not outcomes:
            return
        dialect_insert = postgresql.insert if self._s.dialect == "postgresql" else sqlite.insert
        insert = dialect_insert(outbox_deliveries).values(
            [
                {
                    "event_id": event_id,
                    "consumer": consumer,
                    "attempts": 1,
                    "last_attempt_at": now,
                    "delivered_at": now if error is None else None,
                    "last_error": error,
                }
                for consumer, error in sorted(outcomes.items())
            ]
        )
        await self._s.execute(
            insert.on_conflict_do_update(
                index_elements=["event_id", "consumer"],
                set_={
                    "attempts": outbox_deliveries.c.attempts + 1,
                    "last_attempt_at": insert.excluded.last_attempt_at,
                    # An acknowledgement stands: a later failed repeat does not undo it.
                    "delivered_at": func.coalesce(
                        outbox_deliveries.c.delivered_at, insert.excluded.delivered_at
                    ),
                    "last_error": insert.excluded.last_error,
                },
            )
        )

    async def search(
        self,
        *,
        undelivered_only: bool,
        limit: int,
        order_id: OrderId | None = None,
        topic: Topic | None = None,
    ) -> list[OutboxEntry]:
        query = select(outbox).limit(limit)
        if undelivered_only:
            query = query.where(outbox.c.delivered_at.is_(None)).order_by(
                outbox.c.next_attempt_at, outbox.c.event_id
            )
        else:
            query = query.order_by(outbox.c.occurred_at.desc(), outbox.c.event_id.desc())
        if order_id is not None:
            query = query.where(outbox.c.order_id == order_id)
        if topic is not None:
            query = query.where(outbox.c.topic == topic.value)
        return await self._entries(query)

    async def backlog(self) -> tuple[int, datetime | None]:
        undelivered = outbox.c.delivered_at.is_(None)  # the due index's rows
        query = select(func.count(), func.min(outbox.c.occurred_at)).where(undelivered)
        row: Any = (await self._s.execute(query)).one()
        oldest: datetime | None = row[1]
        return int(row[0]), oldest

    async def replay(
        self, event_id: EventId, *, now: datetime, consumer: str | None = None
    ) -> bool:
        result = await self._s.execute(
            update(outbox)
            .where(outbox.c.event_id == event_id)
            .values(attempts=0, next_attempt_at=now, delivered_at=None, last_error=None)
        )
        if not result.rowcount:  # type: ignore[attr-defined]
            return False
        reopened = update(outbox_deliveries).where(outbox_deliveries.c.event_id == event_id)
        if consumer is not None:
            reopened = reopened.where(outbox_deliveries.c.consumer == consumer)
        await self._s.execute(reopened.values(delivered_at=None))
        return True
