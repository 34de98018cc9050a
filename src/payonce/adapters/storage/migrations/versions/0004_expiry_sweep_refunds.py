"""Expiry and sweeper indexes over unpaid orders and live payments; the refunds table.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_LIVE = "status IN ('CLOSING', 'PAYING', 'UNKNOWN', 'UNPAID')"
_UNPAID = "status = 'UNPAID'"


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("expiry_check_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE orders SET expiry_check_at = expires_at")
    with op.batch_alter_table("orders") as batch:
        batch.alter_column("expiry_check_at", nullable=False)
    op.create_index(
        "ix_orders_expiry_due",
        "orders",
        ["expiry_check_at"],
        sqlite_where=sa.text(_UNPAID),
        postgresql_where=sa.text(_UNPAID),
    )
    op.create_index(
        "ix_payments_live_changed",
        "payments",
        ["updated_at", "id"],
        sqlite_where=sa.text(_LIVE),
        postgresql_where=sa.text(_LIVE),
    )
    op.create_table(
        "refunds",
        sa.Column("refund_no", sa.String(64), nullable=False),
        sa.Column("payment_id", sa.String(40), nullable=False),
        sa.Column("order_id", sa.String(40), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["payment_id"], ["payments.id"]),
        sa.PrimaryKeyConstraint("refund_no"),
        sa.UniqueConstraint("payment_id", name="uq_refunds_payment_id"),
    )
    op.create_index("ix_refunds_order_id", "refunds", ["order_id"])


def downgrade() -> None:
    op.drop_index("ix_refunds_order_id", table_name="refunds")
    op.drop_table("refunds")
    op.drop_index("ix_payments_live_changed", table_name="payments")
    op.drop_index("ix_orders_expiry_due", table_name="orders")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("expiry_check_at")
