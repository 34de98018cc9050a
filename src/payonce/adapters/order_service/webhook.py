"""The order service's webhook: an outbox consumer that POSTs each event to it, signed.

Only a 2xx answer acknowledges an event. Anything else (another status, a redirect, no answer
within the time-out, no connection) raises, and the outbox keeps the event due for a retry:
nothing the order service has not acknowledged counts as delivered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import httpx

from payonce.adapters.order_service.signing import WebhookSigner
from payonce.adapters.providers.http_pool import ClientPool
from payonce.domain.events import Event, Topic
from payonce.errors import PayonceError
from payonce.ports.clock import Clock


class OrderServiceUnavailable(PayonceError):
    """The order service did not acknowledge a webhook; the outbox sends it again later."""

    code = "order_service_unavailable"
    title = "The order service did not acknowledge the event"
    http_status = 503
    retryable = True


class OrderWebhook:
    """Standard Webhooks calls to one URL, for the topics it takes."""

    name = "order_webhook"

    def __init__(
        self,
        url: str,
        signer: WebhookSigner,
        *,
        clock: Clock,
        timeout_s: float,
        topics: Iterable[Topic],
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.topics = frozenset(topics)
        self._url = url
        self._signer = signer
        self._clock = clock
        self._timeout_s = timeout_s
        self._pool = ClientPool(
            lambda: httpx.AsyncClient(
                transport=transport,
                timeout=timeout_s,
                follow_redirects=False,  # a redirect is not an acknowledgement
                headers={"user-agent": "payonce"},
            )
        )

    async def handle(self, event: Event) -> None:
        message = self._signer.sign(event, now=self._clock.now())
        try:
            # httpx's time-out bounds each phase; this bounds the whole attempt.
            async with asyncio.timeout(self._timeout_s):
                response = await self._pool.client().post(
                    self._url, content=message.body, headers=message.headers
                )
        except (TimeoutError, httpx.TimeoutException) as error:
            raise OrderServiceUnavailable(f"no answer within {self._timeout_s:g} s") from error
        except httpx.HTTPError as error:
            raise OrderServiceUnavailable(f"{type(error).__name__}: {error}") from error
        if not response.is_success:
            said = response.text[:200].strip()
            raise OrderServiceUnavailable(
                f"answered {response.status_code}" + (f": {said}" if said else "")
            )

    async def aclose(self) -> None:
        await self._pool.aclose()
