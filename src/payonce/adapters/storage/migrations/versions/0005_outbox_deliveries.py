"""Each consumer's delivery of each outbox event, and the outbox's indexes for operators.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox_deliveries",
        sa.Column("event_id", sa.String(40), nullable=False),
        sa.Column("consumer", sa.String(64), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["event_id"], ["outbox.event_id"], name="fk_outbox_deliveries_event_id"
        ),
        sa.PrimaryKeyConstraint("event_id", "consumer", name="pk_outbox_deliveries"),
    )
    op.create_index("ix_outbox_order_id", "outbox", ["order_id", "occurred_at"])
    op.create_index("ix_outbox_occurred_at", "outbox", ["occurred_at"])


def downgrade() -> None:
    op.drop_index("ix_outbox_occurred_at", table_name="outbox")
    op.drop_index("ix_outbox_order_id", table_name="outbox")
    op.drop_table("outbox_deliveries")
