"""Fault injection settings and their seeded dice: every fault is reproducible under its seed."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

FaultKind = Literal[
    "notify_drop",
    "notify_duplicate",
    "notify_reorder",
    "notify_forge",
    # "_timeout": the work is done, then the answer is held back (the caller times out);
    # "_error": a retryable system error is answered and nothing is done.
    "create_timeout",
    "create_error",
    "query_timeout",
    "query_error",
    "close_timeout",
    "close_error",
    "refund_timeout",
    "refund_error",
    # A merchant's capture of an approved payment (PayPal): the money moves on capture.
    "capture_timeout",
    "capture_error",
    "pay_before_close",
    "pay_before_cancel",
    "pay_after_close",
]

# A provider call that faults can hit: it errs before doing anything, or times out after.
Operation = Literal["create", "query", "close", "refund", "capture"]
CallFault = Literal["error", "timeout"]
_CALL_FAULTS: dict[Operation, tuple[FaultKind, FaultKind]] = {
    "create": ("create_error", "create_timeout"),
    "query": ("query_error", "query_timeout"),
    "close": ("close_error", "close_timeout"),
    "refund": ("refund_error", "refund_timeout"),
    "capture": ("capture_error", "capture_timeout"),
}

# How a forged notification is made: a tampered signature, a validly signed changed amount or
# another merchant (a provider-side mix-up or a leaked key), a genuine one replayed late.
Forgery = Literal["bad_signature", "changed_amount", "other_merchant", "stale_timestamp"]
FORGERIES: tuple[Forgery, ...] = (
    "bad_signature",
    "changed_amount",
    "other_merchant",
    "stale_timestamp",
)

Rate = Annotated[float, Field(ge=0.0, le=1.0)]

# How far a channel's clock runs behind ours when it checks a deadline (``pay_late_by_s``).
Lateness = Callable[[], timedelta]


def on_time() -> timedelta:
    """A provider whose clock agrees with ours."""
    return timedelta(0)


class FaultRates(BaseModel):
    """The rates of every fault kind; unset (None) means "as the global setting says"."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    notify_drop_rate: Rate | None = None
    notify_duplicate_rate: Rate | None = None
    # A reordered notification waits ``notify_reorder_s`` before its first attempt, so the
    # notifications scheduled after it overtake it.
    notify_reorder_rate: Rate | None = None
    # A forged copy is sent before the genuine attempt (the genuine one still goes).
    notify_forge_rate: Rate | None = None
    create_timeout_rate: Rate | None = None
    create_error_rate: Rate | None = None
    query_timeout_rate: Rate | None = None
    query_error_rate: Rate | None = None
    close_timeout_rate: Rate | None = None
    close_error_rate: Rate | None = None
    refund_timeout_rate: Rate | None = None
    refund_error_rate: Rate | None = None
    capture_timeout_rate: Rate | None = None
    capture_error_rate: Rate | None = None
    # The shopper pays at the very moment the merchant closes (or cancels): the close, or the
    # cancel, finds the trade paid an instant earlier.
    pay_before_close_rate: Rate | None = None
    pay_before_cancel_rate: Rate | None = None
    # The close does not hold (Alipay): a payment the shopper had under way lands after the
    # merchant closed the trade, which the close's answer did not say. The merchant learns it
    # from the TRADE_SUCCESS notice or a query; only a refund can undo it.
    pay_after_close_rate: Rate | None = None


