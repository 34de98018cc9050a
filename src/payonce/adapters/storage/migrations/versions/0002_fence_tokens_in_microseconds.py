"""Fence tokens move from nanoseconds to microseconds: rescale the ones already written.

Lock grants now issue Redis-compatible microsecond tokens; a nanosecond token left in
lock_fences would out-rank every new one and refuse every write (facts included) on its order.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# 10^17: microseconds since 1970 stay below it until the year 5138; nanoseconds passed it in 1973.


def upgrade() -> None:
    op.execute("UPDATE lock_fences SET token = token / 1000 WHERE token >= 100000000000000000")


def downgrade() -> None:
    op.execute("UPDATE lock_fences SET token = token * 1000 WHERE token < 100000000000000000")
