"""Standard Webhooks messages (the order service's, the push gateway's): the JSON body and the
headers that sign it.

The signature covers ``{webhook-id}.{webhook-timestamp}.{body}`` with the shared secret, so a
receiver that verifies it (any Standard Webhooks library) knows the call is ours, untouched and
fresh. ``webhook-id`` is our event id, the same on every retry, so the receiver deduplicates on
it; ``webhook-timestamp`` is the time of this attempt, so a retry after an hour is fresh too.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from standardwebhooks import Webhook

from payonce.domain.events import Event


@dataclass(frozen=True, slots=True)
class SignedMessage:
    body: bytes
    headers: dict[str, str]


def iso_z(moment: datetime) -> str:
    """A moment as Standard Webhooks bodies carry it: UTC, ISO 8601, with a Z."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def standard_webhook(
    message_id: str, envelope: Mapping[str, Any], *, now: datetime, webhook: Webhook | None
) -> SignedMessage:
    """``envelope`` as a Standard Webhooks request sent at ``now`` (this attempt's time), signed
    over ``{webhook-id}.{webhook-timestamp}.{body}`` when there is a ``webhook`` secret."""
    body = json.dumps(envelope, separators=(",", ":"), sort_keys=True)
    at = now.astimezone(UTC)
    headers = {
        "content-type": "application/json",
        "webhook-id": message_id,
        # The same whole seconds the signature covers (the library floors them too).
        "webhook-timestamp": str(math.floor(at.timestamp())),
    }
    if webhook is not None:
        headers["webhook-signature"] = webhook.sign(msg_id=message_id, timestamp=at, data=body)
    return SignedMessage(body=body.encode(), headers=headers)


class WebhookSigner:
    def __init__(self, secret: str) -> None:
        self._webhook = Webhook(secret)

    def sign(self, event: Event, *, now: datetime) -> SignedMessage:
        """The message announcing ``event``, signed at ``now`` (this attempt's time)."""
        # The timestamp in the body is when the event happened, not when it was sent.
        envelope = {
            "type": event.topic.value,
            "timestamp": iso_z(event.occurred_at),
            "data": event.payload,
        }
        return standard_webhook(event.id, envelope, now=now, webhook=self._webhook)
