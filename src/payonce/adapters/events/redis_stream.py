"""Outbox events carried on a Redis stream, and the consumer-group reader other services use.

The outbox stays the source of truth: the relay hands each event to ``RedisEventStream`` and
retries until the XADD is known to have happened, so an event may appear on the stream more
than once (an XADD that succeeded but whose answer was lost is repeated). Every reader must
therefore apply each event id at most once, as the order service's inbox does.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError
from redis.typing import EncodableT, FieldT

from payonce.adapters.redis_breaker import RedisBreaker
from payonce.domain.events import Event, Topic
from payonce.domain.ids import EventId, OrderId, PaymentId

log = logging.getLogger(__name__)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _stream_name(prefix: str) -> str:
    return f"{prefix}events"


class RedisEventStream:
    """An outbox consumer that appends every event to ``{prefix}events`` (trimmed near maxlen).

    Errors propagate so the relay retries; consumers dedup by event id (see the module).
    """

    name = "stream"
    topics: frozenset[Topic] = frozenset(Topic)

    def __init__(
        self,
        client: Redis,
        *,
        prefix: str = "payonce:",
        maxlen: int = 1_000_000,
        breaker: RedisBreaker | None = None,
    ) -> None:
        self._client = client
        self._breaker = breaker or RedisBreaker()
        self._stream = _stream_name(prefix)
        self._maxlen = maxlen

    async def handle(self, event: Event) -> None:
        fields: dict[FieldT, EncodableT] = {
            "id": event.id,
            "topic": event.topic.value,
            "order_id": event.order_id,
            "payment_id": event.payment_id,
            "occurred_at": event.occurred_at.isoformat(),
            "payload": json.dumps(event.payload, sort_keys=True),
        }
        self._breaker.check()  # open: the outbox keeps the event and tries again later
        try:
            await self._client.xadd(self._stream, fields, maxlen=self._maxlen, approximate=True)
        except (RedisError, OSError) as exc:
            self._breaker.failed(exc)
            raise


class StreamReader:
    """One consumer of a consumer group on the event stream: entries are shared, never doubled,
    within the group; an entry stays pending until acked, and is reclaimed if its reader died.
    """

    def __init__(
        self, client: Redis, *, group: str, consumer: str, prefix: str = "payonce:"
    ) -> None:
        self._client = client
        self._stream = _stream_name(prefix)
        self._group = group
        self._consumer = consumer

    async def ensure_group(self) -> None:
        """Create the group (and the stream) if missing; a new group starts from the first entry."""
        try:
            await self._client.xgroup_create(self._stream, self._group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def read(self, count: int = 100, block_ms: int | None = None) -> list[tuple[str, Event]]:
        """Entries not yet delivered to this group, oldest first.

        ``block_ms`` None returns at once when there are none; 0 waits for one forever.
        """
        try:
            response = await self._client.xreadgroup(
                self._group, self._consumer, {self._stream: ">"}, count=count, block=block_ms
            )
        except ResponseError as error:
            if not str(error).startswith("NOGROUP"):
                raise
            # Redis restarted empty (or was flushed): the group went with the stream.
            log.warning("stream group %s is gone; creating it again", self._group)
            await self.ensure_group()
            return []
        return _events(_stream_entries(response))

    async def ack(self, *entry_ids: str) -> None:
        if entry_ids:
            await self._client.xack(self._stream, self._group, *entry_ids)

    async def reclaim(self, min_idle_ms: int, count: int = 100) -> list[tuple[str, Event]]:
        """Take over entries another consumer read and left unacked for ``min_idle_ms``."""
        response = await self._client.xautoclaim(
            self._stream, self._group, self._consumer, min_idle_ms, start_id="0-0", count=count
        )
        # [next start id, claimed entries, ids deleted meanwhile (Redis 7)]
        return _events(response[1] if response else [])


def _stream_entries(response: Any) -> list[Any]:
    """The entries of our one stream, whatever reply shape the client's protocol gives."""
    if not response:
        return []
    per_stream = response.values() if isinstance(response, Mapping) else [r[1] for r in response]
    entries: list[Any] = []
    for value in per_stream:
        # RESP3's legacy shape wraps each stream's entries in one more list.
        if value and isinstance(value[0], list):
            value = value[0]
        entries.extend(value)
    return entries


def _events(entries: Sequence[Any]) -> list[tuple[str, Event]]:
    events: list[tuple[str, Event]] = []
    for entry_id, fields in entries:
        if entry_id is None or fields is None:
            continue  # trimmed away while pending: nothing left to deliver
        try:
            events.append((_text(entry_id), _event(fields)))
        except (KeyError, ValueError, TypeError):
            # Left pending, so the entry stays visible in XPENDING for someone to look at.
            log.exception("skipped a malformed stream entry %s", _text(entry_id))
    return events


def _event(raw: Mapping[bytes | str, bytes | str]) -> Event:
    fields = {_text(key): _text(value) for key, value in raw.items()}
    return Event(
        id=EventId(fields["id"]),
        topic=Topic(fields["topic"]),
        order_id=OrderId(fields["order_id"]),
        payment_id=PaymentId(fields["payment_id"]),
        payload=json.loads(fields["payload"]),
        occurred_at=datetime.fromisoformat(fields["occurred_at"]),
    )
