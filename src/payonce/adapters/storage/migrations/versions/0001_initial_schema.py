"""The initial schema: orders, payments, outbox, inbox, notifications, idempotency keys, fences.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_LIVE = "status IN ('CLOSING', 'PAYING', 'UNKNOWN', 'UNPAID')"


def _ts(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("customer_id", sa.String(128), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("lines", sa.Text(), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _ts("expires_at"),
        sa.Column("client_secret", sa.String(128), nullable=False),
        sa.Column("paid_payment_id", sa.String(40), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_orders"),
    )
    op.create_table(
        "payments",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("order_id", sa.String(40), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("platform", sa.String(8), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("out_trade_no", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("closable", sa.Boolean(), nullable=False),
        sa.Column("applied", sa.Boolean(), nullable=False),
        sa.Column("action", sa.Text(), nullable=True),
        sa.Column("provider_trade_no", sa.String(64), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name="fk_payments_order_id"),
        sa.PrimaryKeyConstraint("id", name="pk_payments"),
        sa.UniqueConstraint("order_id", "number", name="uq_payments_order_number"),
        sa.UniqueConstraint("out_trade_no", name="uq_payments_out_trade_no"),
        sa.UniqueConstraint("channel", "provider_trade_no", name="uq_payments_provider_trade_no"),
    )
    # The database, not a lock, keeps "at most once": one applied payment per order, and one live
    # trade per order among channels that can close theirs.
    op.create_index(
        "ux_payments_one_applied_per_order",
        "payments",
        ["order_id"],
        unique=True,
        sqlite_where=sa.text("applied = 1"),
        postgresql_where=sa.text("applied = true"),
    )
    op.create_index(
        "ux_payments_one_live_per_order",
        "payments",
        ["order_id"],
        unique=True,
        sqlite_where=sa.text(f"closable = 1 AND {_LIVE}"),
        postgresql_where=sa.text(f"closable = true AND {_LIVE}"),
    )
    op.create_table(
        "outbox",
        sa.Column("event_id", sa.String(40), nullable=False),
        sa.Column("topic", sa.String(64), nullable=False),
        sa.Column("order_id", sa.String(40), nullable=False),
        sa.Column("payment_id", sa.String(40), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        _ts("occurred_at"),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _ts("next_attempt_at"),
        _ts("delivered_at", nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("event_id", name="pk_outbox"),
    )
    op.create_index(
        "ix_outbox_due",
        "outbox",
        ["next_attempt_at"],
        sqlite_where=sa.text("delivered_at IS NULL"),
        postgresql_where=sa.text("delivered_at IS NULL"),
    )
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.String(64), nullable=False),
        sa.Column("event_id", sa.String(40), nullable=False),
        _ts("processed_at"),
        sa.PrimaryKeyConstraint("consumer", "event_id", name="pk_inbox"),
    )
    op.create_table(
        "notifications",
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("notify_id", sa.String(128), nullable=False),
        sa.Column("payment_id", sa.String(40), nullable=False),
        _ts("received_at"),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("channel", "notify_id", name="pk_notifications"),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("caller", sa.String(64), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        _ts("locked_until"),
        _ts("expires_at"),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.LargeBinary(), nullable=True),
        sa.Column("response_type", sa.String(128), nullable=True),
        sa.PrimaryKeyConstraint("caller", "key", name="pk_idempotency_keys"),
    )
    op.create_table(
        "lock_fences",
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_lock_fences"),
    )


def downgrade() -> None:
    for table in (
        "lock_fences",
        "idempotency_keys",
        "notifications",
        "inbox",
        "outbox",
        "payments",
        "orders",
    ):
        op.drop_table(table)
