"""The REST adapters' pooled clients: one per event loop, reused, reopened after closing."""

from __future__ import annotations

import asyncio

import httpx

from payonce.adapters.providers.http_pool import ClientPool


def test_one_client_per_loop_kept_between_calls_and_reopened_after_close() -> None:
    made: list[httpx.AsyncClient] = []

    def make() -> httpx.AsyncClient:
        made.append(httpx.AsyncClient())
        return made[-1]

    pool = ClientPool(make)

    async def on_one_loop() -> tuple[bool, bool]:
        first, again = pool.client(), pool.client()
        await pool.aclose()
        reopened = pool.client()
        await pool.aclose()
        return first is again, reopened is not first

    assert asyncio.run(on_one_loop()) == (True, True)
    assert asyncio.run(on_one_loop()) == (True, True)  # another loop, its own client
    assert len(made) == 4
    assert all(client.is_closed for client in made)
