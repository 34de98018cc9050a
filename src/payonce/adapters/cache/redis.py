"""The result cache in Redis, shared by every process; Redis being down reads as a miss.

The cache is never the truth, so no Redis error reaches the caller: a failed read is a miss
(the database answers instead) and a failed write or delete is logged and forgotten.
"""

from __future__ import annotations

import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from payonce.adapters.redis_breaker import RedisBreaker

log = logging.getLogger(__name__)


class RedisCache:
    def __init__(
        self, client: Redis, *, prefix: str = "payonce:", breaker: RedisBreaker | None = None
    ) -> None:
        self._client = client
        self._prefix = f"{prefix}cache:"
        self._breaker = breaker or RedisBreaker()

    async def get(self, key: str) -> str | None:
        try:
            self._breaker.check()
            value = await self._client.get(self._prefix + key)
        except (RedisError, OSError) as exc:
            self._breaker.failed(exc)
            log.warning("cache read of %s failed, treated as a miss: %s", key, exc)
            return None
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    async def set(self, key: str, value: str, *, ttl_s: float) -> None:
        try:
            self._breaker.check()
            if ttl_s <= 0:
                # An entry born expired: all that is left to do is drop an older value.
                await self._client.delete(self._prefix + key)
            else:
                await self._client.set(self._prefix + key, value, px=max(1, round(ttl_s * 1000)))
        except (RedisError, OSError) as exc:
            self._breaker.failed(exc)
            log.warning("cache write of %s failed: %s", key, exc)

    async def delete(self, *keys: str) -> None:
        if not keys:
            return
        try:
            self._breaker.check()
            await self._client.delete(*(self._prefix + key for key in keys))
        except (RedisError, OSError) as exc:
            self._breaker.failed(exc)
            # A stale entry lives on only until its TTL, kept short for anything that can change.
            log.warning("cache delete of %s failed: %s", ", ".join(keys), exc)
