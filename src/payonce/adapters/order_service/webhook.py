"""The order service's webhook: an outbox consumer that POSTs each event to it, signed.

Only a 2xx answer acknowledges an event. Anything else (another status, a redirect, no answer
within the time-out, no connection) raises, and the outbox keeps the event due for a retry:
nothing the order service has not acknowledged counts as delivered.
"""

from __future__ import annotations

from collections.abc import Iterable

import httpx

from payonce.adapters.order_service.signing import WebhookSigner
from payonce.adapters.webhook_post import WebhookPost
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
        self._signer = signer
        self._clock = clock
        self._post = WebhookPost(
            url, timeout_s=timeout_s, unavailable=OrderServiceUnavailable, transport=transport
        )

    async def handle(self, event: Event) -> None:
        await self._post.post(self._signer.sign(event, now=self._clock.now()))

    async def aclose(self) -> None:
        await self._post.aclose()
