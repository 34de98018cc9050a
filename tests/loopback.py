"""Test servers on loopback ports: uvicorn serving an ASGI app on a port of 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Literal

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

# Serves an app on a loopback port of its own; returns the base URL it answers on.
Serve = Callable[[ASGIApp], Awaitable[str]]


def loopback() -> tuple[socket.socket, str]:
    """A socket bound to a free loopback port (not listening yet), and the URL it will serve."""
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted connections only when the
    # listening socket says TCP, and without it every keep-alive response waits ~40 ms.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


@asynccontextmanager
async def served(
    app: ASGIApp, sock: socket.socket, *, lifespan: Literal["on", "off"] = "off"
) -> AsyncIterator[None]:
    """Serve ``app`` with uvicorn on ``sock`` until the block ends."""
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan=lifespan))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()  # it failed to start: say why
        await asyncio.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        await task
        sock.close()


@asynccontextmanager
async def loopback_servers() -> AsyncIterator[Serve]:
    """A ``Serve`` whose servers all stop when the block ends, the last one started first."""
    async with AsyncExitStack() as running:

        async def serve(app: ASGIApp) -> str:
            sock, url = loopback()
            await running.enter_async_context(served(app, sock))
            return url

        yield serve


async def received(scope: Scope, receive: Receive) -> tuple[bytes, dict[str, str]]:
    """The whole body and the headers of the HTTP request an app is answering."""
    assert scope["type"] == "http"
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    return body, {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}


async def answer(send: Send, status: int, body: bytes = b"") -> None:
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": body})


@asynccontextmanager
async def unanswered(serve: Serve) -> AsyncIterator[tuple[str, str]]:
    """Two URLs a client hears nothing from in time: one served by an app that answers only
    once the block ends (after the caller gave up), and one where nothing listens."""
    released = asyncio.Event()

    async def hangs(scope: Scope, receive: Receive, send: Send) -> None:
        await released.wait()
        await answer(send, 204)

    slow_url = await serve(hangs)
    sock, closed_url = loopback()
    sock.close()  # nothing listens there
    try:
        yield slow_url, closed_url
    finally:
        released.set()
