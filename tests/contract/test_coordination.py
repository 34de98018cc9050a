"""Contracts of the lock, cache and feed adapters."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from payonce.adapters.cache.memory import InProcessCache
from payonce.adapters.clock import AdjustableClock
from payonce.adapters.feed.memory import InProcessFeed
from payonce.adapters.locks.memory import InProcessLocks
from payonce.adapters.locks.unlocked import NoLocks
from payonce.errors import LockNotAcquired


async def test_the_lock_excludes_until_released_and_tokens_grow(clock: AdjustableClock) -> None:
    locks = InProcessLocks(clock)
    order: list[str] = []

    async def second() -> int:
        async with locks.hold("k", ttl_s=30, wait_s=5) as lease:
            order.append("second")
            return lease.token

    async with locks.hold("k", ttl_s=30, wait_s=5) as first:
        waiter = asyncio.create_task(second())
        await asyncio.sleep(0.05)
        assert order == []  # still waiting
        order.append("first done")
    assert await waiter > first.token
    assert order == ["first done", "second"]


async def test_waiting_too_long_raises(clock: AdjustableClock) -> None:
    locks = InProcessLocks(clock)
    async with locks.hold("k", ttl_s=30, wait_s=1):
        with pytest.raises(LockNotAcquired):
            async with locks.hold("k", ttl_s=30, wait_s=0.05):
                pass
        async with locks.hold("other", ttl_s=30, wait_s=0.05):
            pass  # other keys are free


async def test_an_expired_grant_is_taken_over_and_its_late_release_frees_nothing(
    clock: AdjustableClock,
) -> None:
    locks = InProcessLocks(clock)
    async with locks.hold("k", ttl_s=10, wait_s=1) as stale:
        clock.advance(timedelta(seconds=11))
        async with locks.hold("k", ttl_s=10, wait_s=1) as fresh:
            assert fresh.token > stale.token
    # `stale` released after `fresh`: compare-and-delete kept fresh's release meaningful.
    async with locks.hold("k", ttl_s=10, wait_s=0.05):
        pass


async def test_the_no_lock_excludes_nobody() -> None:
    locks = NoLocks()
    async with locks.hold("k", ttl_s=1, wait_s=0) as a, locks.hold("k", ttl_s=1, wait_s=0) as b:
        assert b.token > a.token


async def test_the_cache_expires_on_the_injected_clock(clock: AdjustableClock) -> None:
    cache = InProcessCache(clock)
    await cache.set("a", "1", ttl_s=10)
    assert await cache.get("a") == "1"
    clock.advance(timedelta(seconds=10))
    assert await cache.get("a") is None
    await cache.set("b", "2", ttl_s=10)
    await cache.delete("b", "missing")
    assert await cache.get("b") is None


async def test_the_feed_fans_out_per_order() -> None:
    feed = InProcessFeed()
    async with (
        feed.subscribe("o1") as one,
        feed.subscribe("o1") as two,
        feed.subscribe("o2") as other,
    ):
        await feed.publish("o1", {"status_version": 2})
        assert await one.next(1) == {"status_version": 2}
        assert await two.next(1) == {"status_version": 2}
        assert await other.next(0.01) is None
    await feed.publish("o1", {"status_version": 3})  # nobody listening: nothing kept
