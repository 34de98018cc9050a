"""Per-order change messages fanned out across processes through Redis pub/sub.

A message reaches this process's own subscribers directly, as with the in-process feed, and
other processes through channel ``{prefix}order:{order_id}``. Each feed keeps one pub/sub
connection, subscribed to exactly the orders that have a local subscriber; a listener task
delivers what other processes publish and rebuilds the connection when it breaks. Redis being
down never fails a publish or a subscribe: subscribers then only hear this process until it is
back, and a missed message costs a client a poll (every message carries ``status_version``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import AsyncIterator, Mapping
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from payonce.adapters.feed.memory import InProcessFeed
from payonce.adapters.redis_breaker import RedisBreaker
from payonce.ports.feed import Subscription

log = logging.getLogger(__name__)

_FIRST_PAUSE_S = 0.05
_MAX_PAUSE_S = 2.0
# A quiet pub/sub connection is pinged this often, and given up as dead (a peer gone without a
# word: a failover, a dropped NAT entry) after three pings without any answer.
_PING_EVERY_S = 10.0
_POLL_S = 1.0


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisFeed:
    def __init__(
        self,
        client: Redis,
        *,
        prefix: str = "payonce:",
        subscribe_wait_s: float = 1.0,
        ping_every_s: float = _PING_EVERY_S,
        breaker: RedisBreaker | None = None,
    ) -> None:
        self._client = client
        self._breaker = breaker or RedisBreaker()
        self._ping_every_s = ping_every_s
        self._channel_prefix = f"{prefix}order:"
        # Tells our own messages apart when Redis echoes them back to us.
        self._origin = secrets.token_hex(8)
        self._own_channel = f"{prefix}feed:{self._origin}"
        # How long a subscribe waits for Redis to confirm, so that a caller who reads the
        # current state after subscribing misses no change made elsewhere in between.
        self._subscribe_wait_s = subscribe_wait_s
        self._local = InProcessFeed()
        self._subscribers: dict[str, int] = {}
        # Per channel: set once Redis confirmed the SUBSCRIBE, or once the connection failed.
        self._settled: dict[str, asyncio.Event] = {}
        self._pubsub: PubSub | None = None  # connected, open to SUBSCRIBE/UNSUBSCRIBE
        self._remote: set[str] = set()  # channels subscribed on self._pubsub
        self._current: PubSub | None = None  # the listener's, connected or not, for aclose
        # Serialises subscription changes, and keeps a closing connection from being reopened
        # by a SUBSCRIBE in flight.
        self._sync_lock = asyncio.Lock()
        self._listener: asyncio.Task[None] | None = None
        self._down = False
        self._closed = False

    async def publish(self, order_id: str, message: Mapping[str, Any]) -> None:
        await self._local.publish(order_id, message)
        envelope = json.dumps({"origin": self._origin, "message": dict(message)})
        try:
            self._breaker.check()
            await self._client.publish(self._channel(order_id), envelope)
        except (RedisError, OSError) as exc:
            self._breaker.failed(exc)
            log.warning("feed publish for %s reached this process only: %s", order_id, exc)

    @contextlib.asynccontextmanager
    async def subscribe(self, order_id: str) -> AsyncIterator[Subscription]:
        channel = self._channel(order_id)
        async with self._local.subscribe(order_id) as subscription:
            self._subscribers[order_id] = self._subscribers.get(order_id, 0) + 1
            try:
                await self._attach(channel)
                yield subscription
            finally:
                left = self._subscribers[order_id] - 1
                if left:
                    self._subscribers[order_id] = left
                else:
                    del self._subscribers[order_id]
                    if channel not in self._remote:
                        self._settled.pop(channel, None)
                    await self._sync_quietly()

    async def aclose(self) -> None:
        self._closed = True
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
        self._pubsub = None
        current, self._current = self._current, None
        if current is not None:
            await self._close(current)

    def _channel(self, order_id: str) -> str:
        return self._channel_prefix + order_id

    async def _attach(self, channel: str) -> None:
        if self._closed:
            return
        if self._listener is None or self._listener.done():
            self._listener = asyncio.create_task(self._listen(), name="payonce-feed-listener")
        await self._sync_quietly()
        settled = self._settled.setdefault(channel, asyncio.Event())
        if self._down or settled.is_set():
            return
        try:
            await asyncio.wait_for(settled.wait(), self._subscribe_wait_s)
        except TimeoutError:
            log.warning("redis did not confirm the subscription to %s in time", channel)

    async def _sync(self) -> None:
        """Subscribe the pub/sub connection to exactly the channels with local subscribers."""
        async with self._sync_lock:
            pubsub = self._pubsub
            if pubsub is None:
                return
            wanted = {self._channel(order_id) for order_id in self._subscribers}
            added = sorted(wanted - self._remote)
            removed = sorted(self._remote - wanted)
            if added:
                for channel in added:
                    self._settled.setdefault(channel, asyncio.Event()).clear()
                await pubsub.subscribe(*added)
                self._remote.update(added)
            if removed:
                for channel in removed:
                    self._settled.pop(channel, None)
                await pubsub.unsubscribe(*removed)
                self._remote.difference_update(removed)

    async def _sync_quietly(self) -> None:
        try:
            await self._sync()
        except (RedisError, OSError) as exc:
            # The listener sees the broken connection too, and re-subscribes once it is back.
            log.warning("feed could not update its redis subscriptions: %s", exc)

    async def _listen(self) -> None:
        pause = _FIRST_PAUSE_S
        while not self._closed:
            pubsub = self._current = self._client.pubsub()
            try:
                await pubsub.connect()  # type: ignore[no-untyped-call]  # unannotated in redis-py
                # Never unsubscribed: redis-py health-checks a connection with no subscription
                # (a PING and a read) from whichever task sends a command, racing our reads.
                await pubsub.subscribe(self._own_channel)
                async with self._sync_lock:
                    self._pubsub, self._remote = pubsub, set()
                self._down = False
                await self._sync()
                pause = _FIRST_PAUSE_S
                await self._read(pubsub)
            except (RedisError, OSError) as exc:
                log.warning("feed lost redis, reconnecting in %.2fs: %s", pause, exc)
            except Exception:
                log.exception("feed listener failed, reconnecting in %.2fs", pause)
            self._down = True
            self._pubsub = None
            for settled in self._settled.values():
                settled.set()  # nobody should wait for a confirmation that cannot come
            self._current = None
            await self._close(pubsub)
            await asyncio.sleep(pause)
            pause = min(pause * 2, _MAX_PAUSE_S)

    async def _read(self, pubsub: PubSub) -> None:
        loop = asyncio.get_running_loop()
        heard = pinged = loop.time()
        while True:
            message = await pubsub.get_message(timeout=min(_POLL_S, self._ping_every_s))
            now = loop.time()
            if message is not None:
                heard = now
                await self._dispatch(message)  # a "pong" is dispatched to nobody
            elif now - heard > 3 * self._ping_every_s:
                raise RedisConnectionError("pub/sub connection stopped answering")
            elif now - max(heard, pinged) > self._ping_every_s:
                pinged = now
                await pubsub.ping()

    async def _close(self, pubsub: PubSub) -> None:
        async with self._sync_lock:
            try:
                await pubsub.aclose()  # type: ignore[no-untyped-call]  # unannotated in redis-py
            except (RedisError, OSError) as exc:
                log.debug("closing a broken pub/sub connection: %s", exc)

    async def _dispatch(self, message: Mapping[str, Any]) -> None:
        kind = message.get("type")
        channel = _text(message.get("channel") or "")
        if kind == "subscribe":
            if (settled := self._settled.get(channel)) is not None:
                settled.set()
            return
        if kind != "message" or not channel.startswith(self._channel_prefix):
            return
        try:
            envelope = json.loads(message["data"])
            origin, body = envelope["origin"], envelope["message"]
        except (ValueError, KeyError, TypeError):
            log.warning("feed ignored a malformed message on %s", channel)
            return
        if origin == self._origin:
            return  # our own subscribers had it directly
        if not isinstance(body, dict):
            log.warning("feed ignored a malformed message on %s", channel)
            return
        await self._local.publish(channel.removeprefix(self._channel_prefix), body)
