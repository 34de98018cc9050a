"""A lock that never excludes anyone: grants overlap freely, so only the database can decide.

Shipped for the tests and the chaos harness that prove "at most once" does not rest on locks.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from payonce.ports.locks import Lease


class NoLocks:
    def __init__(self) -> None:
        self._tokens = itertools.count(time.time_ns())

    @asynccontextmanager
    async def hold(self, key: str, *, ttl_s: float, wait_s: float) -> AsyncIterator[Lease]:
        yield Lease(key, next(self._tokens))
