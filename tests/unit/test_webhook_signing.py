"""The order service's webhook: Standard Webhooks signatures any of its libraries verifies, what
counts as an acknowledgement, and the settings that turn it on."""

from __future__ import annotations

import base64
import json
import math
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pydantic import ValidationError
from standardwebhooks import Webhook, WebhookVerificationError

from payonce.adapters.clock import AdjustableClock
from payonce.adapters.order_service.signing import WebhookSigner
from payonce.adapters.order_service.webhook import OrderServiceUnavailable, OrderWebhook
from payonce.bootstrap import order_webhook
from payonce.config import Settings
from payonce.domain.events import Event, Topic
from payonce.domain.order import OrderLine
from tests.builders import a_paid_payment, an_order
from tests.conftest import START

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
OTHER_SECRET = "whsec_" + base64.b64encode(bytes(range(1, 33))).decode()
URL = "https://orders.example/hooks/payonce"
PRODUCTION = {"env": "production", "api_key": "k" * 32, "public_url": "https://pay.example"}


def _event(occurred_at: datetime = START) -> Event:
    order = an_order(now=START, customer_id="c", lines=(OrderLine("S", "Tea", 2, 1999),))
    payment = a_paid_payment(order, now=START)
    return Event.about(Topic.PAYMENT_SUCCEEDED, payment, occurred_at)


def test_a_signed_message_verifies_with_the_standard_webhooks_library() -> None:
    # The library checks freshness against the real time: sign at the real time here.
    now = datetime.now(UTC)
    event = _event(occurred_at=now - timedelta(hours=2))
    message = WebhookSigner(SECRET).sign(event, now=now)

    body = Webhook(SECRET).verify(message.body, message.headers)

    assert body == {
        "type": "payment.succeeded",
        "timestamp": event.occurred_at.isoformat().replace("+00:00", "Z"),
        "data": event.payload,
    }
    assert body["data"]["order_id"] == event.order_id
    assert body["data"]["amount"] == 3998
    assert message.headers["webhook-id"] == event.id  # receivers deduplicate on it
    assert message.headers["webhook-timestamp"] == str(math.floor(now.timestamp()))
    assert message.headers["content-type"] == "application/json"
    assert message.headers["webhook-signature"].startswith("v1,")


def test_a_retry_is_signed_afresh_with_the_same_id_and_body() -> None:
    event = _event()
    signer = WebhookSigner(SECRET)
    first = signer.sign(event, now=START)
    retry = signer.sign(event, now=START + timedelta(hours=1))
    assert retry.body == first.body
    assert retry.headers["webhook-id"] == first.headers["webhook-id"]
    assert int(retry.headers["webhook-timestamp"]) - int(first.headers["webhook-timestamp"]) == 3600
    assert retry.headers["webhook-signature"] != first.headers["webhook-signature"]


def test_tampered_foreign_or_stale_messages_do_not_verify() -> None:
    now = datetime.now(UTC)
    event = _event(occurred_at=now)
    message = WebhookSigner(SECRET).sign(event, now=now)
    receiver = Webhook(SECRET)

    tampered = message.body.replace(b"3998", b"1")
    assert tampered != message.body
    with pytest.raises(WebhookVerificationError):
        receiver.verify(tampered, message.headers)
    with pytest.raises(WebhookVerificationError):
        receiver.verify(message.body, {**message.headers, "webhook-id": "evt_other"})
    foreign = WebhookSigner(OTHER_SECRET).sign(event, now=now)
    with pytest.raises(WebhookVerificationError):
        receiver.verify(foreign.body, foreign.headers)
    stale = WebhookSigner(SECRET).sign(event, now=now - timedelta(minutes=6))
    with pytest.raises(WebhookVerificationError, match="too old"):
        receiver.verify(stale.body, stale.headers)


