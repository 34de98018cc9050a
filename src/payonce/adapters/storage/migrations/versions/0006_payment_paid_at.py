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
    # Captures recorded before: their last change is the best record of when they were paid.
    op.execute(
        "UPDATE payments SET paid_at = updated_at WHERE status IN ('PAID', 'REFUNDING', 'REFUNDED')"
    )
    op.create_index("ix_payments_channel_paid_at", "payments", ["channel", "paid_at"])


def downgrade() -> None:
    op.drop_index("ix_payments_channel_paid_at", table_name="payments")
    with op.batch_alter_table("payments") as batch:
        batch.drop_column("paid_at")
