"""payonce's one exception tree: each refusal has a stable code and is retryable or not.

Foreign exceptions (drivers, SDKs, HTTP clients) are translated into these at the adapter edge.
"""

from __future__ import annotations

from typing import ClassVar


class PayonceError(Exception):
    """Base of every error payonce raises on purpose."""

    code: ClassVar[str] = "internal_error"
    title: ClassVar[str] = "Internal error"
    http_status: ClassVar[int] = 500
    # A retryable error may succeed if the same request is sent again later.
    retryable: ClassVar[bool] = False
    # When to send it again (the Retry-After header of a retryable refusal), in seconds.
    retry_after_s: int = 1

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title


# Refusals of a caller's request ------------------------------------------------------------


class InvalidRequest(PayonceError):
    code = "invalid_request"
    title = "Invalid request"
    http_status = 422


class Unauthorized(PayonceError):
    code = "unauthorized"
    title = "Missing or invalid credentials"
    http_status = 401


class Forbidden(PayonceError):
    code = "forbidden"
    title = "These credentials do not allow this call"
    http_status = 403


class OrderNotFound(PayonceError):
    code = "order_not_found"
    title = "Order not found"
    http_status = 404


class PaymentNotFound(PayonceError):
    code = "payment_not_found"
    title = "Payment not found"
    http_status = 404


class OrderAlreadyPaid(PayonceError):
    code = "order_already_paid"
    title = "Order already paid"
    http_status = 409


class OrderClosed(PayonceError):
    code = "order_closed"
    title = "Order closed"
    http_status = 409


class OrderExpired(PayonceError):
    code = "order_expired"
    title = "Order expired"
    http_status = 409


class ChannelUnsupported(PayonceError):
    code = "channel_unsupported"
    title = "Channel not supported for this order"
    http_status = 422


class PaymentNotCancellable(PayonceError):
    code = "payment_not_cancellable"
    title = "This payment can no longer be cancelled"
    http_status = 409


class PaymentNotRefundable(PayonceError):
    """Only an extra capture is refunded by payonce: never the payment that paid its order
    (that is the shop's return, made with the order), never one that took no money."""

    code = "payment_not_refundable"
    title = "This payment is not an extra capture to refund"
    http_status = 409


class EventNotFound(PayonceError):
    code = "event_not_found"
    title = "No such outbox event"
    http_status = 404


class PaymentOutcomeUnknown(PayonceError):
    code = "payment_outcome_unknown"
    title = "An earlier payment's outcome is not yet known"
    http_status = 409
    retryable = True


class OrderBusy(PayonceError):
    code = "order_busy"
    title = "Another request for this order is still running"
    http_status = 409
    retryable = True


class RateLimited(PayonceError):
    code = "rate_limited"
    title = "Too many requests; try again after Retry-After seconds"
    http_status = 429
    retryable = True

    def __init__(self, detail: str, *, retry_after_s: int) -> None:
        super().__init__(detail)
        self.retry_after_s = max(1, retry_after_s)


class IdempotencyKeyMissing(PayonceError):
    code = "idempotency_key_missing"
    title = "Idempotency-Key header required"
    http_status = 400


class IdempotencyKeyReused(PayonceError):
    code = "idempotency_key_reused"
    title = "Idempotency-Key reused with a different request"
    http_status = 422


class IdempotencyKeyInFlight(PayonceError):
    code = "idempotency_key_in_flight"
    title = "A request with this Idempotency-Key is still running"
    http_status = 409
    retryable = True


# Providers -----------------------------------------------------------------------------------


class ProviderError(PayonceError):
    code = "provider_error"
    title = "Payment provider error"
    http_status = 502


class ProviderUnavailable(ProviderError):
    """The provider did not answer. A call that may have reached it has an unknown outcome."""

    code = "provider_unavailable"
    title = "Payment provider did not answer"
    http_status = 503
    retryable = True


class ProviderRetryable(ProviderUnavailable):
    """The provider certainly did not act: the request never reached it (connection refused),
    or it said so before doing anything (rate limited, our token expired). The same call may
    be made again. A ProviderUnavailable, so code that only knows "unknown" stays safe.
    """

    code = "provider_busy"
    title = "Payment provider busy"


class ProviderRejected(ProviderError):
    """A definitive refusal by the provider (bad parameters, trade in a wrong state, ...)."""

    code = "provider_rejected"
    title = "Payment provider refused the request"
    http_status = 502

    def __init__(self, detail: str | None = None, *, provider_code: str | None = None) -> None:
        super().__init__(detail)
        self.provider_code = provider_code


class NotificationRejected(PayonceError):
    """A provider notification that failed verification or matching; it changed nothing."""

    code = "notification_rejected"
    title = "Notification rejected"
    http_status = 400

    def __init__(
        self, reason: str, detail: str | None = None, *, out_trade_no: str | None = None
    ) -> None:
        super().__init__(detail or reason)
        self.reason = reason
        # The trade number the refused body names, if it could be read: unverified, so only
        # ever a hint to ask the provider about a trade we hold, never a fact to act on.
        self.out_trade_no = out_trade_no


# Storage and coordination --------------------------------------------------------------------


class StorageConflict(PayonceError):
    """A write lost a race; re-read and decide again."""

    code = "conflict"
    title = "Concurrent update"
    http_status = 409
    retryable = True


class StaleVersion(StorageConflict):
    """A compare-and-set on ``version`` found another version."""


class DuplicateKey(StorageConflict):
    """A unique constraint refused a row."""

    def __init__(self, constraint: str) -> None:
        super().__init__(f"unique constraint {constraint}")
        self.constraint = constraint


class FenceRejected(StorageConflict):
    """A write carried a lock token older than one that already wrote: its lock had expired."""


class LockNotAcquired(OrderBusy):
    """The per-order lock could not be had in time."""


class StorageIntegrityError(PayonceError):
    """The database refused a row for a reason no retry will change (a bug, not a race)."""

    code = "storage_integrity_error"
    title = "Storage refused the change"
    http_status = 500


class StateConflict(PayonceError):
    """The record moved on while the request was deciding; the request can be sent again."""

    code = "state_conflict"
    title = "The payment changed while this request ran"
    http_status = 409
    retryable = True


class StorageUnavailable(PayonceError):
    code = "storage_unavailable"
    title = "Storage unavailable"
    http_status = 503
    retryable = True


class RedisUnavailable(PayonceError):
    """Redis, configured and shared by every instance, does not answer (readiness only: the
    requests themselves fall back to in-process parts and the database)."""

    code = "redis_unavailable"
    title = "Redis does not answer"
    http_status = 503
    retryable = True
