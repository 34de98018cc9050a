"""Which lock, cache, push feed and event stream a process runs: in-process, or shared in Redis.

Redis is an optional extra (``payonce[redis]``), imported only when ``PAYONCE_REDIS_URL`` is
set. Whatever Redis does, it is never the only copy of anything that matters: the lock falls
back to this process's own lock (the database's constraints and fence decide), the cache
misses, the feed still reaches this process's subscribers, and the outbox keeps every event.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from payonce.adapters.cache.memory import InProcessCache
from payonce.adapters.feed.memory import InProcessFeed
from payonce.adapters.locks.memory import InProcessLocks
from payonce.adapters.rate_limits.windows import DEFAULT_LIMITS, WindowRateLimits
from payonce.config import Settings
from payonce.errors import PayonceError
from payonce.ports.cache import Cache
from payonce.ports.clock import Clock
from payonce.ports.feed import Feed
from payonce.ports.locks import Locks
from payonce.ports.rate_limits import LimitedCall, LimitScope, RateLimits
from payonce.service.context import EventConsumer

# Redis answers in well under a millisecond; one that takes this long is treated as gone.
_SOCKET_TIMEOUT_S = 2.0
_CONNECT_TIMEOUT_S = 1.0


class RedisExtraMissing(PayonceError):
    code = "redis_extra_missing"
    title = "PAYONCE_REDIS_URL is set but redis-py is not installed"
    http_status = 500


async def _nothing() -> None:
    return None


@dataclass
class Coordination:
    """The adapters behind the lock, cache and feed ports, and extra event consumers."""

    locks: Locks
    cache: Cache
    feed: Feed
    streams: tuple[EventConsumer, ...] = ()
    aclose: Callable[[], Awaitable[None]] = field(default=_nothing)
    # Answers when the shared parts (Redis) are reachable, raises otherwise; None in-process.
    ping: Callable[[], Awaitable[None]] | None = None
    # The rate limits' windows (None when PAYONCE_RATE_LIMITING=off).
    rate_limits: RateLimits | None = None


def limits_of(settings: Settings) -> dict[LimitedCall, dict[LimitScope, str]]:
    """The default limits, with what settings change."""
    return {
        call: {**scopes, **settings.rate_limits.get(call, {})}
        for call, scopes in DEFAULT_LIMITS.items()
    }


def coordination(settings: Settings, clock: Clock, *, locks: Locks | None = None) -> Coordination:
    """In-process parts without ``redis_url``; Redis ones with it. ``locks`` overrides the lock."""
    limited = settings.rate_limiting == "on"
    if settings.redis_url is None:
        return Coordination(
            locks=locks or InProcessLocks(clock),
            cache=InProcessCache(clock),
            feed=InProcessFeed(),
            rate_limits=WindowRateLimits.in_process(limits_of(settings)) if limited else None,
        )
    try:
        import redis.asyncio as redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        from payonce.adapters.cache.redis import RedisCache
        from payonce.adapters.events.redis_stream import RedisEventStream
        from payonce.adapters.feed.redis import RedisFeed
        from payonce.adapters.locks.redis import RedisLocks
        from payonce.adapters.redis_breaker import RedisBreaker
    except ModuleNotFoundError as error:
        raise RedisExtraMissing(
            f"`pip install 'payonce[redis]'` ({error.name} is missing)"
        ) from error

    client = redis.Redis.from_url(
        settings.redis_url,
        socket_timeout=_SOCKET_TIMEOUT_S,
        socket_connect_timeout=_CONNECT_TIMEOUT_S,
        health_check_interval=30,
        # One quick retry (a dropped pooled connection), then the fallbacks take over: a Redis
        # that is down must cost milliseconds, not the default's seconds of backoff.
        retry=Retry(NoBackoff(), 1),
    )
    # One breaker for the process: a Redis that stopped answering is skipped by every part.
    breaker = RedisBreaker()
    feed = RedisFeed(client, breaker=breaker)
    redis_locks = RedisLocks(client, fallback=InProcessLocks(clock), breaker=breaker)

    async def ping() -> None:
        answer = client.ping()  # (redis-py before 8 types it sync-or-async)
        if inspect.isawaitable(answer):
            await answer

    async def aclose() -> None:
        await redis_locks.aclose()
        await feed.aclose()
        await client.aclose()

    return Coordination(
        locks=locks or redis_locks,
        cache=RedisCache(client, breaker=breaker),
        feed=feed,
        streams=(RedisEventStream(client, breaker=breaker),),
        aclose=aclose,
        ping=ping,
        rate_limits=(
            WindowRateLimits.in_redis(
                settings.redis_url,
                limits_of(settings),
                connection_pool=client.connection_pool,
                breaker=breaker,
            )
            if limited
            else None
        ),
    )
