"""Per-order locks shared by every process through Redis, with fencing tokens from Redis's clock.

A grant is one Lua script: if the lock key is free, it is set (with a TTL, like ``SET NX PX``)
to a random owner plus a fencing token that is Redis's time in microseconds, pushed past the last
one issued for the key: tokens keep growing even if the fence key is lost or Redis is flushed,
and follow the same rule as the in-process locks. When Redis cannot be used (down, too slow,
read-only after a failover) the grant falls back to a lock of this process alone: a lost Redis
costs mutual exclusion across processes, never availability, since the database is the real
guard.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis
from redis.exceptions import RedisError

from payonce.adapters.redis_breaker import RedisBreaker
from payonce.errors import LockNotAcquired
from payonce.ports.locks import Lease, Locks

log = logging.getLogger(__name__)

# Long enough to outlive any grant; losing it is harmless because tokens follow the clock.
_FENCE_TTL_MS = 7 * 24 * 3600 * 1000
_FIRST_PAUSE_S = 0.002
_MAX_PAUSE_S = 0.05
# Compare-and-delete is safe to repeat; past the last pause the TTL is as good.
_RELEASE_RETRY_PAUSES_S = (0.1, 0.5, 1.0, 2.0, 5.0, 10.0)

# KEYS: lock, fence. ARGV: owner, ttl ms, fence ttl ms. Returns the fencing token, or nil.
# The lock's value is "owner:token", so a grant repeated by the client after its answer was lost
# (a time-out, then a retry) finds its own grant and gets the same token instead of waiting for
# itself. Numbers are formatted with %.0f because Redis would render a large Lua number in
# exponent form; microseconds stay below 2^53, so a Lua double holds them exactly.
_GRANT = """
local mine = ARGV[1] .. ':'
local held = redis.call('GET', KEYS[1])
if held then
  if string.sub(held, 1, #mine) == mine then
    return string.sub(held, #mine + 1)
  end
  return false
end
local now = redis.call('TIME')
local micros = tonumber(now[1]) * 1000000 + tonumber(now[2])
local last = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
local token = string.format('%.0f', math.max(last + 1, micros))
redis.call('SET', KEYS[1], mine .. token, 'PX', ARGV[2])
redis.call('SET', KEYS[2], token, 'PX', ARGV[3])
return token
"""

# KEYS: lock. ARGV: owner. A grant that expired and was taken over belongs to someone else.
_RELEASE = """
local mine = ARGV[1] .. ':'
local held = redis.call('GET', KEYS[1])
if held and string.sub(held, 1, #mine) == mine then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def lock_key_of(key: str, prefix: str = "payonce:") -> str:
    # The braces are a hash tag: a key's lock and fence share one Redis Cluster slot, as the
    # grant script touching both requires.
    return f"{prefix}lock:{{{key}}}"


def fence_key_of(key: str, prefix: str = "payonce:") -> str:
    return f"{prefix}fence:{{{key}}}"


class RedisLocks:
    def __init__(
        self,
        client: Redis,
        *,
        fallback: Locks,
        prefix: str = "payonce:",
        breaker: RedisBreaker | None = None,
    ) -> None:
        self._fallback = fallback
        self._breaker = breaker or RedisBreaker()
        self._prefix = prefix
        self._grant = client.register_script(_GRANT)
        self._release = client.register_script(_RELEASE)
        self._releasing: set[asyncio.Task[None]] = set()

    @asynccontextmanager
    async def hold(self, key: str, *, ttl_s: float, wait_s: float) -> AsyncIterator[Lease]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        lock_key = lock_key_of(key, self._prefix)
        owner = secrets.token_hex(16)
        token: int | None = None
        if not self._breaker.open:
            try:
                token = await self._acquire(key, lock_key, owner, ttl_s, deadline)
            except (RedisError, OSError) as exc:  # down, timed out, read-only after a failover…
                self._breaker.failed(exc)
                log.warning("redis unavailable, locking %s in this process only: %s", key, exc)
                # The grant may have happened with its answer lost: don't leave it to its TTL.
                self._release_in_background(lock_key, owner)
        if token is None:
            remaining = max(0.0, deadline - loop.time())
            async with self._fallback.hold(key, ttl_s=ttl_s, wait_s=remaining) as lease:
                yield lease
            return
        try:
            yield Lease(key, token)
        finally:
            try:
                await self._release(keys=[lock_key], args=[owner])
            except (RedisError, OSError) as exc:
                # The caller's work is done and must not fail now. The grant expires on its own,
                # but a Redis that comes back with it (restarted from its snapshot) would make
                # the order wait out the whole TTL: try again in the background for a while.
                log.warning("could not release lock %s: %s; retrying", key, exc)
                self._release_in_background(lock_key, owner)

    def _release_in_background(self, lock_key: str, owner: str) -> None:
        retry = asyncio.create_task(self._release_later(lock_key, owner))
        self._releasing.add(retry)
        retry.add_done_callback(self._releasing.discard)

    async def aclose(self) -> None:
        """Give releases still being retried a moment to finish, then drop them."""
        pending = tuple(self._releasing)
        if pending:
            await asyncio.wait(pending, timeout=1.0)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _release_later(self, lock_key: str, owner: str) -> None:
        for pause in _RELEASE_RETRY_PAUSES_S:
            await asyncio.sleep(pause)
            try:
                await self._release(keys=[lock_key], args=[owner])
                return
            except (RedisError, OSError):
                continue

    async def _acquire(
        self, key: str, lock_key: str, owner: str, ttl_s: float, deadline: float
    ) -> int:
        loop = asyncio.get_running_loop()
        keys = [lock_key, fence_key_of(key, self._prefix)]
        args: list[str | int] = [owner, max(1, round(ttl_s * 1000)), _FENCE_TTL_MS]
        pause = _FIRST_PAUSE_S
        while True:
            token = await self._grant(keys=keys, args=args)
            if token is not None:
                return int(token)
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise LockNotAcquired(f"{key} is held by another request")
            await asyncio.sleep(min(pause, remaining))
            pause = min(pause * 2, _MAX_PAUSE_S)
