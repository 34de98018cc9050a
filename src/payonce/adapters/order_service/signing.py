"""Standard Webhooks messages for the order service: the JSON body and the headers that sign it.

The signature covers ``{webhook-id}.{webhook-timestamp}.{body}`` with the shared secret, so a
receiver that verifies it (any Standard Webhooks library) knows the call is ours, untouched and
fresh. ``webhook-id`` is our event id, the same on every retry, so the receiver deduplicates on
it; ``webhook-timestamp`` is the time of this attempt, so a retry after an hour is fresh too.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime

from standardwebhooks import Webhook

from payonce.domain.events import Event


@dataclass(frozen=True, slots=True)
class SignedMessage:
    body: bytes
    headers: dict[str, str]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class WebhookSigner:
    def __init__(self, secret: str) -> None:
        self._webhook = Webhook(secret)

    def sign(self, event: Event, *, now: datetime) -> SignedMessage:
        """The message announcing ``event``, signed at ``now`` (this attempt's time)."""
        # The timestamp in the body is when the event happened, not when it was sent.
        envelope = {
            "type": event.topic.value,
            "timestamp": _iso(event.occurred_at),
            "data": event.payload,
        }
        body = json.dumps(envelope, separators=(",", ":"), sort_keys=True)
        at = now.astimezone(UTC)
        return SignedMessage(
            body=body.encode(),
            headers={
                "content-type": "application/json",
                "webhook-id": event.id,
                # The same whole seconds the signature covers (the library floors them too).
                "webhook-timestamp": str(math.floor(at.timestamp())),
                "webhook-signature": self._webhook.sign(msg_id=event.id, timestamp=at, data=body),
            },
        )
