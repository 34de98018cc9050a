"""What payonce tells its operators in numbers: the metrics port, and its silent twin.

Labels are bounded sets (channels, calls, outcomes, error codes, reasons); never an order,
payment or customer id, so a metric's series stay few whatever the traffic.
"""

from __future__ import annotations

from typing import Literal, Protocol

# Where a repeated request or a second payment was stopped.
DuplicateLayer = Literal[
    "idempotency_key",  # the same request again: its stored response replayed
    "result_cache",  # the cached answer (paid, closed, the live trade's action)
    "reuse",  # the open trade's QR or link given again
    "notification_id",  # a notification already applied
    "database",  # a unique constraint or compare-and-set refused the second write
    "refund",  # a second capture happened anyway, and is refunded
]

# How a provider call ended: answered, refused by the provider, or unknown (time-out, 5xx).
CallOutcome = Literal["ok", "rejected", "unanswered", "unavailable", "error"]


class Metrics(Protocol):
    def applied(self, channel: str, outcome: str) -> None:
        """An apply ended: ``created``, ``reused``, or the refusal's error code."""

    def duplicate_prevented(self, layer: DuplicateLayer) -> None: ...

    def extra_capture_refunded(self, channel: str) -> None: ...

    def notification_received(self, channel: str, result: str) -> None:
        """``applied`` (acknowledged), ``rejected`` or ``not_applied`` (asked to send again)."""

    def notification_rejected(self, channel: str, reason: str) -> None: ...

    def provider_call(
        self, channel: str, call: str, outcome: CallOutcome, seconds: float
    ) -> None: ...

    def lock_waited(self, seconds: float, *, acquired: bool) -> None: ...

    def poll_ran(self, lag_s: float) -> None:
        """A trade poll ran ``lag_s`` after it was due."""

    def outbox_delivered(self, consumer: str, lag_s: float) -> None:
        """An event reached a consumer ``lag_s`` after it was committed."""

    def outbox_backlog(self, undelivered: int, oldest_age_s: float) -> None: ...

    def rate_limited(self, route: str, scope: str) -> None: ...


class NoMetrics:
    """Counts nothing: the default of a ``Deps`` built by hand (tests, tools)."""

    def applied(self, channel: str, outcome: str) -> None:
        pass

    def duplicate_prevented(self, layer: DuplicateLayer) -> None:
        pass

    def extra_capture_refunded(self, channel: str) -> None:
        pass

    def notification_received(self, channel: str, result: str) -> None:
        pass

    def notification_rejected(self, channel: str, reason: str) -> None:
        pass

    def provider_call(self, channel: str, call: str, outcome: CallOutcome, seconds: float) -> None:
        pass

    def lock_waited(self, seconds: float, *, acquired: bool) -> None:
        pass

    def poll_ran(self, lag_s: float) -> None:
        pass

    def outbox_delivered(self, consumer: str, lag_s: float) -> None:
        pass

    def outbox_backlog(self, undelivered: int, oldest_age_s: float) -> None:
        pass

    def rate_limited(self, route: str, scope: str) -> None:
        pass
