"""The providers' callback endpoint: raw bytes in, the channel's own acknowledgement out."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from payonce.domain.channels import Channel
from payonce.entrypoints.web.dependencies import DepsDep
from payonce.entrypoints.web.orders import problem_response
from payonce.errors import ChannelUnsupported, PayonceError
from payonce.service.notifications import handle_notification

router = APIRouter(tags=["notifications"])
log = logging.getLogger(__name__)

MAX_NOTIFICATION_BYTES = 64 * 1024


def _channel_reply(description: str) -> dict[str, Any]:
    # Each channel answers in its own format: Alipay in plain text, the others in JSON.
    return {"description": description, "content": {"text/plain": {}, "application/json": {}}}


NOTIFY_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: _channel_reply("applied and committed (the channel's acknowledgement)"),
    400: _channel_reply("rejected: it changed nothing (the channel's refusal)"),
    413: _channel_reply("over 64 KiB (the channel's refusal)"),
    503: _channel_reply("not applied now: the provider delivers it again"),
    422: problem_response("`channel_unsupported`: unknown or unconfigured channel"),
}
# The raw body, in the channel's own wire format; read here, never parsed by FastAPI.
NOTIFY_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
            "application/json": {"schema": {"type": "object"}},
        },
    }
}


@router.post(
    "/api/notify/{channel}",
    response_class=Response,
    responses=NOTIFY_RESPONSES,
    openapi_extra=NOTIFY_BODY,
)
async def notify(channel: Channel, request: Request, deps: DepsDep) -> Response:
    """A provider's notification, verified on the raw body before anything else."""
    try:
        known = Channel(channel)
    except ValueError:
        raise ChannelUnsupported(f"unknown channel {channel!r}") from None
    provider = deps.providers.get(known)
    if provider is None:
        raise ChannelUnsupported(f"channel {channel} is not configured")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_NOTIFICATION_BYTES:
            deps.metrics.notification_rejected(known.value, "too_large")
            deps.metrics.notification_received(known.value, "rejected")
            reply = provider.refuse("too_large")
            return Response(reply.body, status_code=413, media_type=reply.media_type)
    try:
        reply = await handle_notification(deps, known, dict(request.headers), bytes(body))
    except PayonceError as error:
        # Not applied (storage busy, lock taken): the provider must deliver it again.
        log.warning("%s notification not applied: %s", channel, error.detail)
        reply = provider.refuse(error.code)
        return Response(reply.body, status_code=503, media_type=reply.media_type)
    if 200 <= reply.status_code < 300:  # (a refusal committed nothing)
        deps.failpoints.reach("notify_after_commit_before_ack")
    return Response(reply.body, status_code=reply.status_code, media_type=reply.media_type)
