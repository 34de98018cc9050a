"""Poll jobs: when each open trade is next asked about at its provider.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "poll_jobs",
        sa.Column("payment_id", sa.String(40), nullable=False),
        sa.Column("order_id", sa.String(40), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["payment_id"], ["payments.id"]),
        sa.PrimaryKeyConstraint("payment_id"),
    )
    op.create_index("ix_poll_jobs_due", "poll_jobs", ["due_at"])


def downgrade() -> None:
    op.drop_index("ix_poll_jobs_due", table_name="poll_jobs")
    op.drop_table("poll_jobs")
