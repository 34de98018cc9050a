"""Alembic's environment: runs payonce's migrations on the connection it is handed."""

from __future__ import annotations

from alembic import context

from payonce.adapters.storage.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - payonce always hands a connection over
    raise RuntimeError("run migrations through `payonce db upgrade`")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
