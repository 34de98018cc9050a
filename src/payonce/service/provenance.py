"""Which request or job is doing the work now, and on which order and payment: the audit
trail's "cause" of each change, and what every log line of that work is stamped with."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

# e.g. "POST /api/orders/ord_x/payments req 3f2a…", "job poll", "job relay", "cli reconcile".
# A context variable: each asyncio task (a request, a background pass) sees its own.
_cause: ContextVar[str | None] = ContextVar("payonce_cause", default=None)

UNKNOWN = "unknown"


def current_cause() -> str:
    """The request or job now at work, or "unknown" when none said."""
    return _cause.get() or UNKNOWN


@contextmanager
def caused_by(cause: str) -> Iterator[None]:
    """Name the request or job at work inside the block (the outer one is restored after)."""
    token = _cause.set(cause)
    try:
        yield
    finally:
        _cause.reset(token)


# The order and payment the work at hand is about (None where it is about none).
_subject: ContextVar[tuple[str | None, str | None]] = ContextVar(
    "payonce_subject", default=(None, None)
)


def current_subject() -> tuple[str | None, str | None]:
    """(order id, payment id) of the work at hand."""
    return _subject.get()


@contextmanager
def working_on(order_id: str | None, payment_id: str | None = None) -> Iterator[None]:
    """Name the order (and payment) the work inside the block is about."""
    token = _subject.set((order_id, payment_id))
    try:
        yield
    finally:
        _subject.reset(token)
