"""The push gateway's webhook: each shopper message POSTed as JSON, signed when a secret is set.

Only a 2xx answer counts as sent. Anything else (another status, a redirect, no answer within
the time-out, no connection) raises, and the outbox sends the message again later with the same
``webhook-id`` (the message id, which is the outbox event's id), on which the gateway
deduplicates. With a secret, the call is signed per Standard Webhooks over
``{webhook-id}.{webhook-timestamp}.{body}``, exactly as the order service's webhook is.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
from standardwebhooks import Webhook

from payonce.adapters.order_service.signing import SignedMessage, iso_z, standard_webhook
from payonce.adapters.webhook_post import WebhookPost
from payonce.errors import PayonceError
from payonce.ports.clock import Clock
from payonce.ports.push import PushMessage


class PushGatewayUnavailable(PayonceError):
    """The push gateway did not accept a message; the outbox sends it again later."""

    code = "push_gateway_unavailable"
    title = "The push gateway did not accept the message"
    http_status = 503
    retryable = True


def push_body(message: PushMessage) -> dict[str, Any]:
    """The JSON a gateway receives: a Standard Webhooks envelope around the message's fields."""
    return {
        "type": f"shopper.{message.kind}",
        # When it happened, not when this attempt was made: the same on every retry.
        "timestamp": iso_z(message.occurred_at),
        "data": {
            "id": message.id,
            "customer_id": message.customer_id,
            "order_id": message.order_id,
            "kind": message.kind,
            "title": message.title,
            "body": message.body,
            "status": message.status.value,
            "status_version": message.status_version,
            "occurred_at": iso_z(message.occurred_at),
        },
    }


class WebhookPush:
    """Push messages to one gateway URL, one POST per attempt."""

    def __init__(
        self,
        url: str,
        *,
        secret: str | None,
        clock: Clock,
        timeout_s: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._webhook = Webhook(secret) if secret is not None else None
        self._clock = clock
        self._post = WebhookPost(
            url, timeout_s=timeout_s, unavailable=PushGatewayUnavailable, transport=transport
        )

    def signed(self, message: PushMessage, *, now: datetime) -> SignedMessage:
        """The request for ``message`` at ``now`` (this attempt's time: a retry is fresh too)."""
        return standard_webhook(message.id, push_body(message), now=now, webhook=self._webhook)

    async def send(self, message: PushMessage) -> None:
        await self._post.post(self.signed(message, now=self._clock.now()))

    async def aclose(self) -> None:
        await self._post.aclose()
