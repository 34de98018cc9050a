"""One open SQL transaction and the translation of driver errors into payonce's error tree."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Executable, Result, Table, exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from payonce.errors import DuplicateKey, StorageIntegrityError


def integrity_error(error: exc.IntegrityError) -> DuplicateKey | StorageIntegrityError:
    """A unique violation is a lost race (retry); any other refusal is a bug (don't)."""
    message = str(error.orig).splitlines()[0]
    unique = getattr(error.orig, "sqlstate", None) == "23505" or "UNIQUE constraint" in message
    return DuplicateKey(message) if unique else StorageIntegrityError(message)


class Session:
    """One open transaction; translates driver errors into payonce's error tree."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self.dialect = conn.dialect.name

    async def execute(self, statement: Executable) -> Result[Any]:
        try:
            return await self.conn.execute(statement)
        except exc.IntegrityError as error:
            raise integrity_error(error) from error

    async def insert_ignoring_conflict(
        self, table: Table, values: Mapping[str, Any], keys: list[str]
    ) -> bool:
        """Insert unless a row with the same ``keys`` exists; True when inserted.

        Told by RETURNING, not rowcount: psycopg reports -1 rows for an upsert.
        """
        dialect_insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        statement = (
            dialect_insert(table)
            .values(**values)
            .on_conflict_do_nothing(index_elements=keys)
            .returning(table.c[keys[0]])
        )
        result = await self.execute(statement)
        return result.first() is not None
