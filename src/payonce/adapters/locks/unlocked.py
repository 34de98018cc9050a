"""A lock that never excludes anyone: grants overlap freely, so only the database can decide.

Shipped for the tests and the chaos harness that prove "at most once" does not rest on locks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from payonce.adapters.locks.memory import next_token
from payonce.ports.locks import Lease


class NoLocks:
    def __init__(self) -> None:
        self._last_token = 0

    @asynccontextmanager
    async def hold(self, key: str, *, ttl_s: float, wait_s: float) -> AsyncIterator[Lease]:
        self._last_token = next_token(self._last_token)
        yield Lease(key, self._last_token)
