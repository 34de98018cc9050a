"""The audit trail (one row per status change of an order, a payment or a refund), and the
index that finds a payment's notifications.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_trail",
        # SQLite autoincrements only an INTEGER PRIMARY KEY (the rowid).
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("order_id", sa.String(40), nullable=False),
        sa.Column("entity", sa.String(16), nullable=False),
        sa.Column("entity_id", sa.String(64), nullable=False),
        sa.Column("from_status", sa.String(24), nullable=True),
        sa.Column("to_status", sa.String(24), nullable=False),
        sa.Column("why", sa.Text(), nullable=False),
        sa.Column("cause", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_trail"),
    )
    op.create_index("ix_audit_trail_order_id", "audit_trail", ["order_id", "at"])
    op.create_index("ix_notifications_payment_id", "notifications", ["payment_id"])


def downgrade() -> None:
    op.drop_index("ix_notifications_payment_id", table_name="notifications")
    op.drop_index("ix_audit_trail_order_id", table_name="audit_trail")
    op.drop_table("audit_trail")
