"""Pooled HTTP clients for the REST adapters: one per event loop, kept open between calls.

A client per call would pay a TCP (and, in production, a TLS) handshake on every provider call;
a client is bound to the event loop that opened its connections, so each loop gets its own.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable

import httpx


class ClientPool:
    def __init__(self, make: Callable[[], httpx.AsyncClient]) -> None:
        self._make = make
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )

    def client(self) -> httpx.AsyncClient:
        """This loop's client, opened on first use (or again after it was closed)."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None or client.is_closed:
            client = self._make()
            self._clients[loop] = client
        return client

    async def aclose(self) -> None:
        """Close this loop's client and its connections."""
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()
