"""What only the Redis adapters promise: across processes, across a lost Redis, on the stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from payonce.adapters.cache.redis import RedisCache
from payonce.adapters.clock import AdjustableClock
from payonce.adapters.events.redis_stream import RedisEventStream, StreamReader
from payonce.adapters.feed.redis import RedisFeed
from payonce.adapters.locks.memory import InProcessLocks
from payonce.adapters.locks.redis import RedisLocks, fence_key_of, lock_key_of
from payonce.adapters.locks.unlocked import NoLocks
from payonce.adapters.redis_breaker import RedisBreaker, RedisSkipped
from payonce.domain.events import Event, Topic
from payonce.domain.ids import EventId, OrderId, PaymentId
from payonce.errors import LockNotAcquired
from payonce.ports.feed import Subscription
from payonce.service.context import EventConsumer

RedisFactory = Callable[..., Redis]
LOCK_KEY = lock_key_of("k")

# Locks ---------------------------------------------------------------------------------------


async def test_locks_on_two_clients_exclude_each_other_and_tokens_grow_across_a_flush(
    redis_clients: RedisFactory, clock: AdjustableClock
) -> None:
    a = RedisLocks(redis_clients(), fallback=InProcessLocks(clock))
    b = RedisLocks(redis_clients(), fallback=InProcessLocks(clock))
    admin = redis_clients()
    async with a.hold("k", ttl_s=30, wait_s=1) as first:
        with pytest.raises(LockNotAcquired):
            async with b.hold("k", ttl_s=30, wait_s=0.05):
                pass
        waiter = asyncio.create_task(_token_of(b, "k"))
        await asyncio.sleep(0.05)
        assert not waiter.done()
    second = await waiter
    await admin.flushall()  # the fence key is gone: the clock keeps tokens growing
    async with a.hold("k", ttl_s=30, wait_s=1) as third:
        pass
    assert first.token < second < third.token
    assert await admin.exists(LOCK_KEY) == 0


async def _token_of(locks: RedisLocks, key: str) -> int:
    async with locks.hold(key, ttl_s=30, wait_s=5) as lease:
        return lease.token


async def test_the_grant_sets_the_ttl_and_moves_past_a_fence_ahead_of_the_clock(
    redis_client: Redis, clock: AdjustableClock
) -> None:
    locks = RedisLocks(redis_client, fallback=InProcessLocks(clock))
    ahead = 2**52  # microseconds far past now, still exact in a Lua double
    await redis_client.set(fence_key_of("k"), ahead)
    async with locks.hold("k", ttl_s=30, wait_s=1) as lease:
        assert lease.token == ahead + 1
        assert 0 < await redis_client.pttl(LOCK_KEY) <= 30_000
    assert int(await redis_client.get(fence_key_of("k"))) == ahead + 1
    assert 0 < await redis_client.pttl(fence_key_of("k")) <= 7 * 24 * 3600 * 1000


async def test_tokens_grow_across_restarts_and_across_adapters(
    redis_client: Redis, clock: AdjustableClock
) -> None:
    tokens = []
    for locks in (
        InProcessLocks(clock),
        RedisLocks(redis_client, fallback=InProcessLocks(clock)),
        NoLocks(),
        InProcessLocks(clock),  # a restarted process
        RedisLocks(redis_client, fallback=InProcessLocks(clock), prefix="other:"),
    ):
        async with locks.hold("k", ttl_s=30, wait_s=1) as lease:
            tokens.append(lease.token)
    assert tokens == sorted(set(tokens))


async def test_a_late_release_leaves_the_new_holders_key_alone(
    redis_client: Redis, clock: AdjustableClock
) -> None:
    locks = RedisLocks(redis_client, fallback=InProcessLocks(clock))
    stale_hold = locks.hold("k", ttl_s=30, wait_s=1)
    stale = await stale_hold.__aenter__()
    stale_owner = await redis_client.get(LOCK_KEY)
    assert await redis_client.pexpire(LOCK_KEY, 1)
    async with locks.hold("k", ttl_s=30, wait_s=5) as fresh:
        fresh_owner = await redis_client.get(LOCK_KEY)
        assert fresh.token > stale.token
        assert fresh_owner not in (None, stale_owner)
        await stale_hold.__aexit__(None, None, None)
        assert await redis_client.get(LOCK_KEY) == fresh_owner
    assert await redis_client.exists(LOCK_KEY) == 0


async def test_a_grant_repeated_after_its_answer_was_lost_gets_the_same_token(
    redis_client: Redis, clock: AdjustableClock
) -> None:
    # What redis-py does after a time-out: it sends the same script with the same owner again.
    locks = RedisLocks(redis_client, fallback=InProcessLocks(clock))
    keys, args = [LOCK_KEY, fence_key_of("k")], ["owner-1", 30_000, 60_000]
    granted = await locks._grant(keys=keys, args=args)
    assert await locks._grant(keys=keys, args=args) == granted
    assert await locks._grant(keys=keys, args=["owner-2", 30_000, 60_000]) is None
    assert await locks._release(keys=[LOCK_KEY], args=["owner-2"]) == 0
    assert await locks._release(keys=[LOCK_KEY], args=["owner-1"]) == 1


async def test_a_read_only_redis_makes_the_lock_fall_back_instead_of_failing(
    redis_clients: RedisFactory, clock: AdjustableClock
) -> None:
    admin = redis_clients()
    locks = RedisLocks(redis_clients(), fallback=InProcessLocks(clock))
    # A replica of a primary that is not there refuses writes with READONLY, as after a failover.
    await admin.replicaof("127.0.0.1", "1")
    try:
        async with locks.hold("k", ttl_s=30, wait_s=1) as lease:
            assert lease.token > 0
            with pytest.raises(LockNotAcquired):  # still exclusive within this process
                async with locks.hold("k", ttl_s=30, wait_s=0.05):
                    pass
    finally:
        await admin.replicaof("NO", "ONE")
    await locks.aclose()


# Redis unreachable ---------------------------------------------------------------------------


async def test_without_redis_the_lock_falls_back_to_this_process(
    dead_redis: Redis, clock: AdjustableClock
) -> None:
    locks = RedisLocks(dead_redis, fallback=InProcessLocks(clock))
    async with locks.hold("k", ttl_s=30, wait_s=1) as first:
        with pytest.raises(LockNotAcquired):
            async with locks.hold("k", ttl_s=30, wait_s=0.05):
                pass
    async with locks.hold("k", ttl_s=30, wait_s=0.05) as second:
        assert second.token > first.token


async def test_without_redis_the_cache_misses_and_never_raises(dead_redis: Redis) -> None:
    cache = RedisCache(dead_redis)
    await cache.set("a", "1", ttl_s=10)
    assert await cache.get("a") is None
    await cache.delete("a", "b")


async def test_without_redis_the_feed_still_delivers_in_this_process(dead_redis: Redis) -> None:
    feed = RedisFeed(dead_redis)
    try:
        async with feed.subscribe("o1") as one, feed.subscribe("o1") as two:
            await feed.publish("o1", {"status_version": 1})
            assert await one.next(1) == {"status_version": 1}
            assert await two.next(1) == {"status_version": 1}
            assert await one.next(0.01) is None
    finally:
        await feed.aclose()


# Feed across processes -----------------------------------------------------------------------


@pytest.fixture
async def feeds(redis_clients: RedisFactory) -> AsyncIterator[list[RedisFeed]]:
    made = [RedisFeed(redis_clients()), RedisFeed(redis_clients())]
    yield made
    for feed in made:
        await feed.aclose()


async def _next_messages(subscription: Subscription, count: int) -> list[Mapping[str, Any]]:
    messages = []
    for _ in range(count):
        message = await subscription.next(5)
        assert message is not None
        messages.append(message)
    return messages


async def test_a_message_published_in_one_process_reaches_the_others_subscribers(
    feeds: list[RedisFeed],
) -> None:
    a, b = feeds
    async with a.subscribe("o1") as on_a, a.subscribe("o2") as other_on_a:
        await b.publish("o1", {"status_version": 2})
        assert await _next_messages(on_a, 1) == [{"status_version": 2}]
        assert await other_on_a.next(0.05) is None


async def test_pings_of_a_quiet_connection_disturb_nothing_and_news_resumes_after_a_stall(
    redis_clients: RedisFactory,
) -> None:
    # Replacing a connection whose peer vanished without a word needs a network that drops
    # packets, which this test cannot make; it shows the pings and a stall do no harm.
    admin = redis_clients()
    listener = RedisFeed(redis_clients(), ping_every_s=0.1)
    publisher = RedisFeed(redis_clients())
    try:
        async with listener.subscribe("o1") as on_listener:
            await asyncio.sleep(0.5)  # quiet: pings go out, their pongs are no messages
            await publisher.publish("o1", {"status_version": 2})
            assert await _next_messages(on_listener, 1) == [{"status_version": 2}]
            # Redis stops answering for longer than three pings without closing anything.
            await admin.execute_command("CLIENT", "PAUSE", "600", "ALL")
            for version in range(3, 103):  # once Redis answers again, news flows again
                await publisher.publish("o1", {"status_version": version})
                if (message := await on_listener.next(0.1)) is not None:
                    assert message["status_version"] >= 3
                    break
            else:
                raise AssertionError("no message after Redis answered again")
    finally:
        await admin.execute_command("CLIENT", "UNPAUSE")
        await listener.aclose()
        await publisher.aclose()


async def test_a_publisher_s_own_subscriber_gets_its_message_once(feeds: list[RedisFeed]) -> None:
    a, b = feeds
    async with a.subscribe("o1") as on_a:
        await a.publish("o1", {"status_version": 2})
        # Redis hands a's echo to a before b's later message: once b's is in, any echo was too.
        await b.publish("o1", {"status_version": 3})
        assert await _next_messages(on_a, 2) == [{"status_version": 2}, {"status_version": 3}]
        assert await on_a.next(0.05) is None


async def test_the_channel_is_unsubscribed_when_the_last_subscriber_leaves(
    feeds: list[RedisFeed], redis_client: Redis
) -> None:
    a, _ = feeds
    channel = "payonce:order:o1"
    async with a.subscribe("o1"):
        async with a.subscribe("o1"):
            assert await redis_client.pubsub_numsub(channel) == [(channel.encode(), 1)]
        assert await redis_client.pubsub_numsub(channel) == [(channel.encode(), 1)]
    for _ in range(250):
        if await redis_client.pubsub_numsub(channel) == [(channel.encode(), 0)]:
            break
        await asyncio.sleep(0.02)
    assert await redis_client.pubsub_numsub(channel) == [(channel.encode(), 0)]


@pytest.mark.parametrize("retries", [0, 3], ids=["own-reconnect", "client-retries"])
async def test_the_listener_recovers_after_its_connection_is_killed(
    redis_clients: RedisFactory, retries: int
) -> None:
    a = RedisFeed(redis_clients(retry=Retry(NoBackoff(), retries)))
    b = RedisFeed(redis_clients())
    admin = redis_clients()
    try:
        async with a.subscribe("o1") as on_a:
            assert await admin.client_kill_filter(_type="pubsub") == 1
            for attempt in range(100):
                await b.publish("o1", {"attempt": attempt})
                if (message := await on_a.next(0.1)) is not None:
                    break
            assert message is not None
            await b.publish("o1", {"after": True})
            while message != {"after": True}:  # earlier attempts may still trickle in
                message = await on_a.next(5)
                assert message is not None
    finally:
        await a.aclose()
        await b.aclose()


# Event stream --------------------------------------------------------------------------------


def _event(n: int) -> Event:
    return Event(
        id=EventId(f"evt_{n}"),
        topic=Topic.PAYMENT_SUCCEEDED if n % 2 else Topic.PAYMENT_EXTRA_CAPTURED,
        order_id=OrderId(f"ord_{n}"),
        payment_id=PaymentId(f"pay_{n}"),
        payload={"amount": 100 * n, "currency": "CNY", "provider_trade_no": None, "n": [n]},
        occurred_at=datetime(2026, 11, 24, 8, 0, n, 123456, tzinfo=UTC),
    )


async def test_the_stream_consumes_every_topic(redis_client: Redis) -> None:
    stream: EventConsumer = RedisEventStream(redis_client)
    assert stream.name == "stream"
    assert stream.topics == frozenset(Topic)


async def test_readers_of_one_group_share_the_events_without_overlap(
    redis_clients: RedisFactory,
) -> None:
    stream = RedisEventStream(redis_clients())
    one = StreamReader(redis_clients(), group="orders", consumer="one")
    two = StreamReader(redis_clients(), group="orders", consumer="two")
    await one.ensure_group()
    await two.ensure_group()  # already there: no error
    events = [_event(n) for n in range(1, 6)]
    for event in events:
        await stream.handle(event)
    first = await one.read(count=2)
    second = await two.read(count=10)
    assert [event for _, event in first] == events[:2]
    assert [event for _, event in second] == events[2:]
    assert len({entry for entry, _ in first + second}) == 5
    assert await one.read(count=10) == []
    await one.ack(*(entry for entry, _ in first))
    await two.ack(*(entry for entry, _ in second))
    assert await one.reclaim(min_idle_ms=0) == []


async def test_an_unacked_entry_of_a_dead_reader_is_reclaimed(redis_clients: RedisFactory) -> None:
    stream = RedisEventStream(redis_clients())
    dead = StreamReader(redis_clients(), group="orders", consumer="dead")
    alive = StreamReader(redis_clients(), group="orders", consumer="alive")
    await dead.ensure_group()
    await stream.handle(_event(1))
    await stream.handle(_event(2))
    taken = await dead.read(count=1)
    assert [event for _, event in taken] == [_event(1)]
    # The dead reader's entry is pending for it alone: a new read skips it.
    given = await alive.read(count=10)
    assert [event for _, event in given] == [_event(2)]
    await alive.ack(*(entry for entry, _ in given))
    reclaimed = await alive.reclaim(min_idle_ms=0)
    assert reclaimed == taken
    await alive.ack(*(entry for entry, _ in reclaimed))
    assert await alive.reclaim(min_idle_ms=0) == []
    assert await dead.read(count=10) == []


async def test_a_reader_whose_group_vanished_with_redis_makes_it_again(
    redis_clients: RedisFactory,
) -> None:
    admin = redis_clients()
    stream = RedisEventStream(redis_clients())
    reader = StreamReader(redis_clients(), group="orders", consumer="one")
    await reader.ensure_group()
    await admin.flushall()  # Redis restarted empty
    assert await reader.read(count=10) == []
    await stream.handle(_event(1))
    assert [event for _, event in await reader.read(count=10)] == [_event(1)]


# The breaker ---------------------------------------------------------------------------------


class _Monotonic:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_a_redis_that_failed_to_answer_is_skipped_for_a_while_then_tried_again(
    redis_client: Redis, dead_redis: Redis, clock: AdjustableClock
) -> None:
    time = _Monotonic()
    breaker = RedisBreaker(open_for_s=5, now=time)
    await RedisCache(dead_redis, breaker=breaker).get("a")  # refused: the breaker opens
    assert breaker.open

    # While open, every part takes its fallback without asking Redis, though it would answer.
    cache = RedisCache(redis_client, breaker=breaker)
    await redis_client.set("payonce:cache:a", "1")
    assert await cache.get("a") is None
    locks = RedisLocks(redis_client, fallback=InProcessLocks(clock), breaker=breaker)
    async with locks.hold("k", ttl_s=30, wait_s=1):
        assert await redis_client.exists(LOCK_KEY) == 0  # held in this process only
    with pytest.raises(RedisSkipped):  # the outbox keeps the event and retries it later
        await RedisEventStream(redis_client, breaker=breaker).handle(_event(1))
    assert await redis_client.exists("payonce:events") == 0

    time.now += 5  # after a while, Redis is asked again
    assert await cache.get("a") == "1"
    async with locks.hold("k", ttl_s=30, wait_s=1):
        assert await redis_client.exists(LOCK_KEY) == 1
    assert not breaker.open


async def test_a_refusal_is_an_answer_and_does_not_open_the_breaker(
    redis_clients: RedisFactory, clock: AdjustableClock
) -> None:
    admin = redis_clients()
    breaker = RedisBreaker()
    locks = RedisLocks(redis_clients(), fallback=InProcessLocks(clock), breaker=breaker)
    await admin.replicaof("127.0.0.1", "1")  # READONLY: Redis answers, it just says no
    try:
        async with locks.hold("k", ttl_s=30, wait_s=1):
            pass
    finally:
        await admin.replicaof("NO", "ONE")
    assert not breaker.open
