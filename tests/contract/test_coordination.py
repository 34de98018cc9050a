"""Contracts of the lock, cache and feed adapters: in-process and Redis alike."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from redis.asyncio import Redis

from payonce.adapters.cache.memory import InProcessCache
from payonce.adapters.cache.redis import RedisCache
from payonce.adapters.clock import AdjustableClock
from payonce.adapters.feed.memory import InProcessFeed
from payonce.adapters.feed.redis import RedisFeed
from payonce.adapters.locks.memory import InProcessLocks
from payonce.adapters.locks.redis import RedisLocks, lock_key_of
from payonce.adapters.locks.unlocked import NoLocks
from payonce.errors import LockNotAcquired
from payonce.ports.cache import Cache
from payonce.ports.feed import Feed
from payonce.ports.locks import Locks

BACKENDS = ["memory", "redis"]


@dataclass
class LockBackend:
    locks: Locks
    # Ends the current grant of a key as its TTL would: in-process by moving the clock, in
    # Redis by deleting the lock key (Redis TTLs run on real time, which tests never wait for).
    expire: Callable[[str], Awaitable[None]]


@dataclass
class CacheBackend:
    cache: Cache
    # Checks the entry carries a TTL of ``ttl_s`` at most, then lets it run out.
    expire: Callable[[str, float], Awaitable[None]]


@pytest.fixture(params=BACKENDS)
def lock_backend(request: pytest.FixtureRequest, clock: AdjustableClock) -> LockBackend:
    if request.param == "memory":

        async def advance(key: str) -> None:
            clock.advance(timedelta(hours=1))

        return LockBackend(InProcessLocks(clock), advance)
    client = request.getfixturevalue("redis_clients")()

    async def delete(key: str) -> None:
        assert await client.delete(lock_key_of(key)) == 1

    return LockBackend(RedisLocks(client, fallback=InProcessLocks(clock)), delete)


@pytest.fixture(params=BACKENDS)
def cache_backend(request: pytest.FixtureRequest, clock: AdjustableClock) -> CacheBackend:
    if request.param == "memory":

        async def advance(key: str, ttl_s: float) -> None:
            clock.advance(timedelta(seconds=ttl_s))

        return CacheBackend(InProcessCache(clock), advance)
    client = request.getfixturevalue("redis_clients")()

    async def run_out(key: str, ttl_s: float) -> None:
        assert 0 < await client.pttl(f"payonce:cache:{key}") <= ttl_s * 1000
        assert await client.delete(f"payonce:cache:{key}") == 1

    return CacheBackend(RedisCache(client), run_out)


@pytest.fixture(params=BACKENDS)
def feed_client(request: pytest.FixtureRequest) -> Redis | None:
    """The Redis client the feed under test runs on; None for the in-process feed."""
    if request.param == "memory":
        return None
    client: Redis = request.getfixturevalue("redis_clients")()
    return client


@pytest.fixture
async def feed(feed_client: Redis | None) -> AsyncIterator[Feed]:
    if feed_client is None:
        yield InProcessFeed()
        return
    redis_feed = RedisFeed(feed_client)
    yield redis_feed
    await redis_feed.aclose()


async def test_the_lock_excludes_until_released_and_tokens_grow(lock_backend: LockBackend) -> None:
    locks = lock_backend.locks
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


async def test_waiting_too_long_raises(lock_backend: LockBackend) -> None:
    locks = lock_backend.locks
    async with locks.hold("k", ttl_s=30, wait_s=1):
        with pytest.raises(LockNotAcquired):
            async with locks.hold("k", ttl_s=30, wait_s=0.05):
                pass
        async with locks.hold("other", ttl_s=30, wait_s=0.05):
            pass  # other keys are free


async def test_an_expired_grant_is_taken_over_and_its_late_release_frees_nothing(
    lock_backend: LockBackend,
) -> None:
    locks = lock_backend.locks
    stale_hold = locks.hold("k", ttl_s=10, wait_s=1)
    stale = await stale_hold.__aenter__()
    await lock_backend.expire("k")
    async with locks.hold("k", ttl_s=10, wait_s=1) as fresh:
        assert fresh.token > stale.token
        await stale_hold.__aexit__(None, None, None)  # the stale holder finishes late
        with pytest.raises(LockNotAcquired):  # compare-and-delete: fresh still holds it
            async with locks.hold("k", ttl_s=10, wait_s=0.05):
                pass
    async with locks.hold("k", ttl_s=10, wait_s=0.05):
        pass


async def test_a_failing_body_still_releases(lock_backend: LockBackend) -> None:
    locks = lock_backend.locks
    with pytest.raises(RuntimeError, match="boom"):
        async with locks.hold("k", ttl_s=30, wait_s=1):
            raise RuntimeError("boom")
    async with locks.hold("k", ttl_s=30, wait_s=0.05):
        pass


async def test_the_no_lock_excludes_nobody() -> None:
    locks = NoLocks()
    async with locks.hold("k", ttl_s=1, wait_s=0) as a, locks.hold("k", ttl_s=1, wait_s=0) as b:
        assert b.token > a.token


async def test_the_cache_expires(cache_backend: CacheBackend) -> None:
    cache = cache_backend.cache
    await cache.set("a", "1", ttl_s=10)
    assert await cache.get("a") == "1"
    await cache_backend.expire("a", 10)
    assert await cache.get("a") is None
    await cache.set("b", "2", ttl_s=10)
    await cache.delete("b", "missing")
    assert await cache.get("b") is None
    await cache.set("c", "3", ttl_s=10)
    await cache.set("c", "4", ttl_s=10)
    assert await cache.get("c") == "4"
    assert await cache.get("never") is None


async def test_the_feed_fans_out_per_order(feed: Feed) -> None:
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
    async with feed.subscribe("o1") as late:
        assert await late.next(0.05) is None
