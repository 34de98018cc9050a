"""The rate-limit port on the ``limits`` library: sliding windows counted in this process
(embedded) or in Redis (shared by every instance), failing open when Redis is gone."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError

from payonce.ports.rate_limits import LimitedCall, LimitScope, Refusal

log = logging.getLogger(__name__)

# What a real shopper does, with room to spare: a few pay clicks and channel switches, a page
# polling every second or two (plus long-polls), a socket reopened on each page load. The shop
# backend (authenticated by its key, calling for every order) has no client limit of its own;
# its calls count against each order's.
DEFAULT_LIMITS: Mapping[LimitedCall, Mapping[LimitScope, str]] = {
    "apply": {"order": "60/minute", "client": "300/minute"},
    "status": {"order": "300/minute", "client": "1200/minute"},
    "events": {"order": "60/minute", "client": "300/minute"},
}
BACKEND = "backend"


class WindowRateLimits:
    """Counts each call against its client's and its order's windows."""

    def __init__(
        self,
        storage: Storage,
        limits: Mapping[LimitedCall, Mapping[LimitScope, str]] = DEFAULT_LIMITS,
    ) -> None:
        self._storage = storage
        self._limiter = SlidingWindowCounterRateLimiter(storage)
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
        cls, url: str, limits: Mapping[LimitedCall, Mapping[LimitScope, str]] = DEFAULT_LIMITS
    ) -> WindowRateLimits:
        # limits names redis-py's asyncio client "async+redis"; a Redis that does not answer in
        # a second lets the call through rather than hold it.
        storage = RedisStorage(
            f"async+{url}",
            implementation="redispy",
            key_prefix="payonce:limits",
            wrap_exceptions=True,
            socket_timeout=1.0,
            socket_connect_timeout=1.0,
        )
        return cls(storage, limits)

    async def hit(self, call: LimitedCall, *, client: str, order: str) -> Refusal | None:
        client_limit = None if client == BACKEND else self._limits.get((call, "client"))
        windows: list[tuple[LimitScope, RateLimitItem | None, str]] = [
            ("client", client_limit, client),
            ("order", self._limits.get((call, "order")), order),
        ]
        for scope, item, who in windows:
            if item is None:
                continue
            try:
                allowed = await self._limiter.hit(item, call, who)
                if allowed:
                    continue
                stats = await self._limiter.get_window_stats(item, call, who)
            except (StorageError, OSError) as error:  # a lost Redis must not refuse shoppers
                log.warning("rate limit not counted (%s): %s", type(error).__name__, error)
                return None
            wait = max(1, math.ceil(stats.reset_time - time.time()))
            return Refusal(scope, str(item), wait)
        return None