class FaultSettings(BaseModel):
    """What goes wrong, and how often; ``PUT /faults`` replaces the whole set.

    The top-level rates apply to every channel; ``channels`` overrides them for one channel,
    e.g. ``{"channels": {"wechat": {"notify_drop_rate": 1.0}}}``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = 0
    notify_drop_rate: Rate = 0.0
    notify_duplicate_rate: Rate = 0.0
    notify_reorder_rate: Rate = 0.0
    notify_forge_rate: Rate = 0.0
    create_timeout_rate: Rate = 0.0
    create_error_rate: Rate = 0.0
    query_timeout_rate: Rate = 0.0
    query_error_rate: Rate = 0.0
    close_timeout_rate: Rate = 0.0
    close_error_rate: Rate = 0.0
    refund_timeout_rate: Rate = 0.0
    refund_error_rate: Rate = 0.0
    capture_timeout_rate: Rate = 0.0
    capture_error_rate: Rate = 0.0
    pay_before_close_rate: Rate = 0.0
    pay_before_cancel_rate: Rate = 0.0
    pay_after_close_rate: Rate = 0.0
    # [min, max] seconds of clock time added to each notification attempt.
    notify_delay_s: tuple[float, float] = (0.0, 0.0)
    notify_reorder_s: float = Field(default=60.0, ge=0.0, le=86400.0)
    # Which forgeries the forge fault picks from (seeded).
    notify_forgeries: tuple[Forgery, ...] = FORGERIES
    # Real seconds a "timed out" call holds its answer after doing the work.
    timeout_hold_s: float = Field(default=30.0, ge=0.0, le=3600.0)
    # The provider still accepts a shopper's payment this many seconds after the trade's pay
    # deadline (its clock runs behind ours): every payment check, code expiry and automatic
    # timeout-close of every channel waits that long.
    pay_late_by_s: float = Field(default=0.0, ge=0.0, le=86400.0)
    channels: dict[str, FaultRates] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> FaultSettings:
        low, high = self.notify_delay_s
        if not 0.0 <= low <= high:
            raise ValueError("notify_delay_s must be [min, max] with 0 <= min <= max")
        if not self.notify_forgeries:
            raise ValueError("notify_forgeries needs at least one kind")
        return self

    def rate(self, kind: FaultKind, channel: str | None = None) -> float:
        name = f"{kind}_rate"
        override = self.channels.get(channel) if channel is not None else None
        if override is not None:
            specific: float | None = getattr(override, name)
            if specific is not None:
                return specific
        rate: float = getattr(self, name)
        return rate


class Faults:
    """The current settings and one random stream per fault kind and channel.

    Separate streams keep each sequence independent of how often the others are rolled, so a
    seed replays the same faults for the same sequence of calls of that kind on that channel.
    """

    def __init__(self, settings: FaultSettings | None = None) -> None:
        self.configure(settings or FaultSettings())

    @property
    def settings(self) -> FaultSettings:
        return self._settings

    def configure(self, settings: FaultSettings) -> None:
        self._settings = settings
        self._streams: dict[str, random.Random] = {}

    def _stream(self, name: str) -> random.Random:
        stream = self._streams.get(name)
        if stream is None:
            # Simulation dice, not secrets: reproducibility is the point.
            stream = random.Random(f"{self._settings.seed}/{name}")  # noqa: S311
            self._streams[name] = stream
        return stream

    def strikes(self, kind: FaultKind, channel: str | None = None) -> bool:
        """Roll the dice for one occurrence of ``kind`` (on ``channel``, when given)."""
        rate = self._settings.rate(kind, channel)
        # Always roll, so the outcome of the n-th call never depends on earlier rates.
        name = kind if channel is None else f"{channel}/{kind}"
        return self._stream(name).random() < rate

    def call_fault(self, op: Operation, channel: str) -> CallFault | None:
        """What befalls one provider call: a retryable error (nothing done), a time-out (done,
        answer held back), or nothing. Both dice are always rolled."""
        error_kind, timeout_kind = _CALL_FAULTS[op]
        error = self.strikes(error_kind, channel)
        timeout = self.strikes(timeout_kind, channel)
        if error:
            return "error"
        return "timeout" if timeout else None

    def chance(self, name: str, rate: float) -> bool:
        """A seeded roll for a channel's own quirk (e.g. WeChat's echoed deliveries)."""
        return self._stream(f"quirk/{name}").random() < rate

    def pick(self, name: str, count: int) -> int:
        """A seeded choice among ``count`` options (0-based), e.g. a business-day delay."""
        return self._stream(f"pick/{name}").randrange(count)

    def forgery(self, channel: str) -> Forgery:
        kinds = self._settings.notify_forgeries
        return kinds[self._stream(f"{channel}/forgery").randrange(len(kinds))]

    def notify_delay(self) -> timedelta:
        low, high = self._settings.notify_delay_s
        roll = self._stream("notify_delay").random()
        return timedelta(seconds=low + (high - low) * roll)

    @property
    def reorder_delay(self) -> timedelta:
        return timedelta(seconds=self._settings.notify_reorder_s)

    @property
    def timeout_hold_s(self) -> float:
        return self._settings.timeout_hold_s

    @property
    def pay_late_by(self) -> timedelta:
        """How far the providers' clocks run behind ours when they check a pay deadline."""
        return timedelta(seconds=self._settings.pay_late_by_s)
