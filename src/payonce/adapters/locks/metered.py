"""Measures how long each grant of the per-order lock was waited for."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from payonce.errors import LockNotAcquired
from payonce.ports.locks import Lease, Locks
from payonce.ports.metrics import Metrics


class MeteredLocks:
    """A lock adapter as it is, the wait for each grant measured into ``metrics``."""

    def __init__(self, inner: Locks, metrics: Metrics) -> None:
        self.inner = inner
        self._metrics = metrics

    def hold(self, key: str, *, ttl_s: float, wait_s: float) -> AbstractAsyncContextManager[Lease]:
        return self._hold(key, ttl_s=ttl_s, wait_s=wait_s)

    @asynccontextmanager
    async def _hold(self, key: str, *, ttl_s: float, wait_s: float) -> AsyncIterator[Lease]:
        started = time.perf_counter()
        granted = False
        try:
            async with self.inner.hold(key, ttl_s=ttl_s, wait_s=wait_s) as lease:
                granted = True
                self._metrics.lock_waited(time.perf_counter() - started, acquired=True)
                yield lease
        except LockNotAcquired:
            if not granted:
                self._metrics.lock_waited(time.perf_counter() - started, acquired=False)
            raise
