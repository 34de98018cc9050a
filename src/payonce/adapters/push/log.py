"""The in-process shopper push: one INFO log line per message, for development and tests.

It is the default when no push gateway is configured, so a deployment without one still shows,
in its logs, every message a shopper would have received.
"""

from __future__ import annotations

import logging

from payonce.ports.push import PushMessage

log = logging.getLogger(__name__)


class LogPush:
    async def send(self, message: PushMessage) -> None:
        log.info(
            "shopper push %s (%s) to customer %s: order %s %s v%d at %s: %s: %s",
            message.id,
            message.kind,
            message.customer_id,
            message.order_id,
            message.status.value,
            message.status_version,
            message.occurred_at.isoformat(),
            message.title,
            message.body,
        )
