"""A lean HTTP/1.1 keep-alive client and a closed-loop load runner, so the load generator takes
as little of the machine's CPU (shared with the servers it measures) as it can.

httpx spends a few hundred microseconds of Python per request; this client writes the request
in one call and reads a Content-Length (or chunked) answer, nothing more.
"""

from __future__ import annotations

import asyncio
import json
import math
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Reply:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Connection:
    """One keep-alive connection to one server; one request at a time."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
    ) -> Reply:
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
        if body or method != "GET":
            head += f"Content-Length: {len(body)}\r\n"
        for name, value in (headers or {}).items():
            head += f"{name}: {value}\r\n"
        message = head.encode("latin-1") + b"\r\n" + body
        if self._reader is not None and self._reader.at_eof():
            self.close()  # the server closed it while it was idle (its keep-alive timeout)
        reused = self._writer is not None
        try:
            return await self._send(message)
        except (ConnectionResetError, asyncio.IncompleteReadError) as error:
            # The race every keep-alive client has: a reused connection closed by the server
            # just as the request left, answered with nothing at all. Not processed: send again
            # once, on a new connection (what browsers do).
            nothing = not isinstance(error, asyncio.IncompleteReadError) or not error.partial
            if not (reused and nothing):
                raise
            return await self._send(message)

    async def _send(self, message: bytes) -> Reply:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._reader, self._writer
        assert reader is not None
        try:
            writer.write(message)
            return await self._read(reader)
        except BaseException:
            self.close()  # a half-read answer leaves the connection unusable
            raise

    async def _read(self, reader: asyncio.StreamReader) -> Reply:
        lines = (await reader.readuntil(b"\r\n\r\n")).split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length: int | None = None
        chunked = closing = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                closing = value.strip().lower() == b"close"
        if chunked:
            parts = []
            while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                parts.append(await reader.readexactly(size + 2))
            await reader.readuntil(b"\r\n")
            body = b"".join(part[:-2] for part in parts)
        elif length is not None:
            body = await reader.readexactly(length)
        else:
            body, closing = await reader.read(), True
        if closing:
            self.close()
        return Reply(status, body)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


class Session:
    """A worker's connections, one per server it talks to."""

    def __init__(self) -> None:
        self._connections: dict[str, Connection] = {}

    async def call(
        self,
        method: str,
        url: str,
        payload: Any = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> Reply:
        parts = urlsplit(url)
        origin = parts.netloc
        connection = self._connections.get(origin)
        if connection is None:
            connection = self._connections[origin] = Connection(
                parts.hostname or "127.0.0.1", parts.port or 80
            )
        body = raw if raw is not None else b""
        extra = dict(headers or {})
        if payload is not None:
            body = json.dumps(payload).encode()
            extra.setdefault("Content-Type", "application/json")
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        return await connection.request(method, path, body, extra)

    def close(self) -> None:
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()


# One request of a run: given the worker's session, answers the reply (its status is counted).
Job = Callable[[Session], Awaitable[Reply]]


@dataclass
class Run:
    """What a closed-loop run measured."""

    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    replies: list[Reply | None] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def done(self) -> int:
        return len(self.latencies)

    @property
    def per_s(self) -> float:
        return self.done / self.elapsed_s if self.elapsed_s else 0.0

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.done,
            "elapsed_s": round(self.elapsed_s, 3),
            "per_s": round(self.per_s, 1),
            **latency_summary(self.latencies),
            "statuses": {str(status): n for status, n in sorted(self.statuses.items())},
            "transport_errors": dict(self.errors),
        }


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), nearest rank on the sorted values."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


def latency_summary(latencies: Sequence[float]) -> dict[str, float]:
    if not latencies:
        return {}
    return {
        "p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 99) * 1000, 2),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2),
        "max_ms": round(max(latencies) * 1000, 2),
    }


async def closed_loop(
    jobs: Sequence[Job],
    concurrency: int,
    *,
    on_done: Callable[[], None] | None = None,
    keep_replies: bool = False,
) -> Run:
    """Run ``jobs`` with ``concurrency`` workers, each sending its next job as soon as its last
    one was answered; latencies are per request, throughput over the whole run."""
    run = Run(replies=[None] * len(jobs) if keep_replies else [])
    cursor = iter(range(len(jobs)))

    async def worker() -> None:
        session = Session()
        try:
            for index in cursor:
                start = time.perf_counter()
                try:
                    reply = await jobs[index](session)
                except (OSError, asyncio.IncompleteReadError, ValueError) as error:
                    run.errors[type(error).__name__] += 1
                    run.latencies.append(time.perf_counter() - start)
                else:
                    run.latencies.append(time.perf_counter() - start)
                    run.statuses[reply.status] += 1
                    if keep_replies:
                        run.replies[index] = reply
                if on_done is not None:
                    on_done()
        finally:
            session.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(concurrency, len(jobs)) or 1)))
    run.elapsed_s = time.perf_counter() - start
    return run