def _webhook(answer: httpx.Response | Exception, seen: list[httpx.Request]) -> OrderWebhook:
    def respond(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return OrderWebhook(
        URL,
        WebhookSigner(SECRET),
        clock=AdjustableClock(start=START),
        timeout_s=3,
        topics=[Topic.PAYMENT_SUCCEEDED],
        transport=httpx.MockTransport(respond),
    )


@pytest.mark.parametrize("status", [200, 202, 204])
async def test_a_2xx_answer_acknowledges(status: int) -> None:
    seen: list[httpx.Request] = []
    webhook = _webhook(httpx.Response(status), seen)
    event = _event()
    await webhook.handle(event)
    await webhook.aclose()
    [request] = seen
    assert (request.method, str(request.url)) == ("POST", URL)
    assert request.headers["webhook-id"] == event.id
    assert request.headers["webhook-timestamp"] == str(math.floor(START.timestamp()))
    assert json.loads(request.content)["type"] == "payment.succeeded"
    assert webhook.name == "order_webhook"
    assert webhook.topics == frozenset({Topic.PAYMENT_SUCCEEDED})


@pytest.mark.parametrize(
    ("answer", "complaint"),
    [
        (httpx.Response(503, text="maintenance"), "answered 503: maintenance"),
        (httpx.Response(500), "answered 500"),
        (httpx.Response(400, text="unknown type"), "answered 400: unknown type"),
        (httpx.Response(302, headers={"location": "https://elsewhere.example/"}), "answered 302"),
        (httpx.ConnectError("connection refused"), "ConnectError: connection refused"),
        (httpx.ReadTimeout("read timed out"), "no answer within 3 s"),
    ],
)
async def test_anything_but_2xx_is_not_an_acknowledgement(
    answer: httpx.Response | Exception, complaint: str
) -> None:
    seen: list[httpx.Request] = []
    webhook = _webhook(answer, seen)
    with pytest.raises(OrderServiceUnavailable, match=complaint) as raised:
        await webhook.handle(_event())
    await webhook.aclose()
    assert len(seen) == 1  # one attempt: retries are the outbox's, on its backoff
    assert raised.value.retryable


def test_the_webhook_is_wired_only_with_its_url_and_secret() -> None:
    clock = AdjustableClock(start=START)
    assert order_webhook(Settings(), clock) is None
    settings = Settings(
        order_webhook_url=URL,
        order_webhook_secret=SECRET,  # type: ignore[arg-type]
        order_webhook_topics=["payment.succeeded", "payment.extra_captured"],  # type: ignore[list-item]
    )
    webhook = order_webhook(settings, clock)
    assert webhook is not None
    assert webhook.topics == frozenset(Topic)
    assert Settings(order_webhook_url=URL, order_webhook_secret=SECRET).order_webhook_topics == [  # type: ignore[arg-type]
        Topic.PAYMENT_SUCCEEDED
    ]
    assert settings.order_webhook_timeout_s == 3.0


def test_production_takes_a_url_with_its_secret() -> None:
    settings = Settings(
        **PRODUCTION,  # type: ignore[arg-type]
        order_webhook_url=URL,
        order_webhook_secret=SECRET,  # type: ignore[arg-type]
        order_webhook_timeout_s=2,
    )
    assert settings.order_webhook_secret is not None
    assert settings.order_webhook_secret.get_secret_value() == SECRET
    assert SECRET not in repr(settings)


@pytest.mark.parametrize("env", ["production", "development"])
@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"order_webhook_url": URL}, "needs PAYONCE_ORDER_WEBHOOK_SECRET"),
        ({"order_webhook_secret": SECRET}, "SECRET is set but not _URL"),
        ({"order_webhook_url": "orders.example/hook", "order_webhook_secret": SECRET}, "http"),
        ({"order_webhook_url": URL, "order_webhook_secret": "hunter2"}, "whsec_"),
        ({"order_webhook_url": URL, "order_webhook_secret": "whsec_%%%"}, "whsec_"),
        # Base64 of 8 bytes: shorter than the 24 the scheme asks for.
        ({"order_webhook_url": URL, "order_webhook_secret": "whsec_AAAAAAAAAAA="}, "whsec_"),
        ({"order_webhook_timeout_s": 0}, "greater than 0"),
        ({"order_webhook_topics": []}, "at least 1"),
        ({"order_webhook_topics": ["payment.refunded"]}, "payment.succeeded"),
    ],
)
def test_webhook_settings_are_refused(changes: dict[str, object], complaint: str, env: str) -> None:
    base = PRODUCTION if env == "production" else {}
    with pytest.raises(ValidationError, match=complaint):
        Settings(**{**base, **changes})  # type: ignore[arg-type]
