"""The rate-limit port: how many calls of a kind a client, or an order, may make per window."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

# The calls that are limited: opening or reusing a trade, reading an order or payment (a poll),
# opening an order's event stream, and presenting credentials that name no one.
LimitedCall = Literal["apply", "status", "events", "credentials"]
# Whose calls are counted together: one client (the shop backend, or a shopper's address), or
# every caller of one order.
LimitScope = Literal["client", "order"]


@dataclass(frozen=True, slots=True)
class Refusal:
    scope: LimitScope
    limit: str  # e.g. "60/minute"
    retry_after_s: int


class RateLimits(Protocol):
    async def hit(self, call: LimitedCall, *, client: str, order: str) -> Refusal | None:
        """Count one call; the refusal when it is past a limit (then it counts nowhere)."""
        ...
