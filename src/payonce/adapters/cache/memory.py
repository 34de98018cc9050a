"""An in-process TTL map for the result cache, expiring on the injected clock."""

from __future__ import annotations

from datetime import datetime, timedelta

from payonce.ports.clock import Clock

_MAX_ENTRIES = 100_000


class InProcessCache:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._entries: dict[str, tuple[str, datetime]] = {}

    async def get(self, key: str) -> str | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, expires_at = entry
        if expires_at <= self._clock.now():
            self._entries.pop(key, None)
            return None
        return value

    async def set(self, key: str, value: str, *, ttl_s: float) -> None:
        now = self._clock.now()
        if len(self._entries) >= _MAX_ENTRIES:
            self._entries = {k: v for k, v in self._entries.items() if v[1] > now}
            if len(self._entries) >= _MAX_ENTRIES:
                self._entries.clear()
        self._entries[key] = (value, now + timedelta(seconds=ttl_s))

    async def delete(self, *keys: str) -> None:
        for key in keys:
            self._entries.pop(key, None)
