"""A PayPal merchant speaking raw REST to the sandbox, and a webhook endpoint that verifies.

Plain httpx and ``cryptography``, no payonce adapter: the tests of the sandbox's wire format
must not trust the code they are checking the other end of.
"""

from __future__ import annotations

import asyncio
import base64
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse

from payonce.sandbox.paypal_credentials import PaypalCredentials

RETURN_URL = "https://shop.example/pay/ord_1"
CANCEL_URL = "https://shop.example/pay/ord_1?cancelled=1"


@dataclass
class Merchant:
    """One merchant's REST calls, with a bearer token fetched on first use."""

    http: httpx.AsyncClient
    base: str  # the sandbox's /paypal
    credentials: PaypalCredentials
    token: str | None = None

    async def fetch_token(self) -> httpx.Response:
        return await self.http.post(
            f"{self.base}/v1/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=(self.credentials.client_id, self.credentials.client_secret),
        )

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        request_id: str | None = None,
        minimal: bool = False,
        patience_s: float | None = None,
    ) -> httpx.Response:
        if self.token is None:
            answer = await self.fetch_token()
            assert answer.status_code == 200, answer.text
            self.token = answer.json()["access_token"]
        headers = {"Authorization": f"Bearer {self.token}"}
        if not minimal:
            headers["Prefer"] = "return=representation"
        if request_id is not None:
            headers["PayPal-Request-Id"] = request_id
        extra: dict[str, Any] = {} if patience_s is None else {"timeout": patience_s}
        return await self.http.request(
            method, f"{self.base}{path}", json=body, headers=headers, **extra
        )

    async def create(
        self,
        number: str,
        value: str = "12.34",
        currency: str = "USD",
        *,
        request_id: str | None = None,
        style: str = "payment_source",
        minimal: bool = False,
    ) -> httpx.Response:
        return await self.call(
            "POST",
            "/v2/checkout/orders",
            order_body(number, value, currency, style=style),
            request_id=request_id if request_id is not None else f"req-{number}",
            minimal=minimal,
        )

    async def created(self, number: str, value: str = "12.34", **kwargs: Any) -> dict[str, Any]:
        answer = await self.create(number, value, **kwargs)
        assert answer.status_code == 201, answer.text
        body: dict[str, Any] = answer.json()
        return body

    async def capture(self, order_id: str, request_id: str | None = None) -> httpx.Response:
        return await self.call(
            "POST", f"/v2/checkout/orders/{order_id}/capture", {}, request_id=request_id
        )

    async def refund(
        self, capture_id: str, value: str | None, request_id: str | None, currency: str = "USD"
    ) -> httpx.Response:
        body = {} if value is None else {"amount": {"currency_code": currency, "value": value}}
        return await self.call(
            "POST", f"/v2/payments/captures/{capture_id}/refund", body, request_id=request_id
        )

    async def subscribe(self, url: str) -> httpx.Response:
        return await self.call(
            "PATCH",
            f"/v1/notifications/webhooks/{self.credentials.webhook_id}",
            [{"op": "replace", "path": "/url", "value": url}],
        )


def order_body(number: str, value: str, currency: str, *, style: str) -> dict[str, Any]:
    context = {"return_url": RETURN_URL, "cancel_url": CANCEL_URL}
    body: dict[str, Any] = {
        "intent": "CAPTURE",
        "purchase_units": [
            {
                "reference_id": number,
                "custom_id": number,
                "invoice_id": number,
                "description": "Tea",
                "amount": {"currency_code": currency, "value": value},
            }
        ],
    }
    if style == "payment_source":
        body["payment_source"] = {"paypal": {"experience_context": context}}
    else:
        body["application_context"] = context
    return body


def link(resource: dict[str, Any], rel: str) -> str:
    (href,) = [item["href"] for item in resource["links"] if item["rel"] == rel]
    return str(href)


def verifies(certificate_pem: str, webhook_id: str, headers: dict[str, str], body: bytes) -> bool:
    """PayPal's check, done by hand: SHA256withRSA over id|time|webhook id|crc32(body)."""
    key = x509.load_pem_x509_certificate(certificate_pem.encode()).public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    lowered = {name.lower(): value for name, value in headers.items()}
    message = "|".join(
        (
            lowered["paypal-transmission-id"],
            lowered["paypal-transmission-time"],
            webhook_id,
            str(zlib.crc32(body)),
        )
    )
    try:
        key.verify(
            base64.b64decode(lowered["paypal-transmission-sig"]),
            message.encode(),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except InvalidSignature:
        return False
    return True


@dataclass
class Hook:
    """A merchant's webhook endpoint: keeps what arrives, answers as told."""

    url: str
    answers: list[int] = field(default_factory=list)
    default: int = 200
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


def hook_app(current: Callable[[], Hook]) -> FastAPI:
    app = FastAPI()

    @app.post("/webhooks/paypal")
    async def webhook(request: Request) -> PlainTextResponse:
        hook = current()
        hook.received.append((dict(request.headers), await request.body()))
        status = hook.answers.pop(0) if hook.answers else hook.default
        hook.arrived.set()
        return PlainTextResponse("", status_code=status)

    return app
