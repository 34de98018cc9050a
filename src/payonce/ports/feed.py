"""The push feed port: per-order change messages fanned out to WebSocket and long-poll clients."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol


class Subscription(Protocol):
    async def next(self, timeout_s: float) -> Mapping[str, Any] | None:
        """The next message for this order, or None when ``timeout_s`` passes first."""
        ...


class Feed(Protocol):
    async def publish(self, order_id: str, message: Mapping[str, Any]) -> None:
        """Best effort: a lost message costs a client a poll, never a state change."""
        ...

    def subscribe(self, order_id: str) -> AbstractAsyncContextManager[Subscription]: ...
