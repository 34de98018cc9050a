"""The metrics port on prometheus-client, in a registry of this process's own (one per container,
so two apps in one test process never share a count), rendered at ``GET /metrics``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from payonce.ports.metrics import CallOutcome, DuplicateLayer

# Provider calls take tens of milliseconds to their time-out (15 s by default).
_CALL_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0)
# Lock waits are mostly zero; a held lock costs up to the lock's wait (15 s by default).
_WAIT_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0)
# Lags of polls and outbox deliveries: from immediate to the relay's hour of backoff.
_LAG_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)


class PrometheusMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self._applies = Counter(
            "payonce_applies",
            "Applies by channel and outcome: created, reused, or the refusal's code.",
            ["channel", "outcome"],
            registry=registry,
        )
        self._duplicates = Counter(
            "payonce_duplicates_prevented",
            "Repeated requests and second payments stopped, by the layer that stopped them.",
            ["layer"],
            registry=registry,
        )
        self._extra_refunds = Counter(
            "payonce_extra_captures_refunded",
            "Second captures of an order refunded (payments that were never applied).",
            ["channel"],
            registry=registry,
        )
        self._notifications = Counter(
            "payonce_notifications",
            "Provider notifications by result: applied, rejected, not_applied.",
            ["channel", "result"],
            registry=registry,
        )
        self._rejections = Counter(
            "payonce_notification_rejections",
            "Notifications refused, by why: bad_signature, stale, amount_mismatch, ...",
            ["channel", "reason"],
            registry=registry,
        )
        self._calls = Histogram(
            "payonce_provider_call_seconds",
            "Provider calls by channel, call and outcome (ok, rejected, unanswered, ...).",
            ["channel", "call", "outcome"],
            buckets=_CALL_BUCKETS,
            registry=registry,
        )
        self._lock_waits = Histogram(
            "payonce_lock_wait_seconds",
            "Time waited for an order's lock, by whether it was granted.",
            ["acquired"],
            buckets=_WAIT_BUCKETS,
            registry=registry,
        )
        self._poll_lag = Histogram(
            "payonce_poll_lag_seconds",
            "How late a trade poll ran after it was due.",
            buckets=_LAG_BUCKETS,
            registry=registry,
        )
        self._outbox_lag = Histogram(
            "payonce_outbox_lag_seconds",
            "From an event's commit to its delivery to a consumer.",
            ["consumer"],
            buckets=_LAG_BUCKETS,
            registry=registry,
        )
        self._undelivered = Gauge(
            "payonce_outbox_undelivered",
            "Outbox events not yet delivered to every consumer (at the last look).",
            registry=registry,
        )
        self._oldest = Gauge(
            "payonce_outbox_oldest_undelivered_age_seconds",
            "Age of the oldest undelivered outbox event (0 when none).",
            registry=registry,
        )
        self._limited = Counter(
            "payonce_rate_limited",
            "Requests answered 429, by route and by the limit's scope (client or order).",
            ["route", "scope"],
            registry=registry,
        )

    def applied(self, channel: str, outcome: str) -> None:
        self._applies.labels(channel, outcome).inc()

    def duplicate_prevented(self, layer: DuplicateLayer) -> None:
        self._duplicates.labels(layer).inc()

    def extra_capture_refunded(self, channel: str) -> None:
        self._extra_refunds.labels(channel).inc()

    def notification_received(self, channel: str, result: str) -> None:
        self._notifications.labels(channel, result).inc()

    def notification_rejected(self, channel: str, reason: str) -> None:
        self._rejections.labels(channel, reason).inc()

    def provider_call(self, channel: str, call: str, outcome: CallOutcome, seconds: float) -> None:
        self._calls.labels(channel, call, outcome).observe(seconds)

    def lock_waited(self, seconds: float, *, acquired: bool) -> None:
        self._lock_waits.labels("yes" if acquired else "no").observe(seconds)

    def poll_ran(self, lag_s: float) -> None:
        self._poll_lag.observe(max(lag_s, 0.0))

    def outbox_delivered(self, consumer: str, lag_s: float) -> None:
        self._outbox_lag.labels(consumer).observe(max(lag_s, 0.0))

    def outbox_backlog(self, undelivered: int, oldest_age_s: float) -> None:
        self._undelivered.set(undelivered)
        self._oldest.set(max(oldest_age_s, 0.0))

    def rate_limited(self, route: str, scope: str) -> None:
        self._limited.labels(route, scope).inc()

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)

    def value(self, name: str, **labels: str) -> float:
        """One sample's value (0 when never counted), for tests and tools."""
        found = self.registry.get_sample_value(name, labels)
        return 0.0 if found is None else found
