"""Provider notifications: their retry schedule, their delivery by HTTP POST, the delivery log."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import httpx

from payonce.ports.clock import Clock
from payonce.sandbox.faults import Faults

logger = logging.getLogger(__name__)

# Alipay's schedule: the first attempt at once, then these waits after each failed attempt.
RETRY_INTERVALS: tuple[timedelta, ...] = (
    timedelta(minutes=4),
    timedelta(minutes=10),
    timedelta(minutes=10),
    timedelta(hours=1),
    timedelta(hours=2),
    timedelta(hours=6),
    timedelta(hours=15),
)
MAX_ATTEMPTS = len(RETRY_INTERVALS) + 1
ANSWER_LIMIT = 2000

# Builds the form body of one attempt at the given clock time (fresh notify_time and signature).
Render = Callable[[datetime], dict[str, str]]
Fault = Literal["dropped", "duplicate"]


@dataclass(frozen=True)
class Delivery:
    """One attempt (or, under the duplicate fault, one extra send) of one notification."""

    channel: str
    notify_id: str
    out_trade_no: str
    url: str
    attempt: int
    at: datetime
    status_code: int | None
    error: str | None
    answer: str | None
    ok: bool
    body: Mapping[str, str]
    fault: Fault | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "notify_id": self.notify_id,
            "out_trade_no": self.out_trade_no,
            "url": self.url,
            "attempt": self.attempt,
            "at": self.at.isoformat(),
            "status_code": self.status_code,
            "error": self.error,
            "answer": self.answer,
            "ok": self.ok,
            "fault": self.fault,
            "body": dict(self.body),
        }


@dataclass
class _Scheduled:
    seq: int
    channel: str
    notify_id: str
    out_trade_no: str
    url: str
    render: Render
    due_at: datetime
    attempt: int = 1
    finished: bool = field(default=False)


class Notifier:
    """Schedules notifications and delivers due attempts, one at a time, on the injected clock."""

    def __init__(
        self,
        *,
        clock: Clock,
        faults: Faults,
        http_timeout_s: float = 10.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._clock = clock
        self._faults = faults
        self._client = client
        self._owns_client = client is None
        self._http_timeout_s = http_timeout_s
        self._scheduled: list[_Scheduled] = []
        self._log: list[Delivery] = []
        self._seq = itertools.count(1)
        # Held while delivering, so two callers never send the same attempt twice.
        self._delivering = asyncio.Lock()
        self._kick = asyncio.Event()
        self._stopped = False

    def schedule(
        self, *, channel: str, notify_id: str, out_trade_no: str, url: str, render: Render
    ) -> None:
        """Plan a notification whose first attempt is due now (plus any injected delay)."""
        due = self._clock.now() + self._faults.notify_delay()
        self._scheduled.append(
            _Scheduled(
                seq=next(self._seq),
                channel=channel,
                notify_id=notify_id,
                out_trade_no=out_trade_no,
                url=url,
                render=render,
                due_at=due,
            )
        )
        self._kick.set()

    def deliveries(self, out_trade_no: str | None = None) -> list[Delivery]:
        return [d for d in self._log if out_trade_no is None or d.out_trade_no == out_trade_no]

    def pending(self) -> int:
        """How many notifications still have attempts to come."""
        return sum(1 for item in self._scheduled if not item.finished)

    def next_due(self) -> datetime | None:
        dues = [item.due_at for item in self._scheduled if not item.finished]
        return min(dues) if dues else None

    async def deliver_due(self) -> int:
        """Make every attempt due at the clock's now; returns how many attempts were made."""
        async with self._delivering:
            now = self._clock.now()
            due = sorted(
                (item for item in self._scheduled if not item.finished and item.due_at <= now),
                key=lambda item: (item.due_at, item.seq),
            )
            for item in due:
                await self._attempt(item)
            self._scheduled = [item for item in self._scheduled if not item.finished]
            return len(due)

    async def _attempt(self, item: _Scheduled) -> None:
        at = self._clock.now()
        body = item.render(at)
        if self._faults.strikes("notify_drop"):
            self._record(item, at, body, None, "dropped", None, fault="dropped")
            ok = False
        else:
            ok = await self._send(item, at, body, fault=None)
            if self._faults.strikes("notify_duplicate"):
                ok = await self._send(item, at, body, fault="duplicate") or ok
        if ok or item.attempt >= MAX_ATTEMPTS:
            item.finished = True
            return
        item.due_at = at + RETRY_INTERVALS[item.attempt - 1] + self._faults.notify_delay()
        item.attempt += 1

    async def _send(
        self, item: _Scheduled, at: datetime, body: dict[str, str], *, fault: Fault | None
    ) -> bool:
        client = self._http()
        try:
            response = await client.post(
                item.url,
                data=body,
                headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
            )
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            self._record(item, at, body, None, f"{type(exc).__name__}: {exc}", None, fault=fault)
            return False
        answer = response.text[:ANSWER_LIMIT]
        ok = answer.strip() == "success"
        self._record(item, at, body, response.status_code, None, answer, fault=fault, ok=ok)
        return ok

    def _record(
        self,
        item: _Scheduled,
        at: datetime,
        body: dict[str, str],
        status_code: int | None,
        error: str | None,
        answer: str | None,
        *,
        fault: Fault | None,
        ok: bool = False,
    ) -> None:
        self._log.append(
            Delivery(
                channel=item.channel,
                notify_id=item.notify_id,
                out_trade_no=item.out_trade_no,
                url=item.url,
                attempt=item.attempt,
                at=at,
                status_code=status_code,
                error=error,
                answer=answer,
                ok=ok,
                body=dict(body),
                fault=fault,
            )
        )

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._http_timeout_s)
        return self._client

    def kick(self) -> None:
        """Wake the dispatcher loop: something may be due now."""
        self._kick.set()

    async def run(
        self, interval_s: float = 0.2, *, tick: Callable[[], Awaitable[int]] | None = None
    ) -> None:
        """Deliver due attempts until stopped, every ``interval_s`` or sooner when kicked."""
        while not self._stopped:
            self._kick.clear()
            try:
                await (tick or self.deliver_due)()
            except Exception:
                logger.exception("sandbox notification delivery failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), timeout=interval_s)

    async def aclose(self) -> None:
        self._stopped = True
        self._kick.set()
        if self._client is not None and self._owns_client:
            await self._client.aclose()
            self._client = None
