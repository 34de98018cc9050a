"""The per-order lock port: mutual exclusion that saves work, with a fencing token per grant.

A lock is an optimisation, never the guarantee: its grants may overlap (expiry, a lost Redis),
so every write made under it carries ``Lease.token`` and the database refuses a stale one.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Lease:
    key: str
    token: int  # strictly increases with every grant of the same key


class Locks(Protocol):
    def hold(self, key: str, *, ttl_s: float, wait_s: float) -> AbstractAsyncContextManager[Lease]:
        """Hold ``key`` for at most ``ttl_s``; raise ``LockNotAcquired`` after ``wait_s``."""
        ...
