"""The rate-limit port on the ``limits`` library: sliding windows counted in this process
(embedded) or in Redis (shared by every instance), letting calls through when Redis is gone."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from typing import Any, Protocol

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError

from payonce.ports.rate_limits import LimitedCall, LimitScope, Refusal

log = logging.getLogger(__name__)

# What a real shopper does, with room to spare: a few pay clicks and channel switches, a page
# polling every second or two (plus long-polls), a socket reopened on each page load. The shop
# backend (authenticated by its key, calling for every order) has no client limit of its own;
# its calls count against each order's. Failed credentials count per address: a client
# guessing secrets is slowed down long before it could find one.
DEFAULT_LIMITS: Mapping[LimitedCall, Mapping[LimitScope, str]] = {
    "apply": {"order": "60/minute", "client": "300/minute"},
    "status": {"order": "300/minute", "client": "1200/minute"},
    "events": {"order": "60/minute", "client": "300/minute"},
    "credentials": {"client": "60/minute"},
}
BACKEND = "backend"


class Breaker(Protocol):
    """The process's Redis breaker (adapters/redis_breaker.py), shared with the other parts."""

    @property
    def open(self) -> bool: ...

    def failed(self, error: BaseException) -> None: ...


class WindowRateLimits:
    """Counts each call against its client's and its order's windows."""

    def __init__(
        self,
        storage: Storage,
        limits: Mapping[LimitedCall, Mapping[LimitScope, str]] = DEFAULT_LIMITS,
        *,
        breaker: Breaker | None = None,
    ) -> None:
        self._limiter = SlidingWindowCounterRateLimiter(storage)
        self._breaker = breaker
        self._limits: dict[tuple[LimitedCall, LimitScope], RateLimitItem] = {
            (call, scope): parse(text)
            for call, scopes in limits.items()
            for scope, text in scopes.items()
        }

    @classmethod
    def in_process(
        cls, limits: Mapping[LimitedCall, Mapping[LimitScope, str]] = DEFAULT_LIMITS
    ) -> WindowRateLimits:
        return cls(MemoryStorage(), limits)

    @classmethod
    def in_redis(
        cls,
        url: str,
        limits: Mapping[LimitedCall, Mapping[LimitScope, str]] = DEFAULT_LIMITS,
        *,
        connection_pool: Any = None,
        breaker: Breaker | None = None,
    ) -> WindowRateLimits:
        """On the process's own redis-py pool (closed with the other Redis parts), or on
        connections of its own to ``url`` (a Redis that does not answer in a second lets the
        call through rather than hold it)."""
        options: dict[str, Any] = (
            {"connection_pool": connection_pool}
            if connection_pool is not None
            else {"socket_timeout": 1.0, "socket_connect_timeout": 1.0}
        )
        # limits names redis-py's asyncio client "async+redis".
        storage = RedisStorage(
            f"async+{url}",
            implementation="redispy",
            key_prefix="payonce:limits",
            wrap_exceptions=True,
            **options,
        )
        return cls(storage, limits, breaker=breaker)

    async def hit(self, call: LimitedCall, *, client: str, order: str) -> Refusal | None:
        client_limit = None if client == BACKEND else self._limits.get((call, "client"))
        candidates: list[tuple[LimitScope, RateLimitItem | None, str]] = [
            ("client", client_limit, client),
            ("order", self._limits.get((call, "order")), order),
        ]
        windows = [(scope, item, who) for scope, item, who in candidates if item and who]
        if self._breaker is not None and self._breaker.open:
            return None  # Redis did not answer a moment ago: not counted, not refused
        try:
            # Every window is looked at before any is counted: a refused call uses up none.
            for scope, item, who in windows:
                if not await self._limiter.test(item, call, who):
                    stats = await self._limiter.get_window_stats(item, call, who)
                    wait = max(1, math.ceil(stats.reset_time - time.time()))
                    return Refusal(scope, str(item), wait)
            for _, item, who in windows:
                await self._limiter.hit(item, call, who)
        except (StorageError, OSError) as error:  # a lost Redis must not refuse shoppers
            if self._breaker is not None:
                self._breaker.failed(getattr(error, "storage_error", error))
            log.warning("rate limit not counted (%s): %s", type(error).__name__, error)
        return None
