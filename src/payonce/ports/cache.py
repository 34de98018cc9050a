"""The result-cache port: a fast path for repeated clicks, written after commit, never the truth."""

from __future__ import annotations

from typing import Protocol


class Cache(Protocol):
    async def get(self, key: str) -> str | None: ...

    async def set(self, key: str, value: str, *, ttl_s: float) -> None: ...

    async def delete(self, *keys: str) -> None: ...
