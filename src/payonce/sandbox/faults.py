"""Fault injection settings and their seeded dice: every fault is reproducible under its seed."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

FaultKind = Literal[
    "notify_drop",
    "notify_duplicate",
    "create_timeout",
    "query_error",
    "close_timeout",
    "refund_timeout",
    "pay_before_close",
    "pay_before_cancel",
]

Rate = Annotated[float, Field(ge=0.0, le=1.0)]


class FaultSettings(BaseModel):
    """What goes wrong, and how often; ``PUT /faults`` replaces the whole set."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = 0
    notify_drop_rate: Rate = 0.0
    notify_duplicate_rate: Rate = 0.0
    # [min, max] seconds of clock time added to each notification attempt.
    notify_delay_s: tuple[float, float] = (0.0, 0.0)
    create_timeout_rate: Rate = 0.0
    query_error_rate: Rate = 0.0
    close_timeout_rate: Rate = 0.0
    refund_timeout_rate: Rate = 0.0
    # The shopper pays at the very moment the merchant closes (or cancels): the close, or the
    # cancel, finds the trade paid an instant earlier.
    pay_before_close_rate: Rate = 0.0
    pay_before_cancel_rate: Rate = 0.0
    # Real seconds a "timed out" call holds its answer after doing the work.
    timeout_hold_s: float = Field(default=30.0, ge=0.0, le=3600.0)

    @model_validator(mode="after")
    def _delay_is_a_range(self) -> FaultSettings:
        low, high = self.notify_delay_s
        if not 0.0 <= low <= high:
            raise ValueError("notify_delay_s must be [min, max] with 0 <= min <= max")
        return self

    def rate(self, kind: FaultKind) -> float:
        rate: float = getattr(self, f"{kind}_rate")
        return rate


class Faults:
    """The current settings and one random stream per fault kind.

    Separate streams keep each kind's sequence independent of how often the others are rolled,
    so a seed replays the same faults for the same sequence of calls of that kind.
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

    def strikes(self, kind: FaultKind) -> bool:
        """Roll the dice for one occurrence of ``kind``."""
        rate = self._settings.rate(kind)
        # Always roll, so the outcome of the n-th call never depends on earlier rates.
        roll = self._stream(kind).random()
        return roll < rate

    def notify_delay(self) -> timedelta:
        low, high = self._settings.notify_delay_s
        roll = self._stream("notify_delay").random()
        return timedelta(seconds=low + (high - low) * roll)

    @property
    def timeout_hold_s(self) -> float:
        return self._settings.timeout_hold_s
