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
from urllib.parse import parse_qsl

import httpx

from payonce.ports.clock import Clock
from payonce.sandbox.faults import Faults, Forgery

logger = logging.getLogger(__name__)

ANSWER_LIMIT = 2000


@dataclass(frozen=True)
class Outgoing:
    """One notification attempt as it goes on the wire."""

    headers: Mapping[str, str]
    body: bytes


# Builds one attempt at the given clock time (fresh timestamps and signature); given a forgery,
# builds that forged variant instead.
Render = Callable[[datetime, Forgery | None], Outgoing]
Fault = Literal["dropped", "duplicate", "echo", "reordered"] | str


def answered_success(status_code: int, answer: str) -> bool:
    """Alipay's rule: only the body ``success`` stops the retries."""
    return answer.strip() == "success"


def answered_2xx(status_code: int, answer: str) -> bool:
    """WeChat Pay's and PayPal's rule: any 2xx stops the retries."""
    return 200 <= status_code < 300


@dataclass(frozen=True)
class RetryPolicy:
    """A channel's delivery rules: the waits after each failed attempt, and what stops them."""

    intervals: tuple[timedelta, ...]
    accepts: Callable[[int, str], bool] = answered_2xx
    # A channel quirk: an identical second delivery ``echo_after`` later, at this rate.
    echo_rate: float = 0.0
    echo_after: timedelta = timedelta(seconds=1)

    @property
    def max_attempts(self) -> int:
        return len(self.intervals) + 1


# Alipay's schedule: the first attempt at once, then these waits after each failed attempt.
ALIPAY_RETRIES = RetryPolicy(
    intervals=(
        timedelta(minutes=4),
        timedelta(minutes=10),
        timedelta(minutes=10),
        timedelta(hours=1),
        timedelta(hours=2),
        timedelta(hours=6),
        timedelta(hours=15),
    ),
    accepts=answered_success,
)


@dataclass(frozen=True)
class Delivery:
    """One attempt (or a duplicate, echo or forged extra send) of one notification."""

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
    headers: Mapping[str, str]
    body: str
    fault: Fault | None = None

    @property
    def form(self) -> dict[str, str]:
        """The body parsed as a form (Alipay's notifications)."""
        return dict(parse_qsl(self.body, keep_blank_values=True))

    @property
    def raw(self) -> bytes:
        return self.body.encode("utf-8")

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
            "headers": dict(self.headers),
            "body": self.body,
        }


@dataclass
class _Scheduled:
    seq: int
    channel: str
    notify_id: str
    out_trade_no: str
    url: str
    render: Render
    policy: RetryPolicy
    due_at: datetime
    attempt: int = 1
    finished: bool = field(default=False)
    # Held back by the reorder fault: its first attempt is recorded as "reordered".
    reordered: bool = False
    # An echo is one extra send of an attempt already made, never retried itself.
    echo_of: Outgoing | None = None


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
        # Every notification ever scheduled, to render again on demand (tests, chaos).
        self._renders: dict[tuple[str, str], Render] = {}
        self._planned: list[tuple[str, str, str]] = []  # (channel, notify_id, out_trade_no)
        self._seq = itertools.count(1)
        # Held while delivering, so two callers never send the same attempt twice.
        self._delivering = asyncio.Lock()
        self._kick = asyncio.Event()
        self._stopped = False

    def schedule(
        self,
        *,
        channel: str,
        notify_id: str,
        out_trade_no: str,
        url: str,
        render: Render,
        policy: RetryPolicy,
    ) -> None:
        """Plan a notification whose first attempt is due now (plus any injected delay)."""
        due = self._clock.now() + self._faults.notify_delay()
        reordered = self._faults.strikes("notify_reorder", channel)
        if reordered:
            due += self._faults.reorder_delay
        self._renders[(channel, notify_id)] = render
        self._planned.append((channel, notify_id, out_trade_no))
        self._scheduled.append(
            _Scheduled(
                seq=next(self._seq),
                channel=channel,
                notify_id=notify_id,
                out_trade_no=out_trade_no,
                url=url,
                render=render,
                policy=policy,
                due_at=due,
                reordered=reordered,
            )
        )
        self._kick.set()

    def render(self, channel: str, notify_id: str, forgery: Forgery | None = None) -> Outgoing:
        """A notification already scheduled, as it would be sent now, or a forged variant."""
        render = self._renders.get((channel, notify_id))
        if render is None:
            raise KeyError(f"no {channel} notification {notify_id}")
        return render(self._clock.now(), forgery)

    def planned(self, out_trade_no: str | None = None) -> list[tuple[str, str]]:
        """(channel, notify_id) of every notification scheduled so far, delivered or not."""
        return [
            (channel, notify_id)
            for channel, notify_id, trade in self._planned
            if out_trade_no is None or trade == out_trade_no
        ]

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
        if item.echo_of is not None:
            await self._send(item, at, item.echo_of, fault="echo")
            item.finished = True
            return
        channel = item.channel
        if self._faults.strikes("notify_forge", channel):
            forgery = self._faults.forgery(channel)
            await self._send(item, at, item.render(at, forgery), fault=f"forged:{forgery}")
        outgoing = item.render(at, None)
        if self._faults.strikes("notify_drop", channel):
            self._record(item, at, outgoing, None, "dropped", None, fault="dropped")
            ok = False
        else:
            held_back = item.reordered and item.attempt == 1
            ok = await self._send(item, at, outgoing, fault="reordered" if held_back else None)
            if self._faults.strikes("notify_duplicate", channel):
                ok = await self._send(item, at, outgoing, fault="duplicate") or ok
            policy = item.policy
            if policy.echo_rate and self._faults.chance(f"{channel}/echo", policy.echo_rate):
                self._echo(item, at + policy.echo_after, outgoing)
        if ok or item.attempt >= item.policy.max_attempts:
            item.finished = True
            return
        wait = item.policy.intervals[item.attempt - 1]
        item.due_at = at + wait + self._faults.notify_delay()
        item.attempt += 1

    def _echo(self, item: _Scheduled, due: datetime, outgoing: Outgoing) -> None:
        self._scheduled.append(
            _Scheduled(
                seq=next(self._seq),
                channel=item.channel,
                notify_id=item.notify_id,
                out_trade_no=item.out_trade_no,
                url=item.url,
                render=item.render,
                policy=item.policy,
                due_at=due,
                attempt=item.attempt,
                echo_of=outgoing,
            )
        )

    async def _send(
        self, item: _Scheduled, at: datetime, outgoing: Outgoing, *, fault: Fault | None
    ) -> bool:
        client = self._http()
        try:
            response = await client.post(
                item.url, content=outgoing.body, headers=dict(outgoing.headers)
            )
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            error = f"{type(exc).__name__}: {exc}"
            self._record(item, at, outgoing, None, error, None, fault=fault)
            return False
        answer = response.text[:ANSWER_LIMIT]
        ok = item.policy.accepts(response.status_code, answer)
        self._record(item, at, outgoing, response.status_code, None, answer, fault=fault, ok=ok)
        # A forged copy being accepted says nothing about the genuine notification.
        return ok and not (fault or "").startswith("forged")

    def _record(
        self,
        item: _Scheduled,
        at: datetime,
        outgoing: Outgoing,
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
                headers=dict(outgoing.headers),
                body=outgoing.body.decode("utf-8", errors="replace"),
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
