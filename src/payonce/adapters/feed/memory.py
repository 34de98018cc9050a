"""In-process fan-out of per-order change messages to the subscribers of this process."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

# A subscriber that falls this far behind loses its oldest messages; status_version lets it notice.
_QUEUE_SIZE = 64


class _Subscription:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[Mapping[str, Any]] = asyncio.Queue(_QUEUE_SIZE)

    async def next(self, timeout_s: float) -> Mapping[str, Any] | None:
        try:
            return await asyncio.wait_for(self.queue.get(), timeout_s)
        except TimeoutError:
            return None

    def offer(self, message: Mapping[str, Any]) -> None:
        if self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait(message)


class InProcessFeed:
    def __init__(self) -> None:
        self._subscribers: dict[str, set[_Subscription]] = {}

    def listeners(self, order_id: str) -> int:
        """How many clients of this process follow the order now."""
        return len(self._subscribers.get(order_id, ()))

    async def publish(self, order_id: str, message: Mapping[str, Any]) -> None:
        for subscription in tuple(self._subscribers.get(order_id, ())):
            subscription.offer(message)

    @contextlib.asynccontextmanager
    async def subscribe(self, order_id: str) -> AsyncIterator[_Subscription]:
        subscription = _Subscription()
        self._subscribers.setdefault(order_id, set()).add(subscription)
        try:
            yield subscription
        finally:
            subscribers = self._subscribers.get(order_id)
            if subscribers is not None:
                subscribers.discard(subscription)
                if not subscribers:
                    del self._subscribers[order_id]
