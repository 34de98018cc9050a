"""In-process per-order locks with a time-to-live on the injected clock and fencing tokens."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from payonce.errors import LockNotAcquired
from payonce.ports.clock import Clock
from payonce.ports.locks import Lease

# How often a waiter re-checks for a grant that expired without being released.
_RECHECK_S = 0.05


@dataclass(frozen=True, slots=True)
class _Grant:
    token: int
    expires_at: datetime


def next_token(last: int) -> int:
    """The next fencing token: wall-clock microseconds, and always past the last one.

    Tokens must keep growing across restarts and across a switch to Redis (whose tokens follow
    the same rule), or the database would refuse every write after one.
    """
    return max(last + 1, time.time_ns() // 1000)


class InProcessLocks:
    """One process's locks. A grant past its TTL may be taken over; the fence catches the loser."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._held: dict[str, _Grant] = {}
        self._changed = asyncio.Condition()
        self._last_token = 0

    @asynccontextmanager
    async def hold(self, key: str, *, ttl_s: float, wait_s: float) -> AsyncIterator[Lease]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        async with self._changed:
            while (grant := self._held.get(key)) is not None and (
                grant.expires_at > self._clock.now()
            ):
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise LockNotAcquired(f"{key} is held by another request")
                try:
                    await asyncio.wait_for(self._changed.wait(), min(remaining, _RECHECK_S))
                except TimeoutError:
                    continue
            token = self._last_token = next_token(self._last_token)
            self._held[key] = _Grant(token, self._clock.now() + timedelta(seconds=ttl_s))
        try:
            yield Lease(key, token)
        finally:
            async with self._changed:
                # Compare-and-delete: never release a grant that was taken over after expiry.
                current = self._held.get(key)
                if current is not None and current.token == token:
                    del self._held[key]
                self._changed.notify_all()
