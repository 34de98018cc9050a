"""When each payment's money moved, indexed by channel, for reconciliation by day.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("payments") as batch:
        batch.add_column(sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True))
    # Captures recorded before: a PAID one's last change was its capture. A refunded one's was
    # its refund, so when it was paid is unknown (NULL): reconciliation does not look for it.
    op.execute("UPDATE payments SET paid_at = updated_at WHERE status = 'PAID'")
    op.create_index("ix_payments_channel_paid_at", "payments", ["channel", "paid_at"])


def downgrade() -> None:
    op.drop_index("ix_payments_channel_paid_at", table_name="payments")
    with op.batch_alter_table("payments") as batch:
        batch.drop_column("paid_at")
