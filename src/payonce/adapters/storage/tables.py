"""The SQL schema (SQLAlchemy Core): tables, and the constraints that make "at most once" hold."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    true,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from payonce.domain.payment import LIVE_STATUSES


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite has no time zones of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)

orders = Table(
    "orders",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("customer_id", String(128), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("lines", Text, nullable=False),
    Column("status", String(24), nullable=False),
    Column("version", Integer, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("client_secret", String(128), nullable=False),
    Column("paid_payment_id", String(40), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # When the expiry sweep next looks at this order: its deadline, or later once postponed
    # (a trade that could not be closed yet). Storage-only: never part of the domain order.
    Column("expiry_check_at", UTCDateTime, nullable=False),
)
_UNPAID = orders.c.status == "UNPAID"
# The expiry sweep reads unpaid orders only: its cost follows them, not the table.
Index(
    "ix_orders_expiry_due",
    orders.c.expiry_check_at,
    sqlite_where=_UNPAID,
    postgresql_where=_UNPAID,
)

payments = Table(
    "payments",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("order_id", String(40), ForeignKey("orders.id"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("channel", String(16), nullable=False),
    Column("platform", String(8), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("out_trade_no", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("version", Integer, nullable=False),
    Column("closable", Boolean, nullable=False),
    Column("applied", Boolean, nullable=False),
    Column("action", Text, nullable=True),
    Column("provider_trade_no", String(64), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("paid_at", UTCDateTime, nullable=True),
    UniqueConstraint("order_id", "number", name="uq_payments_order_number"),
    UniqueConstraint("out_trade_no", name="uq_payments_out_trade_no"),
    UniqueConstraint("channel", "provider_trade_no", name="uq_payments_provider_trade_no"),
)

# At most one applied payment per order.
_APPLIED = payments.c.applied == true()
# At most one live trade per order among channels that can close their trades.
_LIVE_CLOSABLE = and_(
    payments.c.closable == true(),
    payments.c.status.in_(sorted(status.value for status in LIVE_STATUSES)),
)

Index(
    "ux_payments_one_applied_per_order",
    payments.c.order_id,
    unique=True,
    sqlite_where=_APPLIED,
    postgresql_where=_APPLIED,
)
Index(
    "ux_payments_one_live_per_order",
    payments.c.order_id,
    unique=True,
    sqlite_where=_LIVE_CLOSABLE,
    postgresql_where=_LIVE_CLOSABLE,
)
_LIVE = payments.c.status.in_(sorted(status.value for status in LIVE_STATUSES))
# The sweeper reads live payments only, least recently changed first: settled payments (nearly
# all of the table, in time) are not in this index, so its cost does not grow with them.
Index(
    "ix_payments_live_changed",
    payments.c.updated_at,
    payments.c.id,  # the sweeper's batches go on after the last (updated_at, id) they took
    sqlite_where=_LIVE,
    postgresql_where=_LIVE,
)
# Reconciliation reads one channel's captures of one day.
Index("ix_payments_channel_paid_at", payments.c.channel, payments.c.paid_at)

refunds = Table(
    "refunds",
    metadata,
    # Derived from the payment (see domain/refund.py): the provider refunds it at most once.
    Column("refund_no", String(64), primary_key=True),
    Column("payment_id", String(40), ForeignKey("payments.id"), nullable=False),
    Column("order_id", String(40), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("reason", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("requested_at", UTCDateTime, nullable=False),
    Column("completed_at", UTCDateTime, nullable=True),
    # A payment is refunded in full, once.
    UniqueConstraint("payment_id", name="uq_refunds_payment_id"),
)
Index("ix_refunds_order_id", refunds.c.order_id)

outbox = Table(
    "outbox",
    metadata,
    Column("event_id", String(40), primary_key=True),
    Column("topic", String(64), nullable=False),
    Column("order_id", String(40), nullable=False),
    Column("payment_id", String(40), nullable=False),
    Column("payload", Text, nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
)
_UNDELIVERED = outbox.c.delivered_at.is_(None)
Index(
    "ix_outbox_due",
    outbox.c.next_attempt_at,
    sqlite_where=_UNDELIVERED,
    postgresql_where=_UNDELIVERED,
)
# What operators look up (`payonce outbox list`): an order's events, and the newest events.
Index("ix_outbox_order_id", outbox.c.order_id, outbox.c.occurred_at)
Index("ix_outbox_occurred_at", outbox.c.occurred_at)

# Each consumer's side of an event's delivery: one that acknowledged is not asked again while
# another consumer (an order service that is down) keeps the event due.
outbox_deliveries = Table(
    "outbox_deliveries",
    metadata,
    Column("event_id", String(40), ForeignKey("outbox.event_id"), primary_key=True),
    Column("consumer", String(64), primary_key=True),
    Column("attempts", Integer, nullable=False),
    Column("last_attempt_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
)

poll_jobs = Table(
    "poll_jobs",
    metadata,
    Column("payment_id", String(40), ForeignKey("payments.id"), primary_key=True),
    Column("order_id", String(40), nullable=False),
    Column("due_at", UTCDateTime, nullable=False),
    Column("attempts", Integer, nullable=False),
)
# Workers read the soonest due jobs: the cost follows the due jobs, not the payments table.
Index("ix_poll_jobs_due", poll_jobs.c.due_at)

inbox = Table(
    "inbox",
    metadata,
    Column("consumer", String(64), primary_key=True),
    Column("event_id", String(40), primary_key=True),
    Column("processed_at", UTCDateTime, nullable=False),
)

notifications = Table(
    "notifications",
    metadata,
    Column("channel", String(16), primary_key=True),
    Column("notify_id", String(128), primary_key=True),
    Column("payment_id", String(40), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    # Why a verified notification changed nothing (a conflict with our record), kept for audit.
    Column("note", Text, nullable=True),
)
# `payonce show` reads the notifications of an order's payments.
Index("ix_notifications_payment_id", notifications.c.payment_id)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("caller", String(64), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("state", String(16), nullable=False),
    Column("locked_until", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("response_status", Integer, nullable=True),
    Column("response_body", LargeBinary, nullable=True),
    Column("response_type", String(128), nullable=True),
)

lock_fences = Table(
    "lock_fences",
    metadata,
    Column("key", String(128), primary_key=True),
    Column("token", BigInteger, nullable=False),
)

# One row per status change of an order, a payment or a refund, written in the transaction
# that makes it (`payonce show ORDER_ID` reads an order's rows in time order).
audit_trail = Table(
    "audit_trail",
    metadata,
    # SQLite autoincrements only an INTEGER PRIMARY KEY (the rowid).
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("order_id", String(40), nullable=False),
    Column("entity", String(16), nullable=False),
    Column("entity_id", String(64), nullable=False),
    Column("from_status", String(24), nullable=True),
    Column("to_status", String(24), nullable=False),
    Column("why", Text, nullable=False),
    Column("cause", Text, nullable=False),
    Column("at", UTCDateTime, nullable=False),
)
Index("ix_audit_trail_order_id", audit_trail.c.order_id, audit_trail.c.at)
