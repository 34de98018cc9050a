"""The Redis circuit breaker: once Redis failed to answer, skip it for a few seconds.

A Redis that refuses connections fails in a millisecond, but one that vanished without a word
(a partition, a dropped NAT entry) costs a time-out on every call: several per request. Every
Redis adapter of a process shares one breaker; while it is open they take their fallbacks at
once (the process's own lock, a cache miss, local-only push, an outbox retry later). Transport
time, so real (monotonic) time, like the lock's waits.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# Only these say "Redis is not there"; a refusal (READONLY, OOM) answers fast, so it is not one.
_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)


class RedisSkipped(RedisConnectionError):
    """Raised instead of calling Redis while the breaker is open."""


class RedisBreaker:
    def __init__(
        self, *, open_for_s: float = 5.0, now: Callable[[], float] = time.monotonic
    ) -> None:
        self._open_for_s = open_for_s
        self._now = now
        self._until = 0.0

    @property
    def open(self) -> bool:
        return self._now() < self._until

    def check(self) -> None:
        """Raise RedisSkipped while open; after that, the next call tries Redis again."""
        if self.open:
            raise RedisSkipped("redis did not answer a moment ago; skipped for now")

    def failed(self, error: BaseException) -> None:
        if isinstance(error, _UNREACHABLE) and not isinstance(error, RedisSkipped):
            self._until = self._now() + self._open_for_s
