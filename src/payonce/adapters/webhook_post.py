"""The POST that delivers a signed Standard Webhooks message, and what counts as delivered.

The order service's webhook and the push gateway's are delivered alike: one POST per attempt,
bounded as a whole by the time-out. Only a 2xx answer counts. Anything else (another status, a
redirect, no answer within the time-out, no connection) raises the caller's retryable error, and
the outbox sends the message again later.
"""

from __future__ import annotations

import asyncio

import httpx

from payonce.adapters.order_service.signing import SignedMessage
from payonce.adapters.providers.http_pool import ClientPool
from payonce.errors import PayonceError


class WebhookPost:
    """POSTs signed messages to one URL; raises ``unavailable`` when one is not taken."""

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float,
        unavailable: type[PayonceError],
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._url = url
        self._timeout_s = timeout_s
        self._unavailable = unavailable
        self._pool = ClientPool(
            lambda: httpx.AsyncClient(
                transport=transport,
                timeout=timeout_s,
                follow_redirects=False,  # a redirect is not a 2xx: the message was not taken
                headers={"user-agent": "payonce"},
            )
        )

    async def post(self, message: SignedMessage) -> None:
        """Send ``message`` once; return only if it was answered with a 2xx."""
        try:
            # httpx's time-out bounds each phase; this bounds the whole attempt.
            async with asyncio.timeout(self._timeout_s):
                response = await self._pool.client().post(
                    self._url, content=message.body, headers=message.headers
                )
        except (TimeoutError, httpx.TimeoutException) as error:
            raise self._unavailable(f"no answer within {self._timeout_s:g} s") from error
        except httpx.HTTPError as error:
            raise self._unavailable(f"{type(error).__name__}: {error}") from error
        if not response.is_success:
            said = response.text[:200].strip()
            raise self._unavailable(
                f"answered {response.status_code}" + (f": {said}" if said else "")
            )

    async def aclose(self) -> None:
        await self._pool.aclose()
